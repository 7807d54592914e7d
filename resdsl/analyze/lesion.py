"""Lesion studies (Veit, Wilber & Belongie 2016, Figs. 3-5): delete or reorder blocks of a trained net.

Deleting a block keeps its shortcut and drops its residual: y = post(shortcut(x)), by a forward
hook that zeroes each `residual` (or `residuals.k`) output; a block without shortcut is replaced
by the identity, y = x. Only blocks whose input and output shapes match are lesioned (and
swapped), and only add-merged ones: a dense or highway block has no single "residual to drop".
Everything is done with hooks on the compiled modules, so ResidualBlock.forward is untouched.
"""
from __future__ import annotations

import contextlib
import random
import statistics
from dataclasses import dataclass, field

import networkx as nx
import torch
from torch import nn

from ..errors import SpecError
from ..ir.kinds import MERGE_MODES, SHORTCUTS
from .common import accuracy, accuracy_and_loss, block_module, branch_modules


@dataclass(frozen=True)
class Candidate:
    """A block of the graph and why it cannot be lesioned ('' when it can)."""

    name: str
    shortcut: str
    in_shape: tuple
    out_shape: tuple
    refusal: str = ""


def block_shapes(g: nx.DiGraph, block: str) -> tuple[tuple, tuple]:
    """Shapes of the tensor entering `block` and of the one leaving it, from the graph's edges."""
    inside = {n for n, d in g.nodes(data=True) if (d["scope"].get("block") or "") in (block,)
              or (d["scope"].get("block") or "").startswith(block + ".")}
    ins = {tuple(g.nodes[u]["out_shape"]) for u, v in g.edges if v in inside and u not in inside}
    outs = {tuple(g.nodes[u]["out_shape"]) for u, v in g.edges if u in inside and v not in inside}
    return (ins.pop() if len(ins) == 1 else ()), (outs.pop() if len(outs) == 1 else ())


def candidates(g: nx.DiGraph) -> list[Candidate]:
    """Every block in network order, with the reason it cannot be deleted or swapped, if any."""
    out = []
    for name, info in g.graph["blocks"].items():
        a, b = block_shapes(g, name)
        why = ""
        if not MERGE_MODES[info["merge"]].additive:
            why = f"merges by {info['merge']}, not add: there is no residual to drop alone"
        elif not a or a != b:
            why = f"its shape changes ({'×'.join(map(str, a))} → {'×'.join(map(str, b))})"
        out.append(Candidate(name, info["shortcut"], a, b, why))
    return out


def lesionable(g: nx.DiGraph) -> list[str]:
    """The blocks that can be deleted; a clear error when there are none."""
    cands = candidates(g)
    ok = [c.name for c in cands if not c.refusal]
    if not ok:
        why = "; ".join(f"{c.name} {c.refusal}" for c in cands[:3]) or "it has no blocks"
        raise SpecError(f"lesion: no block of {g.graph.get('name')} can be deleted: {why}")
    return ok


@contextlib.contextmanager
def deleted(model: nn.Module, g: nx.DiGraph, blocks: list[str]):
    """Within the context, each named block is deleted: residual zeroed (or the block is identity)."""
    handles = []
    for name in blocks:
        mod = block_module(model, name)
        if not SHORTCUTS[g.graph["blocks"][name]["shortcut"]].carries:
            handles.append(mod.register_forward_hook(lambda m, inp, out: inp[0]))
        else:
            for br in branch_modules(mod):
                handles.append(br.register_forward_hook(lambda m, inp, out: torch.zeros_like(out)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def swapped(model: nn.Module, first: str, second: str):
    """Blocks `first` → `second` run as `second` → `first` (Veit's reordering), by forward hooks."""
    a, b = block_module(model, first), block_module(model, second)
    ha = a.register_forward_hook(lambda m, inp, out: b.forward(inp[0]))
    hb = b.register_forward_hook(lambda m, inp, out: a.forward(inp[0]))
    try:
        yield
    finally:
        ha.remove()
        hb.remove()


def adjacent_pairs(g: nx.DiGraph, ok: list[str]) -> list[tuple[str, str]]:
    """Consecutive blocks of one stage that both keep their shape."""
    good, pairs = set(ok), []
    for st in g.graph["stages"]:
        bl = st["blocks"]
        pairs += [(x, y) for x, y in zip(bl, bl[1:]) if x in good and y in good]
    return pairs


@dataclass
class LesionResult:
    """Test accuracies: intact, each single deletion, k random deletions, each adjacent swap; the
    test loss (mean cross-entropy) intact and after each single deletion; each unit's definition
    (a ViT's `attention_unit` or `mlp_unit`)."""

    source: str
    baseline: float
    single: dict[str, float] = field(default_factory=dict)
    random_k: dict[int, list[float]] = field(default_factory=dict)
    swaps: dict[str, float] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    baseline_loss: float = 0.0
    single_loss: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        rk = {str(k): {"mean": statistics.fmean(v), "std": statistics.pstdev(v), "draws": v}
              for k, v in self.random_k.items()}
        return {"source": self.source, "baseline_acc": self.baseline, "single_deletion_acc": self.single,
                "random_deletion_acc": rk, "adjacent_swap_acc": self.swaps, "not_lesioned": self.refused,
                "baseline_loss": self.baseline_loss, "single_deletion_loss": self.single_loss,
                "units": self.units}


def lesion_study(model, g, x, y, max_k: int, draws: int, seed: int = 0, source: str = "") -> LesionResult:
    """Veit's three experiments on one trained network, accuracies on (x, y)."""
    from ..progress import Progress

    ok = lesionable(g)
    pairs = adjacent_pairs(g, ok)
    total = 1 + len(ok) + draws * min(max_k, len(ok)) + len(pairs)     # evaluations, each over (x, y)
    with Progress(f"lesion {source}".strip(), total, "evaluations") as prog:
        acc, loss = accuracy_and_loss(model, x, y)
        res = LesionResult(source, acc, baseline_loss=loss,
                           units={n: info["block"] for n, info in g.graph["blocks"].items()})
        prog.step()
        res.refused = {c.name: c.refusal for c in candidates(g) if c.refusal}
        for name in ok:
            with deleted(model, g, [name]):
                res.single[name], res.single_loss[name] = accuracy_and_loss(model, x, y)
            prog.step()
        rng = random.Random(seed)
        for k in range(1, min(max_k, len(ok)) + 1):
            res.random_k[k] = []
            for _ in range(draws):
                with deleted(model, g, rng.sample(ok, k)):
                    res.random_k[k].append(accuracy(model, x, y))
                prog.step()
        for a, b in pairs:
            with swapped(model, a, b):
                res.swaps[f"{a}<->{b}"] = accuracy(model, x, y)
            prog.step()
    return res
