"""Mixed vs. unmixed dilated networks (specs/dilated_mixed.res) as students of a random teacher.

Cohen, Tamari & Shashua (2018) prove that mixing two dilated networks brings expressive
efficiency: a mixed network realises functions an unmixed one of similar size cannot. This is a
CPU-scale sanity check in that spirit, not a reproduction of their TIMIT experiment: a randomly
initialised teacher (mixed or unmixed, width 16) labels Gaussian sequences by the sign of its
logit difference (thresholded at the median, so the classes are balanced); mixed and unmixed
students (width 8, the same parameter count each) are trained with `resdsl.train.run` on an npz
of sequences (`--data seq:`), and their test accuracy is reported per teacher.

    python benchmarks/bench_dilated_mixing.py --seeds 0 1 2 --epochs 30
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

import resdsl
from resdsl.train import run

SPEC = Path(__file__).resolve().parents[1] / "specs" / "dilated_mixed.res"
GEOMETRY = dict(channels=2, length=64, depth=6, segment=2, classes=2)


def teacher_data(mixed: bool, seed: int, n_train: int, n_test: int, path: Path) -> None:
    """Gaussian sequences labelled by a random teacher, balanced by the median."""
    torch.manual_seed(1000 + seed)
    teacher = resdsl.compile(SPEC, mixed=mixed, width=16, **GEOMETRY).eval()
    x = torch.randn(n_train + n_test, GEOMETRY["channels"], GEOMETRY["length"])
    with torch.no_grad():
        logits = teacher(x)
    score = logits[:, 1] - logits[:, 0]
    y = (score > score.median()).long()
    np.savez(path, x_train=x[:n_train].numpy(), y_train=y[:n_train].numpy(),
             x_test=x[n_train:].numpy(), y_test=y[n_train:].numpy())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-test", type=int, default=1000)
    a = ap.parse_args()
    torch.set_num_threads(1)
    acc: dict[tuple[bool, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for teacher in (True, False):
            for seed in a.seeds:
                data = Path(tmp) / f"teacher_{teacher}_{seed}.npz"
                teacher_data(teacher, seed, a.n_train, a.n_test, data)
                for student in (True, False):
                    args = {k: str(v) for k, v in {**GEOMETRY, "width": 8, "mixed": student}.items()}
                    recipe = {"data": f"seq:{data}", "epochs": a.epochs, "batch_size": 128, "opt": "adamw",
                              "lr": 3e-3, "weight_decay": 1e-4, "seed": seed, "output": str(Path(tmp) / "runs")}
                    s = run(SPEC, recipe, args={k: v.lower() if v in ("True", "False") else v
                                                for k, v in args.items()})
                    acc.setdefault((teacher, student), []).append(s["final_test_acc"])
                    print(f"teacher {'mixed' if teacher else 'unmixed'} seed {seed}: student "
                          f"{'mixed' if student else 'unmixed'} {s['final_test_acc']:.4f} ({s['params']:,} params, "
                          f"{s['train_s']:.1f} s)", flush=True)
    print("\n| teacher | mixed student | unmixed student |\n|---|---|---|")
    for teacher in (True, False):
        cells = []
        for student in (True, False):
            v = acc[(teacher, student)]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{100 * statistics.mean(v):.1f}% ± {100 * sd:.1f}")
        print(f"| {'mixed' if teacher else 'unmixed'} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
