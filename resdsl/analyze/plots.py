"""The figures of `resdsl analyze`, laid out as the papers' figures they reproduce."""
from __future__ import annotations

from .common import pyplot, save_figure


def finish(fig, axes, path: str, legend: int | None = None) -> None:
    """Grid on every axis (and a legend of that font size), tight layout, written atomically to path."""
    for ax in axes:
        ax.grid(alpha=0.3)
        if legend:
            ax.legend(fontsize=legend)
    fig.tight_layout()
    save_figure(fig, path)


def paths_figure(doc: dict, path: str) -> None:
    """Veit Fig. 6: (a) path-length distribution; (b) gradient per path; (c) total gradient per length."""
    plt = pyplot()
    grads = doc.get("gradient")
    fig, axes = plt.subplots(1, 3 if grads else 1, figsize=(13 if grads else 5, 3.6))
    axes = axes if grads else [axes]
    ks = [int(k) for k in doc["counts"]]
    axes[0].bar(ks, [doc["counts"][str(k)] for k in ks], color="C0")
    axes[0].set(xlabel="path length", ylabel="number of paths", title=f"{doc['network']}: {doc['total_paths']:.3g} paths")
    if grads:
        gk = [int(k) for k in grads["per_path_gradient"]]
        # a route takes a branch whole; it is one path unless branches have parallel layers inside
        unit = "path" if all(grads.get("routes", {}).get(k, c) == c for k, c in doc["counts"].items()) else "route"
        axes[1].semilogy(gk, [grads["per_path_gradient"][str(k)] for k in gk], "o-", color="C1")
        axes[1].set(xlabel="path length", ylabel=f"gradient magnitude per {unit}", title=f"one {unit} of length k")
        axes[2].plot(gk, [grads["total_gradient"][str(k)] for k in gk], "o-", color="C2")
        axes[2].set(xlabel="path length", ylabel="total gradient magnitude", title=f"all {unit}s of length k")
    finish(fig, axes, path)


def lesion_figure(docs: list[dict], labels: list[str], path: str) -> None:
    """Veit Figs. 3 and 5: error per deleted block, error vs number deleted, error per adjacent swap."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for i, (d, label) in enumerate(zip(docs, labels)):
        c = f"C{i}"
        single = list(d["single_deletion_acc"].values())
        axes[0].plot(range(1, len(single) + 1), [100 * (1 - a) for a in single], "o-", color=c, label=label)
        axes[0].axhline(100 * (1 - d["baseline_acc"]), color=c, ls=":", lw=1)
        ks = [int(k) for k in d["random_deletion_acc"]]
        mean = [100 * (1 - d["random_deletion_acc"][str(k)]["mean"]) for k in ks]
        std = [100 * d["random_deletion_acc"][str(k)]["std"] for k in ks]
        axes[1].errorbar([0] + ks, [100 * (1 - d["baseline_acc"])] + mean, yerr=[0] + std, fmt="o-", color=c,
                         capsize=3, label=label)
        swaps = list(d["adjacent_swap_acc"].values())
        axes[2].plot(range(1, len(swaps) + 1), [100 * (1 - a) for a in swaps], "s-", color=c, label=label)
        axes[2].axhline(100 * (1 - d["baseline_acc"]), color=c, ls=":", lw=1)
    axes[0].set(xlabel="deleted block (shape-preserving, in order)", ylabel="test error (%)", title="one block deleted")
    axes[1].set(xlabel="number of blocks deleted", ylabel="test error (%)", title="k random blocks deleted")
    axes[2].set(xlabel="adjacent pair swapped", ylabel="test error (%)", title="two adjacent blocks swapped")
    finish(fig, axes, path, legend=8)


def shattering_figure(results: list[dict], path: str) -> None:
    """Balduzzi Figs. 1-3: deepest net's gradient along the line; C(1) vs depth per family."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    families: dict[str, list[dict]] = {}
    for r in results:
        families.setdefault(r["label"], []).append(r)
    for i, (label, rs) in enumerate(families.items()):
        c, deep = f"C{i}", max(rs, key=lambda r: r["depth"])
        axes[0].plot(deep["gradient_example"], color=c, lw=1, label=f"{label}, depth {deep['depth']}")
        axes[1].plot(deep["autocorr"], "o-", color=c, ms=3, label=f"{label}, depth {deep['depth']}")
        rs = sorted(rs, key=lambda r: r["depth"])
        axes[2].plot([r["depth"] for r in rs], [r["corr_lag1"] for r in rs], "o-", color=c, label=label)
    axes[0].set(xlabel="input position t on the line", ylabel="gradient g(t)", title="gradient along a line of inputs")
    axes[1].set(xlabel="lag", ylabel="autocorrelation C(lag)", title="autocorrelation, deepest nets")
    axes[2].set(xlabel="depth (conv + fc layers)", ylabel="C(1)", title="neighbouring-gradient correlation",
                ylim=(-0.05, 1.05))
    finish(fig, axes, path, legend=7)


def norms_figure(docs: list[dict], labels: list[str], path: str) -> None:
    """Greff et al. Fig. 3-style: ‖F(x)‖/‖x‖ and cos(F(x), x) per block."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (d, label) in enumerate(zip(docs, labels)):
        blocks = d["blocks"]
        axes[0].plot(range(1, len(blocks) + 1), [b["norm_ratio"] for b in blocks], "o-", color=f"C{i}", label=label)
        axes[1].plot(range(1, len(blocks) + 1), [b["cosine"] for b in blocks], "o-", color=f"C{i}", label=label)
    axes[0].set(xlabel="block", ylabel="‖F(x)‖ / ‖x‖", title="relative size of the residual")
    axes[1].set(xlabel="block", ylabel="cos(F(x), x)", title="direction of the residual")
    finish(fig, axes, path, legend=8)


def hessian_figure(results: list[dict], path: str) -> None:
    """Li et al. 2016: condition number of the Hessian at the starting point vs depth, per family."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    families: dict[str, list[dict]] = {}
    for r in results:
        families.setdefault(r["label"], []).append(r)
    for i, (label, rs) in enumerate(families.items()):
        pts = [(r["depth"], r["condition_number"]) for r in rs if r["condition_number"] is not None]
        flat = [r["depth"] for r in rs if r["flat"]]
        if pts:
            ax.semilogy(*zip(*pts), "o-", color=f"C{i}", label=label)
        if flat:
            ax.plot(flat, [1] * len(flat), "x", color=f"C{i}", label=f"{label}: Hessian = 0 (flat)")
    ax.set(xlabel="depth (layers)", ylabel="condition number of the Hessian", title="loss Hessian at the start")
    finish(fig, [ax], path, legend=7)


def runs_figure(doc: dict, path: str, metric: str = "acc") -> None:
    """`resdsl runs --figure`: validation (dashed) and test (solid) accuracy, or loss, per epoch of every run
    (the document of train/runs.py `compare`)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, r in enumerate(doc["runs"]):
        ep = [c["epoch"] for c in r["curve"]]
        color = f"C{i % 10}"
        label = r["name"] if len(doc["runs"]) < 12 else None
        for split, style in (("val", "--"), ("test", "-")):
            key = f"{split}_{metric}"
            if r["curve"] and all(key in c for c in r["curve"]):
                ax.plot(ep, [c[key] for c in r["curve"]], style, marker=".", color=color,
                        label=f"{label} ({split})" if label else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy" if metric == "acc" else "cross-entropy")
    if len(doc["runs"]) < 12:
        ax.legend(fontsize=7)
    ax.set_title(f"{len(doc['runs'])} runs: validation dashed, test solid")
    finish(fig, [ax], path)
