"""Budget checks on a lowered net and its graph, before anything is built (limits: resdsl/limits.py)."""
from __future__ import annotations

import networkx as nx

from . import limits
from .errors import SpecError
from .ir.net import Net


def check_graph(net: Net, g: nx.DiGraph) -> None:
    """Graph nodes within the `ops` budget (lowering already counted layers as it made them, and
    screen.py bounded every `parallel`'s branches on the syntax tree)."""
    limits.OPS.check(g.number_of_nodes(), net.span)


def memory_need(g: nx.DiGraph) -> tuple[int, int]:
    """(parameter bytes, activation bytes of one training sample) in fp32, from the graph."""
    from .cost.memory import activation_bytes
    from .ir.shapes import totals

    params, _ = totals(g)
    return params * 4, activation_bytes(g, g.nodes, 1)


def check_memory(net: Net, g: nx.DiGraph, force: bool = False) -> None:
    """Refuse, before allocating, a network whose parameters and activations at its declared input
    (one sample, fp32, every op output kept for backward) exceed the memory budget."""
    params, acts = memory_need(g)
    budget = limits.memory_budget()
    if params + acts > budget and not force:
        raise SpecError(f"network '{net.name}' needs {(params + acts) / 2**30:.1f} GiB at its declared input "
                        f"({params / 2**30:.2f} GiB of fp32 parameters, {acts / 2**30:.2f} GiB of activations "
                        f"for one image), over the budget of {budget / 2**30:.1f} GiB", net.span).with_note(
            "limit 'memory' (default: half this machine's memory; RESDSL_LIMIT_MEMORY=BYTES sets it), "
            "or pass --force (or force=True) to build it anyway")
