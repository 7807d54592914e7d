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
        out.append(Setting({**s.params, adjust: str(_nearest(cost, target))}, s.recipe, s.order))
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
        out.append({"setting": s.name, "group": s.group, "values": s.values, "params": params, "macs": macs,
                    "run_dir": str(run),
                    "status": summary.get("status", "missing"), "epochs_done": summary.get("epochs_done"),
                    "final_test_acc": summary.get("final_test_acc"), "best_test_acc": summary.get("best_test_acc"),
                    "best_val_acc": summary.get("best_val_acc"), "selected_on": summary.get("selected_on"),
                    "train_s": summary.get("train_s"),
                    "curve": [{"epoch": int(r["epoch"]), "train_err": 1 - r["train_acc"], "test_err": 1 - r["test_acc"],
                               **({"val_err": 1 - r["val_acc"]} if "val_acc" in r else {})}
                              for r in curve]})
    return out


STATS = ("best_val_acc", "best_test_acc", "final_test_acc", "train_s")


def mean_std(values: list) -> dict:
    """{"mean", "std", "n"} of the numbers given (None skipped); std is the sample standard
    deviation (n − 1 in the denominator, numpy's ddof=1), None for fewer than two."""
    import statistics

    xs = [float(v) for v in values if v is not None]
    return {"mean": statistics.fmean(xs) if xs else None, "std": statistics.stdev(xs) if len(xs) > 1 else None,
            "n": len(xs)}


def groups(table: list[dict]) -> list[dict]:
    """The settings that differ only in seed, pooled: mean ± std (n) of each result, and the
    mean curve with its spread, in the order the groups first appear."""
    pooled: dict[str, list[dict]] = {}
    for r in table:
        pooled.setdefault(r["group"], []).append(r)
    out = []
    for name, rs in pooled.items():
        done = [r for r in rs if r["status"] == "completed"]
        g = {"group": name, "values": {k: v for k, v in rs[0]["values"].items() if k != "seed"},
             "seeds": [r["values"].get("seed") for r in rs], "params": rs[0]["params"], "macs": rs[0]["macs"],
             "runs": len(rs), "completed": len(done), **{k: mean_std([r[k] for r in done]) for k in STATS}}
        length = min((len(r["curve"]) for r in done), default=0)
        g["curve"] = [{"epoch": done[0]["curve"][i]["epoch"],
                       **{k: mean_std([r["curve"][i][k] for r in done])
                          for k in ("train_err", "val_err", "test_err") if k in done[0]["curve"][i]}}
                      for i in range(length)]
        out.append(g)
    return out


def plot_groups(gs: list[dict], title: str, path: str) -> None:
    """Left: mean test error vs epoch with a ±1 std band per group; right: the test error of each
    group's best.pt (chosen on validation) as mean ± std, with n in the label."""
    from .common import pyplot
    from .plots import finish

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for i, g in enumerate(gs):
        color = f"C{i % 10}"
        ep = [c["epoch"] for c in g["curve"]]
        m = [100 * c["test_err"]["mean"] for c in g["curve"]]
        sd = [100 * (c["test_err"]["std"] or 0) for c in g["curve"]]
        axes[0].plot(ep, m, ".-", lw=2, color=color, label=f"{g['group']} (n={g['completed']})")
        axes[0].fill_between(ep, [a - b for a, b in zip(m, sd)], [a + b for a, b in zip(m, sd)], color=color, alpha=0.2)
        st = g["best_test_acc"]
        if st["mean"] is not None:
            axes[1].errorbar([100 * (1 - st["mean"])], [i], xerr=[[100 * (st["std"] or 0)]], fmt="o", color=color,
                             capsize=4)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("test error (%), mean ± std over seeds")
    axes[0].legend(fontsize=7)
    axes[1].set_yticks(range(len(gs)))
    axes[1].set_yticklabels([f"{g['group']}\n(n={g['best_test_acc']['n']})" for g in gs], fontsize=7)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("test error of best.pt (%), mean ± std")
    axes[1].yaxis.tick_right()
    fig.suptitle(title)
    finish(fig, axes, path)


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
