"""Gradient by path length (Veit, Wilber & Belongie 2016, Fig. 6), by sampling routes.

A route takes one way through every block of the network: its shortcut, or one of its branches
(`residual`, each `residuals.k`, a highway `gate`); a block without shortcut has only its
branches. Its length is the number of branches it enters. In the backward pass the gradient
flows only along the route (the forward pass is unchanged), so the gradients of all routes sum
to the full gradient exactly, whatever the blocks merge with (add, concat, gate). Routing is
done by forward pre-hooks: a block's input is detached for every way but the chosen one, which
is handed the attached input.

For a length k, routes of length k are drawn uniformly (exactly, from the route counts by
dynamic programming); the mean norm of the loss gradient reaching the input, per image, is the
gradient of one route of length k, and times the number of routes of that length it is the
total gradient length k contributes. A chain of n single-residual blocks has C(n, k) routes of
length k, a multi-residual block with m branches contributes (1 + m·z), a block without
shortcut z, a dense block (1 + z): the route counts are `analyze paths`' path counts. Where a
branch or the trunk has parallel layers inside (Inception-ResNet), a route is taken whole and
holds several graph paths of the same length; the gradient is then per route.
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import networkx as nx
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpecError
from ..ir.kinds import BRANCH_ROLES, SHORTCUTS
from .common import block_module, branch_modules

SHORTCUT = "shortcut"


@dataclass(frozen=True)
class Ways:
    """The ways through one block: its shortcut (when it has one) and its branches by module name."""

    name: str
    shortcut: bool
    branches: tuple[str, ...]


@dataclass(frozen=True)
class LengthGradient:
    """Mean per-route input-gradient norm at each sampled length, and the total over all routes of it."""

    blocks: int
    routes: dict[int, int]
    per_path: dict[int, float]

    def total(self, k: int) -> float:
        return self.per_path[k] * self.routes[k]

    def as_dict(self) -> dict:
        return {"blocks": self.blocks, "routes": {str(k): c for k, c in self.routes.items()},
                "per_path_gradient": {str(k): v for k, v in self.per_path.items()},
                "total_gradient": {str(k): self.total(k) for k in self.per_path}}


def branch_names(block: nn.Module) -> tuple[str, ...]:
    """Module names of a compiled block's branches: `residual` or `residuals.k`, and `gate`."""
    names = ["residual"] if getattr(block, "residual", None) is not None else \
        [f"residuals.{i}" for i in range(len(getattr(block, "residuals", None) or []))]
    return tuple(names) + (("gate",) if getattr(block, "gate", None) is not None else ())


def _graph_branches(g: nx.DiGraph) -> dict[str, set[str]]:
    """Each block's branches as the graph has them (node `B.residuals.1.conv1` is branch `residuals.1`)."""
    out: dict[str, set[str]] = {}
    for n, d in g.nodes(data=True):
        s, b = d["scope"], d["scope"].get("block")
        if b and s.get("role") in BRANCH_ROLES and n.startswith(b + "."):
            parts = n[len(b) + 1:].split(".")
            out.setdefault(b, set()).add(".".join(parts[:2]) if parts[0] == "residuals" else parts[0])
    return out


def routable_blocks(model: nn.Module, g: nx.DiGraph) -> list[Ways]:
    """Every block of the network in graph order with its ways through, or a SpecError saying
    why the gradient cannot be routed (nested blocks, a block beside another path, a module the
    graph does not match)."""
    blocks = g.graph.get("blocks", {})
    if not blocks:
        raise SpecError(f"gradient by path length: {g.graph.get('name')} has no blocks; every path is the same one")
    nested = sorted(n for n in blocks if any(n.startswith(o + ".") for o in blocks if o != n))
    if nested:
        raise SpecError(f"gradient by path length: block {nested[0]} lies inside another block's branch; "
                        "routing nested blocks is not supported")
    _check_on_every_path(g, blocks)
    order = {b: i for i, b in enumerate(_block_order(g))}
    in_graph = _graph_branches(g)
    out = []
    for name in sorted(blocks, key=lambda b: order.get(b, len(order))):
        module = block_module(model, name)
        branches = branch_names(module)
        graph_branches = in_graph.get(name, set())
        if set(branches) != graph_branches or not branches:
            raise SpecError(f"gradient by path length: block {name} has branches {sorted(graph_branches)} in the graph "
                            f"but {list(branches)} in the compiled module; cannot route its gradient")
        out.append(Ways(name, SHORTCUTS[blocks[name]["shortcut"]].carries, branches))
    return out


def _block_order(g: nx.DiGraph) -> list[str]:
    seen: dict[str, None] = {}
    for n in nx.topological_sort(g):
        b = g.nodes[n]["scope"].get("block")
        if b:
            seen.setdefault(b, None)
    return list(seen)


