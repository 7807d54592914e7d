"""Multi-level training (Chang et al. 2018) at CPU scale: CIFAR-10 ResNet grown 14 -> 26 -> 50
(`--grow`, n = 2 -> 4 -> 8 per stage) beside ResNet-50 (n = 8) trained directly, same recipe and epochs.

    python benchmarks/bench_grow.py run grown  OUT [WARMUP]   # one run each (run two at once, one per core)
    python benchmarks/bench_grow.py run direct OUT [WARMUP]   # WARMUP: --warmup-epochs (default 0)
    python benchmarks/bench_grow.py run shallow OUT [WARMUP]  # ResNet-14 alone, the first level's net
    python benchmarks/bench_grow.py report OUT [FIGURE]       # table rows (and the figure, e.g. docs/img/grow_cifar10.png)

Data: /work/shared/data/cifar10_subset.npz (or $CIFAR_NPZ): the first TRAIN images of its stratified
training subset and the first TEST images of the official test set (sizes below). Training compute
is also counted as multiply-accumulates (3 × forward MACs per training image: forward + backward),
which does not depend on how busy the machine is.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "cifar_resnet.res"
DATA = os.environ.get("CIFAR_NPZ", str(ROOT.parent / "shared" / "data" / "cifar10_subset.npz"))
TRAIN, TEST, EPOCHS, GROW = 4000, 2000, 6, (2, 4)
RECIPE = {"epochs": EPOCHS, "batch_size": 128, "lr": 0.1, "sched": "cosine", "weight_decay": 5e-4,
          "device": "cpu", "workers": 0, "seed": int(os.environ.get("SEED", "0"))}
RUNS = {"grown": ({"n": "2"}, {"grow": GROW}), "direct": ({"n": "8"}, {}), "shallow": ({"n": "2"}, {})}


def data():
    import numpy as np

    from resdsl.train.data import _from_arrays

    with np.load(DATA, allow_pickle=False) as d:
        return _from_arrays("cifar10-subset", d["x_train"][:TRAIN], d["y_train"][:TRAIN],
                            d["x_test"][:TEST], d["y_test"][:TEST], flip=True, classes=10)


def run(name: str, out: str, warmup: float = 0.0) -> None:
    from resdsl.train import run as train

    args, extra = RUNS[name]
    recipe = {**RECIPE, **extra, "warmup_epochs": warmup, "output": out, "experiment": name}
    s = train(SPEC, recipe, args=args, data=data())
    print(json.dumps({k: s[k] for k in ("final_test_acc", "best_test_acc", "train_s", "params")}))


def macs_per_epoch(levels: list[dict] | None, n_direct: int) -> list[float]:
    """Training MACs of each epoch: 3 × forward MACs × TRAIN images, at that epoch's depth."""
    from resdsl.api import graph
    from resdsl.ir.shapes import totals

    def fwd(n: int) -> int:
        return totals(graph(str(SPEC), n=n))[1]

    if not levels:
        return [3.0 * fwd(n_direct) * TRAIN] * EPOCHS
    out = []
    for e in range(EPOCHS):
        n = [lv["n"] for lv in levels if lv["epoch"] <= e][-1]
        out.append(3.0 * fwd(n) * TRAIN)
    return out


def steps(rounds: int = 3, batches: int = 5) -> None:
    """Seconds per training step (batch 128, SGD) of each level's net, the levels interleaved so
    that a change in the machine's load falls on all of them alike; prints median per level."""
    import statistics
    import time

    import torch

    from resdsl.api import compile as build

    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
    nets = {n: build(str(SPEC), n=n) for n in (2, 4, 8)}
    opts = {n: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for n, m in nets.items()}
    times: dict[int, list[float]] = {n: [] for n in nets}
    for _ in range(rounds):
        for n, m in nets.items():
            t0 = time.perf_counter()
            for _ in range(batches):
                opts[n].zero_grad()
                torch.nn.functional.cross_entropy(m(x), y).backward()
                opts[n].step()
            times[n].append((time.perf_counter() - t0) / batches)
    med = {n: statistics.median(t) for n, t in times.items()}
    grown = sum(med[n] * 2 for n in nets)          # two epochs at each level
    print(json.dumps({"s_per_step": med, "grown_over_direct": grown / (6 * med[8])}))


def report(out: str, figure: str | None = None) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resdsl.atomic import write_atomic

    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=110)
    styles = {"grown": ("tab:orange", "grown 14→26→50 (--grow 2,4)"), "direct": ("tab:blue", "ResNet-50 direct"),
              "shallow": ("tab:gray", "ResNet-14 direct")}
    for name, (colour, label) in styles.items():
        run = Path(out) / name
        if not (run / "summary.json").is_file():
            continue
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        s = json.loads((run / "summary.json").read_text())
        levels = s.get("levels")
        ep = [int(r["epoch"]) for r in rows]
        err = [100 * (1 - float(r["test_acc"])) for r in rows]
        ax.plot(ep, err, marker="o", color=colour, label=label, ls="--" if name == "shallow" else "-")
        for lv in levels or []:
            if lv["epoch"]:
                ax.axvline(lv["epoch"] + 0.5, color=colour, ls=":", alpha=0.7)
                ax.text(lv["epoch"] + 0.55, 0.55, f"grow → depth {lv['depth']}", color=colour, fontsize=7, va="top",
                        transform=ax.get_xaxis_transform())
        macs = sum(macs_per_epoch(levels, int(RUNS[name][0]["n"])))
        secs = sum(float(r["epoch_s"]) for r in rows)
        print(f"| {label} | {s['params']:,} | {100 * s['final_test_acc']:.1f}% | {100 * s['best_test_acc']:.1f}% | "
              f"{s['train_s']:.0f} s | {secs:.0f} s | {macs / 1e12:.2f} TMAC |")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test error (%)")
    warmup = json.loads((Path(out) / "grown" / "args.json").read_text()).get("warmup_epochs", 0)
    ax.set_title(f"CIFAR-10 ({TRAIN} train / {TEST} test images), {EPOCHS} epochs, shared 2-core CPU\n"
                 f"batch 128, lr 0.1 cosine, {warmup:g} warm-up epoch{'s' if warmup != 1 else ''}, seed "
                 f"{json.loads((Path(out) / 'grown' / 'args.json').read_text()).get('seed')}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if figure:
        write_atomic(ROOT / figure, lambda tmp: fig.savefig(tmp, format="png"))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1] == "steps":
        steps()
    elif sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
    else:
        report(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
