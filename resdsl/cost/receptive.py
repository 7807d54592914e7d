"""Receptive field and stride of every node, from kernel, stride and dilation (no forward pass).

For a node with kernel k, stride s and dilation d reading a map whose pixels are j input pixels
apart (its "jump") and see r input pixels each:

    r_out = r_in + (k - 1) · d · j_in        j_out = j_in · s

(Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019).
A merge (add, concat) sees the union of its inputs, so r is the maximum over all inputs; in a
residual block the residual branch is the larger one, so this is the main path's field. Padding
does not change r. A global pool sees the whole input: r = None ("global") from there on.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ..ir.ops import OPS
from ..ir.shapes import inputs_of


@dataclass(frozen=True)
class Field:
    rf: int | None       # input pixels one output pixel sees (per side); None: the whole input
    stride: int          # input pixels between neighbouring output pixels ("jump")


def _geometry(d: dict) -> tuple[int, int, int] | None:
    """(kernel, stride, dilation) of a windowed op, (1, 1, 1) for pointwise, None for global (registry `window`)."""
    return OPS[d["kind"]].window(d["attrs"], d["in_shapes"])


def receptive_fields(g: nx.DiGraph) -> dict[str, Field]:
    """Field of every node, in one pass in topological order."""
    out: dict[str, Field] = {}
    for n in nx.topological_sort(g):
        d = g.nodes[n]
        if d["kind"] == "input":
            out[n] = Field(1, 1)
            continue
        ins = [out[p] for p in inputs_of(g, n)]
        jump = max(f.stride for f in ins)
        geo = _geometry(d)
        if geo is None:
            out[n] = Field(None, jump)
            continue
        k, s, dil = geo          # after a global input (SE, SK's attention) the field stays global, strides count
        rf = None if any(f.rf is None for f in ins) else max(f.rf for f in ins) + (k - 1) * dil * jump
        out[n] = Field(rf, jump * s)
    return out
