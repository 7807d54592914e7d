"""Rows of cost at a level (network, stage, block, layer) from the annotated graph.

A row groups graph nodes: the whole network; a section (stem, stage, transition, head); a
residual block (layers outside blocks keep their section's row); or one op. Parameters and
MACs are summed from the node annotations written by infer_shapes (resdsl/ir/ops.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import networkx as nx

from ..ir.kinds import LEVELS
from ..ir.ops import OPS, fmt


@dataclass
class Row:
    name: str
    what: str          # block kind × count, section role, block definition or op kind
    out_shape: tuple
    params: int
    macs: int
    nodes: list[str] = field(default_factory=list, repr=False)   # graph nodes, in network order
    output: str = ""   # the node whose output is the row's output

    def as_dict(self) -> dict:
        d = asdict(self)
        del d["nodes"], d["output"]
        d["out_shape"] = list(self.out_shape)
        return d


def _key(g: nx.DiGraph, n: str, level: str) -> str:
    scope = g.nodes[n]["scope"]
    if level == "network":
        return g.graph["name"]
    if level == "stage":
        return scope["section"]
    if level == "block":
        return scope["block"] or scope["section"]
    return n


def _what(g: nx.DiGraph, key: str, level: str) -> str:
    stages = {s["name"]: s for s in g.graph["stages"]}
    if level == "network":
        return "network"
    if level == "layer":
        return layer_what(g.nodes[key])
    if key in stages:
        st = stages[key]
        return f"{st['block']} ×{len(st['blocks'])}" if level == "stage" else st["block"]
    if key in g.graph["blocks"]:
        b = g.graph["blocks"][key]
        return f"{b['block']} ({b['shortcut']})"
    return g.graph["containers"][key]["role"]          # a section: stem, transition, head


def layer_what(d: dict) -> str:
    """`conv 3×3 s2 g32`, `maxpool 3×3 s2`, `fc`, `add`: an op and its geometry (its registry row text)."""
    return OPS[d["kind"]].row_what(d["attrs"])


def rows(g: nx.DiGraph, level: str = "stage") -> list[Row]:
    """One row per group of nodes at `level`, in network (topological) order."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    out: dict[str, Row] = {}
    for n in nx.topological_sort(g):
        d = g.nodes[n]
        if d["kind"] == "input":
            continue
        key = _key(g, n, level)
        r = out.get(key)
        if r is None:
            r = out[key] = Row(key, _what(g, key, level), d["out_shape"], 0, 0)
        r.params += d["params"]
        r.macs += d["macs"]
        r.nodes.append(n)
    for r in out.values():
        r.output = _output(g, r.nodes)
        r.out_shape = g.nodes[r.output]["out_shape"]
    return list(out.values())


def _output(g: nx.DiGraph, nodes: list[str]) -> str:
    """The last node of the group (topologically) that feeds a node outside it, or the graph output."""
    inside = set(nodes)
    leaving = [n for n in nodes if n == g.graph["output"] or any(s not in inside for s in g.successors(n))]
    return leaving[-1] if leaving else nodes[-1]


def drop_path(g: nx.DiGraph, r: Row) -> tuple[float, float] | None:
    """(lowest, highest) stochastic-depth drop probability over the units in a row; None when no
    unit of the row drops (most networks: their tables stay as they were)."""
    blocks = g.graph["blocks"]
    probs = [blocks[b]["drop_prob"] for b in dict.fromkeys(g.nodes[n]["scope"]["block"] for n in r.nodes)
             if b in blocks]
    return (min(probs), max(probs)) if probs and max(probs) > 0 else None


def drop_text(rng: tuple[float, float] | None) -> str:
    """`0.1`, `0.025–0.05` or '' (no stochastic depth)."""
    if rng is None:
        return ""
    lo, hi = rng
    return f"{hi:.3g}" if lo == hi else f"{lo:.3g}–{hi:.3g}"


def section_rows(g: nx.DiGraph) -> list[Row]:
    """One row per stem / stage / transition / head, in network order."""
    return rows(g, "stage")


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M'."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3f}{suffix}{unit}" if suffix == "G" else f"{n / div:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (binary prefixes: memory is allocated in pages of 2^k bytes)."""
    for div, suffix in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if abs(n) >= div:
            return f"{n / div:.1f} {suffix}"
    return f"{n:.0f} B"


def shape_str(shape) -> str:
    return fmt(shape if isinstance(shape, tuple) else tuple(shape))       # tokens keep their layout
