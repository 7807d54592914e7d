"""The op registry: one `Op` entry per kind, holding everything about it (see base.Op).

    attribute schema and short forms   Op.attrs, Op.positional      (read by frontend/clauses.py)
    defaults                           Op.resolve, through make()   (lowering resolves once)
    shape, parameters, MACs            Op.shape, Op.params, Op.macs (ir/shapes.py writes them on nodes)
    weight sharing                     Op.weights                   (ir/build.py)
    torch module                       backend/builders.py BUILDERS (backend/compile.py), none for a merge
    receptive field                    Op.window                    (cost/receptive.py)
    drawing and tables                 Op.label, Op.what, Op.fold, Op.merge (render/, cost/tables.py)

This is the one cost implementation: MACs count multiply-accumulates of conv and fc (the
convention of torchvision's published figures); elementwise ops count 0 MACs. Families live
one per file beside this one; a new kind is one entry in one of them (or a new file listed in
FAMILIES) plus one line in docs/language.md.
"""
from __future__ import annotations

from . import activation, attention, channels, conv, eca, merge, norm, pool, resample, resize, scalar, se, stdconv, tokens
from .activation import ACT, GATE
from .base import NUM, SIZE, WORDS, Attr, AttrError, Op, OpError, Shape, Tokens, fmt, is_tokens, pair, runtime_shape

FAMILIES = (conv, stdconv, norm, activation, scalar, channels, pool, resample, resize, se, eca, tokens, attention, merge)
OPS: dict[str, Op] = {op.kind: op for family in FAMILIES for op in family.OPS}


def user_kinds() -> list[str]:
    """The kinds a spec may write, in registry order."""
    return [k for k, op in OPS.items() if op.user]


def activations() -> list[str]:
    """The activation kinds (values of `se act ...` / `gate ...`), in registry order."""
    return [k for k, op in OPS.items() if op.activation]


def make(kind: str, attrs: dict, ins: list[Shape]) -> dict:
    """Check every attribute against its schema's range, then resolve the op's defaults, once."""
    op = OPS[kind]
    for a in op.attrs:
        problem = a.check(attrs.get(a.name)) if a.check is not None and attrs.get(a.name) is not None else None
        if problem:
            raise AttrError(a.name, f"{kind}: {WORDS.get(a.name, a.name)} {problem}")
    return op.resolve(attrs, ins)


def infer(kind: str, attrs: dict, ins: list[Shape]) -> Shape:
    return OPS[kind].shape(attrs, ins)


def cost(kind: str, attrs: dict, ins: list[Shape], out: Shape) -> tuple[int, int]:
    op = OPS[kind]
    return op.params(attrs, ins, out), op.macs(attrs, ins, out)


__all__ = ["OPS", "Op", "Attr", "OpError", "AttrError", "Shape", "NUM", "SIZE", "WORDS", "fmt", "pair",
           "Tokens", "is_tokens", "runtime_shape", "make", "infer", "cost", "user_kinds", "activations", "ACT", "GATE"]
