"""fused_graph(g, units): the fusion pass on the annotated graph (what render --fuse draws).

Graph nodes are named by module path (docs/language.md), so each fold of `fuse`'s report names
the nodes it removes: a BN folded into its conv disappears into that conv's node; a merged block
or sum of branches becomes one conv node. Costs come from the op registry (`ops.cost`), as
infer_shapes writes them. Pure networkx: torch only in inference_graph, which runs `fuse`.
"""
from __future__ import annotations

import networkx as nx

from ..ir import ops


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def fused_graph(g: nx.DiGraph, units) -> nx.DiGraph:
    """A copy of g with every (replacement, removed prefixes, conv geometry) unit contracted."""
    h = g.copy()
    for into, prefixes, conv in units:
        gone = [n for n in h.nodes if _under(n, prefixes) and n != into]
        if not gone:
            continue
        if conv is None:
            if into in h:
                node = h.nodes[into]
                if node["kind"] == "conv" and not node["attrs"]["bias"] and node["params"]:   # not a shared conv
                    node["attrs"] = {**node["attrs"], "bias": True}
                    node["params"], node["macs"] = ops.cost("conv", node["attrs"], node["in_shapes"], node["out_shape"])
                _contract(h, gone, into, dict(node))
                h.nodes[into].setdefault("folded", []).extend(gone)
        else:
            _contract(h, gone, into, _conv_node(h, gone, conv, into))
    return h


def _contract(h: nx.DiGraph, gone: list[str], into: str, data: dict) -> None:
    """Replace the nodes `gone` (and `into`, if present) by one node `into`, keeping node order."""
    members = set(gone) | {into}
    ins = [(u, d) for n in members if n in h for u, _, d in h.in_edges(n, data=True) if u not in members]
    outs = [(v, d) for n in members if n in h for _, v, d in h.out_edges(n, data=True) if v not in members]
    order = list(h.nodes)
    first = min(order.index(n) for n in members if n in h)
    keep = {n: dict(h.nodes[n]) for n in order if n not in members}
    edges = [(u, v, d) for u, v, d in h.edges(data=True) if u not in members and v not in members]
    h.clear_edges()
    h.remove_nodes_from(list(h.nodes))
    for i, n in enumerate(order):
        if i == first:
            h.add_node(into, **data)
        if n in keep:
            h.add_node(n, **keep[n])
    h.add_edges_from(edges)
    seen = set()
    for u, d in ins:
        if u not in seen:
            seen.add(u)
            h.add_edge(u, into, **{**d, "kind": "main"})
    for v, d in outs:
        h.add_edge(into, v, **d)


def _conv_node(h: nx.DiGraph, gone: list[str], conv: dict, into: str) -> dict:
    members = set(gone)
    entry = next(n for n in gone if any(u not in members for u in h.predecessors(n)))
    exit_ = next(n for n in reversed(gone) if any(v not in members for v in h.successors(n)))
    in_shape, out_shape = h.nodes[entry]["in_shapes"][0], h.nodes[exit_]["out_shape"]
    params, macs = ops.cost("conv", conv, [in_shape], out_shape)
    scope = dict(h.nodes[entry]["scope"])
    scope["role"] = "residual" if scope.get("block") else scope.get("role", "residual")
    return {"kind": "conv", "attrs": dict(conv), "scope": scope, "in_shapes": [in_shape], "out_shape": out_shape,
            "params": params, "macs": macs,
            "span": h.nodes[entry].get("span"), "folded": list(gone), **_place(h, entry, into)}


def _place(h: nx.DiGraph, entry: str, into: str) -> dict:
    """Where the merged conv sits (ir/build.py): the entry's stage and unit; the branch of the
    container it stands in for (a merged `parallel`, or a whole block: `{block}.conv`)."""
    place = {k: h.nodes[entry].get(k) for k in ("stage", "unit", "branch", "in_branch", "parent")}
    containers = h.graph.get("containers", {})
    owner = next((p for p in (into, into.rpartition(".")[0]) if p in containers), None)
    if owner is not None:
        place.update(branch=containers[owner]["branch"], in_branch=containers[owner]["in_branch"])
    return place


def inference_graph(g: nx.DiGraph, force: bool = False) -> tuple[nx.DiGraph, object]:
    """(fused graph, FuseReport) of an annotated graph, for BN statistics in general position.

    Whether a BN before a padded conv folds depends on its values (its shift must be zero); a
    drawing is of the structure, so every BN gets a nonzero shift here and such folds are not drawn.
    """
    import torch

    from .compile import compile_graph
    from .fuse import fuse

    model = compile_graph(g, force)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.bias is not None:
                m.bias.fill_(1.0)
    _, report = fuse(model, report=True)
    return fused_graph(g, report.units), report
