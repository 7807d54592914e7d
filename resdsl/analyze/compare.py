"""A sweep's comparison (table and He et al. Fig. 6 curves) and complexity matching (`--match`)."""
from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from .sweep import Setting


def complexity(spec: str, network: str | None, params: dict) -> tuple[int, int]:
    """(parameters, MACs) of a setting, from the annotated graph (no compile)."""
    from ..api import graph
    from ..ir.shapes import totals

    return totals(graph(spec, network, **{k: str(v) for k, v in params.items()}))


def match(spec: str, network: str | None, todo: list[Setting], what: str, adjust: str) -> list[Setting]:
    """Set the integer parameter `adjust` of every setting after the first so that its params (or
    MACs) come nearest the first setting's: bisection on a cost that grows with `adjust`."""
    if what not in ("params", "macs"):
        raise SpecError(f"--match expects params or macs, got '{what}'")
    index = 0 if what == "params" else 1
    if not todo or adjust not in todo[0].params:
        raise SpecError(f"--match needs --adjust NAME with NAME given by --set or --grid; '{adjust}' is not")
    target = complexity(spec, network, todo[0].params)[index]
    out = [todo[0]]
    for s in todo[1:]:
        def cost(v: int) -> int:
            return complexity(spec, network, {**s.params, adjust: str(v)})[index]
        out.append(Setting({**s.params, adjust: str(_nearest(cost, target))}))
    return out


def _nearest(cost, target: int, limit: int = 1 << 16) -> int:
    """The integer v ≥ 1 whose cost(v) is nearest `target`, for cost increasing in v."""
    hi = 1
    while cost(hi) < target:
        hi *= 2
        if hi > limit:
            raise SpecError(f"--match: no value up to {limit} reaches {target:,}")
    lo = max(1, hi // 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if cost(mid) < target else (lo, mid)
    return min((lo, hi), key=lambda v: abs(cost(v) - target))


def rows(spec: str, network: str | None, done: list[Setting], output: str) -> list[dict]:
    """One row per setting: params, MACs, final and best test accuracy, training time, curves."""
    from ..train.rundir import RunDir, read_summary

    out = []
    for s in done:
        run = Path(output) / s.name
        summary = read_summary(run)
        params, macs = complexity(spec, network, s.params)
        curve = RunDir(run).epochs()
        out.append({"setting": s.name, "params": params, "macs": macs, "run_dir": str(run),
                    "status": summary.get("status", "missing"), "epochs_done": summary.get("epochs_done"),
                    "final_test_acc": summary.get("final_test_acc"), "best_test_acc": summary.get("best_test_acc"),
                    "train_s": summary.get("train_s"),
                    "curve": [{"epoch": int(r["epoch"]), "train_err": 1 - r["train_acc"], "test_err": 1 - r["test_acc"]}
                              for r in curve]})
    return out


def plot_curves(table: list[dict], title: str, path: str) -> None:
    """Train error (thin, dashed) and test error (bold) vs epoch, every setting in one figure."""
    from .common import pyplot
    from .plots import finish

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for i, r in enumerate(table):
        ep = [c["epoch"] for c in r["curve"]]
        color = f"C{i}"
        axes[0].plot(ep, [100 * c["train_err"] for c in r["curve"]], "--", color=color, label=r["setting"])
        axes[1].plot(ep, [100 * c["test_err"] for c in r["curve"]], "-", lw=2, color=color, label=r["setting"])
    for ax, what in zip(axes, ("training error (%)", "test error (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    finish(fig, axes, path)
