"""The budgets checked on the annotated graph before anything is built: its size in ops, and the
memory budget, the one rule for every path that allocates a network (compile, export, profile
--run, train and --grow; render --fuse allocates none). The limits themselves: resdsl/limits.py."""
from __future__ import annotations

import networkx as nx

from . import limits
from .cost.memory import activation_bytes
from .errors import SpecError
from .ir.shapes import totals


def check_graph(g: nx.DiGraph) -> None:
    """Graph nodes within the `ops` budget (lowering already counted layers as it made them, and
    screen.py bounded every `parallel`'s branches on the syntax tree)."""
    limits.OPS.check(g.number_of_nodes(), g.graph["span"])


def memory_need(g: nx.DiGraph) -> tuple[int, int]:
    """(parameter bytes, activation bytes of one training sample) in fp32, from the graph."""
    params, _ = totals(g)
    return params * 4, activation_bytes(g, g.nodes, 1)


def check_memory(g: nx.DiGraph, force: bool = False) -> None:
    """Refuse, before allocating, a network whose parameters and activations at its declared input
    (one sample, fp32, every op output kept for backward) exceed the memory budget."""
    params, acts = memory_need(g)
    budget = limits.memory_budget()
    if params + acts > budget and not force:
        raise SpecError(f"network '{g.graph['name']}' needs {(params + acts) / 2**30:.1f} GiB at its declared input "
                        f"({params / 2**30:.2f} GiB of fp32 parameters, {acts / 2**30:.2f} GiB of activations "
                        f"for one image), over the budget of {budget / 2**30:.1f} GiB", g.graph["span"]).with_note(
            "limit 'memory' (default: half this machine's memory; RESDSL_LIMIT_MEMORY=BYTES sets it), "
            "or pass --force (or force=True) to build it anyway")
