"""The state of one lowering, passed explicitly to every lowering function (no globals).

Lowering tracks the tensor shape through the network with the registry's shape rules (the same
ones infer_shapes uses), because the language refers to shapes: `in` is a block's input
channels, and a `projection` shortcut exists only where the shape changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from .. import limits
from ..errors import Span, SpecError
from ..ir import ops
from ..ir.net import Layer
from .load import Program
from .values import Evaluator



@dataclass
class Context:
    program: Program
    eval: Evaluator
    expand: Callable        # blocks.block: expands a block call (sequences call it for nested blocks)
    n_layers: int = 0
    block_stack: list[str] = field(default_factory=list)     # blocks being expanded (recursion check)
    dilation: int = 1       # of the previous stage (for `dilation`)
    net_blocks: int = 0     # stage blocks in the network (`net_blocks` in stage arguments)
    net_index: int = 0      # stage blocks lowered so far (`net_index` of the next one)
    max_layers: int = field(default_factory=lambda: limits.OPS.value)   # read once per lowering
    schemas: dict = field(default_factory=dict)    # clauses.py: attribute tables per schema (a cache)
    resolved: dict = field(default_factory=dict)   # resolve(): (kind, attrs, input shape) -> (attrs, out)
    bound: dict = field(default_factory=dict)      # clauses.bind_layer: (clause, values of its names) -> bound
    clause_names: dict = field(default_factory=dict)   # clauses._names: clause -> the names it mentions

    def count(self, n: int, span: Span) -> None:
        """Count n more layers; refuse a network past the `ops` budget (limits.py) before building it."""
        self.n_layers += n
        if self.n_layers > self.max_layers:     # the message only when refused: this runs per layer
            raise limits.OPS.error(f"more than {self.max_layers:,} layers", span)


def make(kind: str, attrs: dict, ins: list[ops.Shape], span: Span, spans: Mapping[str, Span] = {}) -> dict:
    """Check and resolve an op's attributes (ops.make); a bad value is reported where it was written."""
    try:
        return ops.make(kind, attrs, ins)
    except ops.AttrError as e:
        raise SpecError(str(e), spans.get(e.attr, span), list(e.notes)) from None
    except ops.OpError as e:
        raise SpecError(str(e), span, list(e.notes)) from None


def infer(kind: str, attrs: dict, ins: list[ops.Shape], span: Span) -> ops.Shape:
    """The op's output shape; a mismatch is a SpecError at `span`."""
    try:
        return ops.infer(kind, attrs, ins)
    except ops.OpError as e:
        raise SpecError(str(e), span, list(e.notes)) from None


def resolve(ctx: Context, kind: str, attrs: dict, shape: ops.Shape, span: Span,
            spans: Mapping[str, Span] = {}) -> tuple[dict, ops.Shape]:
    """make + infer for a layer on one input, remembered per lowering: a deep network repeats the
    same few (kind, attributes, input shape) hundreds of times (ResNet-1202: 7 distinct convs)."""
    try:
        key = (kind, shape, repr(shape), *attrs.items(), *map(type, attrs.values()))  # 1 and 1.0 differ; tokens and maps too
        hit = ctx.resolved.get(key)
    except TypeError:                         # an unhashable attribute value (a list): no cache
        key, hit = None, None
    if hit is None:
        made = make(kind, attrs, [shape], span, spans)
        hit = (made, infer(kind, made, [shape], span))
        if key is not None:
            ctx.resolved[key] = hit
    return dict(hit[0]), hit[1]


def layer(kind: str, name: str, attrs: dict, ins: list[ops.Shape], span: Span) -> tuple[Layer, ops.Shape]:
    """A Layer lowering produces itself (a shortcut's conv, a gate): resolved, with its output shape."""
    attrs = make(kind, attrs, ins, span)
    return Layer(kind=kind, name=name, attrs=attrs, span=span), infer(kind, attrs, ins, span)
