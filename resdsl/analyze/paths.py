"""The unrolled view of a residual network (Veit, Wilber & Belongie 2016): paths per length.

A path runs from the input to the output of the annotated graph; its length is the number of
residual branches it enters (a block's `residual`, one of its `residuals.k` or its highway
`gate`; a block without shortcut is entered by every path). Counted by dynamic programming over
the DAG, so multi-residual blocks, dense (concat) blocks and plain parts are counted as they are:
a chain of n single-residual blocks gives C(n, k) paths of length k, 2^n in all.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import networkx as nx

from ..errors import SpecError
from ..ir.kinds import BRANCH_ROLES


@dataclass(frozen=True)
class PathCounts:
    """counts[k] = number of input-to-output paths through k residual branches."""

    network: str
    blocks: int
    counts: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def mean_length(self) -> float:
        """Expected length of a path drawn uniformly: sum_k k·count_k / 2^n for a plain chain = n/2."""
        return sum(k * c for k, c in self.counts.items()) / self.total

    def as_dict(self) -> dict:
        return {"network": self.network, "blocks": self.blocks, "total_paths": self.total,
                "min_length": min(self.counts), "max_length": max(self.counts),
                "mean_length": self.mean_length, "counts": {str(k): c for k, c in sorted(self.counts.items())}}


def _in_branch(scope: dict, block: str) -> bool:
    """Whether a node lies inside `block`'s residual branch (or in a block nested in it)."""
    b = scope.get("block") or ""
    return (b == block and scope.get("role") in BRANCH_ROLES) or b.startswith(block + ".")


def enters_branch(g: nx.DiGraph, u: str, v: str) -> bool:
    """Edge u→v steps into a residual branch: v is in a block's branch and u is not."""
    sv = g.nodes[v]["scope"]
    block = sv.get("block")
    if not block or sv.get("role") not in BRANCH_ROLES:
        return False
    return not _in_branch(g.nodes[u]["scope"], block)


def count_paths(g: nx.DiGraph) -> PathCounts:
    """Paths from the input to the output by length, exact (Python integers: 2^54 for ResNet-110)."""
    inputs = [n for n, d in g.nodes(data=True) if d["kind"] == "input"]
    if len(inputs) != 1:
        raise SpecError(f"path counting needs one input node; {g.graph.get('name')} has {len(inputs)}")
    ways: dict[str, Counter] = {inputs[0]: Counter({0: 1})}
    for v in nx.topological_sort(g):
        if v == inputs[0]:
            continue
        acc: Counter = Counter()
        for u in g.predecessors(v):
            step = 1 if enters_branch(g, u, v) else 0
            for k, c in ways.get(u, {}).items():
                acc[k + step] += c
        ways[v] = acc
    counts = dict(sorted(ways[g.graph["output"]].items()))
    return PathCounts(g.graph.get("name", "network"), len(g.graph.get("blocks", {})), counts)

