"""Cross-check the graph's MACs against torch.utils.flop_counter on the compiled module.

flop_counter counts FLOPs = 2 × MACs of the aten ops it knows (convolution, mm, addmm, bmm,
attention) and nothing for elementwise ops, so both sides count the same things. Differences
are reported per op kind and per layer (graph node ids equal the module paths it reports).
A model built on the meta device is counted from shapes alone, without arithmetic.
"""
from __future__ import annotations

from collections import defaultdict

import networkx as nx

from ..ir.ops import OPS

# aten op (as flop_counter names it) -> graph op kind (the registry's `aten` facet)
ATEN_KINDS = {aten: kind for kind, op in OPS.items() for aten in op.aten}


def counted_macs(model, input_shape: tuple[int, ...]) -> tuple[dict[str, int], dict[str, int]]:
    """(MACs per graph op kind, MACs per leaf module path) of one forward pass on one sample."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            device = next(model.parameters(), torch.empty(0)).device     # a net may have no weights
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    by_kind: dict[str, int] = defaultdict(int)
    for op, flops in counts.get("Global", {}).items():
        name = str(op).split(".")[1] if "." in str(op) else str(op)
        by_kind[ATEN_KINDS.get(name, f"aten.{name}")] += flops // 2
    # A shared module is booked under one of its names; book it under its first (the graph's).
    # MACs are booked on leaf modules, and on a module that applies its children's weights itself
    # (resdsl's attention runs its qkv and proj Linears with F.linear: `books_own_macs`).
    first = {id(m): n for n, m in model.named_modules()}
    canonical = {n: first[id(m)] for n, m in model.named_modules(remove_duplicate=False)
                 if n and (getattr(m, "books_own_macs", False) or not any(True for _ in m.children()))}
    by_module: dict[str, int] = defaultdict(int)
    for k, v in counts.items():
        name = k.partition(".")[2]
        if name in canonical:
            by_module[canonical[name]] += sum(v.values()) // 2
    return dict(by_kind), dict(by_module)


def graph_macs(g: nx.DiGraph) -> tuple[dict[str, int], dict[str, int]]:
    """(MACs per op kind, MACs per module) of the annotated graph, nodes with MACs only.

    A node of a weight-sharing block runs the module it shares (`shared_from`), which is
    where flop_counter books its MACs, so it is counted there."""
    by_kind: dict[str, int] = defaultdict(int)
    by_node: dict[str, int] = defaultdict(int)
    for n, d in g.nodes(data=True):
        if d.get("macs"):
            by_kind[d["kind"]] += d["macs"]
            by_node[d.get("shared_from") or n] += d["macs"]
    return dict(by_kind), dict(by_node)


def owning_node(g: nx.DiGraph, module: str) -> str | None:
    """The graph node a leaf module belongs to: itself, or its nearest enclosing node
    (an `se` op is one node compiled to the modules se1.fc1 and se1.fc2)."""
    name = module
    while name:
        if name in g:
            return name
        name = name.rpartition(".")[0]
    return None


def cross_check(model, g: nx.DiGraph) -> dict:
    """{"ok", "by_kind": [{kind, graph, counted, diff}], "layers": [...only those that differ]}.

    flop_counter books MACs on leaf modules; each is attributed to the graph node that owns
    it, and per-kind totals use that node's kind. MACs booked outside any graph node (or
    outside any module) appear under their aten op name, so they show up as a difference."""
    counted_aten, counted_leaf = counted_macs(model, tuple(g.graph["input_shape"]))
    counted_mod: dict[str, int] = defaultdict(int)
    counted_kind: dict[str, int] = defaultdict(int)
    for leaf, macs in counted_leaf.items():
        node = owning_node(g, leaf)
        counted_mod[node or leaf] += macs
        counted_kind[g.nodes[node]["kind"] if node else f"module {leaf}"] += macs
    outside = sum(counted_aten.values()) - sum(counted_leaf.values())
    if outside:
        counted_kind["outside modules"] += outside
    graph_kind, graph_node = graph_macs(g)
    kinds = [{"kind": k, "graph": graph_kind.get(k, 0), "counted": counted_kind.get(k, 0),
              "diff": counted_kind.get(k, 0) - graph_kind.get(k, 0)}
             for k in sorted(set(graph_kind) | set(counted_kind))]
    layers = [{"layer": n, "graph": graph_node.get(n, 0), "counted": counted_mod.get(n, 0),
               "diff": counted_mod.get(n, 0) - graph_node.get(n, 0)}
              for n in sorted(set(graph_node) | set(counted_mod))
              if counted_mod.get(n, 0) != graph_node.get(n, 0)]
    return {"ok": all(k["diff"] == 0 for k in kinds) and not layers, "unit": "MACs per sample",
            "by_kind": kinds, "layers": layers}
