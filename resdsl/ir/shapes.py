"""infer_shapes(g): annotate every node with in_shapes, out_shape, params and MACs; lint(g)."""
from __future__ import annotations

import networkx as nx

from ..errors import SpecError
from . import ops


def inputs_of(g: nx.DiGraph, n: str) -> list[str]:
    """Predecessors of n in input order (the `port` of each edge)."""
    pred = g.pred[n]
    return list(pred) if len(pred) < 2 else sorted(pred, key=lambda p: pred[p]["port"])


def _topological(g: nx.DiGraph) -> list[str]:
    """The nodes in topological order: the order they were added when that is one (the builder
    adds every op after its inputs), else a sort."""
    seen: set[str] = set()
    for n in g:
        if not seen.issuperset(g.pred[n]):
            return list(nx.topological_sort(g))
        seen.add(n)
    return list(g)


def infer_shapes(g: nx.DiGraph) -> nx.DiGraph:
    """One pass in topological order; a mismatch is a SpecError at the op's source span. MACs are
    those of the inference forward pass: an aux head (training only) costs parameters, not MACs."""
    nodes = g.nodes
    aux = {a["name"] for a in g.graph.get("aux", ())}
    for n in _topological(g):
        d = nodes[n]
        if d["kind"] == "input":
            d.update(in_shapes=[], out_shape=tuple(g.graph["input_shape"]), params=0, macs=0)
            continue
        ins = [nodes[p]["out_shape"] for p in inputs_of(g, n)]
        try:
            out = ops.infer(d["kind"], d["attrs"], ins)
        except ops.OpError as e:
            raise SpecError(str(e), d["span"], list(e.notes)) from None
        params, macs = ops.cost(d["kind"], d["attrs"], ins, out)
        if d.get("shared_from"):
            params = 0
        if d["scope"]["section"] in aux:
            macs = 0
        d.update(in_shapes=ins, out_shape=out, params=params, macs=macs)
    return g


def lint(g: nx.DiGraph) -> None:
    """Invariants between passes (a failure is a bug in resdsl, not in the spec)."""
    if not nx.is_directed_acyclic_graph(g):
        raise AssertionError("graph has a cycle")
    sinks = [n for n in g if g.out_degree(n) == 0]
    if set(sinks) != {g.graph["output"], *(a["output"] for a in g.graph.get("aux", ()))} or len(sinks) != 1 + len(
            g.graph.get("aux", ())):
        raise AssertionError(f"graph must have one output (and one per aux head), has {sinks}")
    for n, d in g.nodes(data=True):
        if d["kind"] != "input" and d["kind"] not in ops.OPS:
            raise AssertionError(f"node {n} has unknown kind {d['kind']}")
        arity = ops.OPS[d["kind"]].n_inputs if d["kind"] != "input" else 0
        if arity >= 0 and g.in_degree(n) != arity:
            raise AssertionError(f"node {n} ({d['kind']}) has {g.in_degree(n)} inputs, expects {arity}")
        if d["kind"] != "input" and d["parent"] not in g.graph["containers"]:
            raise AssertionError(f"node {n} sits in no container ({d['parent']})")
    for u, v, e in g.edges(data=True):
        if e["kind"] not in ("main", "shortcut"):
            raise AssertionError(f"edge {u}->{v} has kind {e['kind']}")


def totals(g: nx.DiGraph) -> tuple[int, int]:
    """(parameters, MACs) of the whole network."""
    return (sum(d["params"] for _, d in g.nodes(data=True)), sum(d["macs"] for _, d in g.nodes(data=True)))