def _check_on_every_path(g: nx.DiGraph, blocks: dict) -> None:
    """Every block must lie on every input-to-output path (a chain of blocks with plain parts
    between them): with each block's nodes contracted to one, it must dominate the output."""
    inputs = [n for n, d in g.nodes(data=True) if d["kind"] == "input"]
    if len(inputs) != 1:
        raise SpecError(f"gradient by path length needs one input node; {g.graph.get('name')} has {len(inputs)}")
    of = {n: ("block", b) if (b := g.nodes[n]["scope"].get("block")) else ("node", n) for n in g.nodes}
    h = nx.DiGraph()
    h.add_nodes_from(set(of.values()))
    h.add_edges_from((of[u], of[v]) for u, v in g.edges if of[u] != of[v])
    out = of[g.graph["output"]]
    dom = nx.immediate_dominators(h, of[inputs[0]])
    chain, v = {out}, out
    while dom.get(v, v) != v:
        v = dom[v]
        chain.add(v)
    beside = [b for b in blocks if ("block", b) not in chain]
    if beside:
        raise SpecError(f"gradient by path length: block {beside[0]} lies beside another path of the network "
                        "(not on every path from input to output); routes through it are not defined")


def route_counts(ways: list[Ways]) -> dict[int, int]:
    """Number of routes of each length: the product over blocks of (shortcut + branches·z)."""
    return _suffix_counts(ways)[0]


def _suffix_counts(ways: list[Ways]) -> list[dict[int, int]]:
    """W[i][k]: routes of length k through blocks i..n-1 (W[n] = {0: 1}), exact integers."""
    w: list[dict[int, int]] = [{} for _ in ways] + [{0: 1}]
    for i in range(len(ways) - 1, -1, -1):
        acc: dict[int, int] = {}
        for k, c in w[i + 1].items():
            if ways[i].shortcut:
                acc[k] = acc.get(k, 0) + c
            acc[k + 1] = acc.get(k + 1, 0) + c * len(ways[i].branches)
        w[i] = dict(sorted(acc.items()))
    return w


def sample_route(ways: list[Ways], k: int, rng: random.Random, suffix=None) -> dict[str, str]:
    """A route of length k drawn uniformly among all of them: block name -> `shortcut` or a branch."""
    w = suffix or _suffix_counts(ways)
    if w[0].get(k, 0) == 0:
        raise SpecError(f"no route has length {k}; lengths run {min(w[0])}..{max(w[0])}")
    route = {}
    for i, b in enumerate(ways):
        pick = rng.randrange(w[i][k])
        stay = w[i + 1].get(k, 0) if b.shortcut else 0
        if pick < stay:
            route[b.name] = SHORTCUT
        else:
            route[b.name] = b.branches[(pick - stay) // w[i + 1][k - 1]]
            k -= 1
    return route


@contextlib.contextmanager
def routed(model: nn.Module, route: dict[str, str]):
    """Backward flows only along `route` (block name -> `shortcut` or a branch module name);
    blocks not named keep every way open. The forward pass is unchanged."""
    handles = []
    try:
        for name, way in route.items():
            block = block_module(model, name)
            branches = branch_names(block)
            if way != SHORTCUT and way not in branches:
                raise SpecError(f"block {name} has no branch {way} (it has {', '.join(branches)})")
            if way == SHORTCUT and not getattr(block, "has_shortcut", True):
                raise SpecError(f"block {name} has no shortcut")
            if way == SHORTCUT:
                for br in branches:
                    handles.append(block.get_submodule(br).register_forward_pre_hook(_detached))
            elif len(branches) > 1 or getattr(block, "has_shortcut", True):
                handles += _through_branch(block, way, branches)
        yield
    finally:
        for h in handles:
            h.remove()


def _detached(m, inp):
    return (inp[0].detach(),)


def _through_branch(block: nn.Module, way: str, branches: tuple[str, ...]) -> list:
    """Detach the block's input for every way (shortcut, pre, other branches); give branch `way`
    the attached input (through `pre` for a residual; the gate reads the block input itself)."""
    held = {}

    def keep(m, inp):
        held["x"] = inp[0]
        return (inp[0].detach(),)

    def attach(m, inp):
        x = held["x"]
        pre = getattr(block, "pre", None)
        return (pre(x) if pre is not None and way != "gate" else x,)

    return [block.register_forward_pre_hook(keep), block.get_submodule(way).register_forward_pre_hook(attach)]


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over images of ‖∂loss/∂input‖ for the per-image cross-entropy loss."""
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.flatten(1).norm(dim=1).mean().item()


def gradient_by_length(model: nn.Module, g: nx.DiGraph, x: torch.Tensor, y: torch.Tensor,
                       lengths: list[int] | None, draws: int, seed: int = 0) -> LengthGradient:
    """Veit's path sampling at each length in `lengths` (None: every length a route has): `draws`
    uniform routes of that length each (fewer where there are fewer routes)."""
    model.eval()
    ways = routable_blocks(model, g)
    suffix = _suffix_counts(ways)
    counts = suffix[0]
    lengths = list(counts) if lengths is None else lengths
    bad = [k for k in lengths if k not in counts]
    if bad:
        raise SpecError(f"path lengths must lie in {min(counts)}..{max(counts)} for {g.graph.get('name')}; got {bad}")
    rng, per_path = random.Random(seed), {}
    for k in lengths:
        vals = []
        for _ in range(min(draws, counts[k])):
            with routed(model, sample_route(ways, k, rng, suffix)):
                vals.append(input_gradient(model, x, y))
        per_path[k] = sum(vals) / len(vals)
    return LengthGradient(len(ways), {k: counts[k] for k in lengths}, per_path)
