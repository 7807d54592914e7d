"""`init [SECTION ...] KIND ... [PART] [FILL [VALUE]] [bias FILL [VALUE]]` -> TensorInit.

The tensor form of `init` says how a network's layers start, in the words of torch.nn.init:

    init fc attention trunc_normal 0.02 bias zeros     # timm's ViT: every Linear N(0, 0.02²), biases 0
    init head fc zeros bias zeros                      # torchvision's ViT head
    init attention qkv xavier_uniform bias zeros       # nn.MultiheadAttention's packed in_proj

Sections (stem, stage, transition, head, aux) narrow it to those parts of the network; kinds are
layer kinds that have weights; a part is a sublayer the kind names (`Op.parts`). The fills are
`INIT_FILLS` (ir/kinds.py); their effect is backend/init.py.
"""
from __future__ import annotations

import math

from ..errors import SpecError, unknown
from ..ir import ops
from ..ir.kinds import INIT_DIRECTIVES, INIT_FILLS, INIT_SECTIONS
from ..ir.net import IR, Layer, Net, Section, TensorInit
from . import ast
from .values import is_num, show


def weighted_kinds() -> list[str]:
    """The layer kinds an `init` may name: those that own weights."""
    return [k for k, op in ops.OPS.items() if op.user and op.weights != "none"]


class Words:
    """The arguments of one `init`, read left to right."""

    def __init__(self, st: ast.init_stmt):
        self.args, self.i, self.span = list(st.args), 0, st.span

    def word(self) -> str | None:
        a = self.args[self.i] if self.i < len(self.args) else None
        return a.id if isinstance(a, ast.name) else None

    def take(self):
        self.i += 1
        return self.args[self.i - 1]

    def here(self):
        return self.args[self.i].span if self.i < len(self.args) else self.span


def tensor_init(ctx, st: ast.init_stmt, env) -> TensorInit:
    """One tensor `init` statement, every word checked where it is written."""
    w = Words(st)
    sections = []
    while w.word() in INIT_SECTIONS:
        sections.append(w.take().id)
    kinds = []
    while w.word() in ops.OPS and ops.OPS[w.word()].user:
        kinds.append(layer_kind(w.take()))
    if not kinds:
        word = w.word() or ""
        raise unknown("init directive or layer kind", word, [*INIT_DIRECTIVES, *weighted_kinds()], w.here())
    part = None
    if w.word() in {p for k in kinds for p in ops.OPS[k].parts}:
        part = w.take()
        lacking = [k for k in kinds if part.id not in ops.OPS[k].parts]
        if lacking:
            raise SpecError(f"init: {lacking[0]} has no part '{part.id}'", part.span).with_note(
                f"give {', '.join(k for k in kinds if k not in lacking)} {part.id} an init of its own")
        part = part.id
    weight = fill(ctx, w, env, kinds) if w.word() in INIT_FILLS else None
    bias = None
    if w.word() == "bias":
        w.take()
        if w.word() not in INIT_FILLS:
            raise no_fill(w, "bias")
        bias = fill(ctx, w, env, kinds)
    if weight is None and bias is None:
        raise no_fill(w, " ".join(kinds))
    if w.i < len(w.args):
        raise SpecError(f"init: unexpected {show_arg(w.args[w.i])} after the fill", w.here()).with_note(
            "init [SECTION ...] KIND ... [PART] [FILL [VALUE]] [bias FILL [VALUE]]")
    return TensorInit(sections=tuple(sections), kinds=tuple(kinds), part=part, weight=weight, bias=bias,
                      span=st.span)


def no_fill(w: Words, after: str) -> SpecError:
    """A fill was due: an unknown word (did you mean ...?), a value, or nothing."""
    if w.word() is not None:
        return unknown("fill", w.word(), INIT_FILLS, w.here())
    what = "nothing" if w.i >= len(w.args) else "a value"
    return SpecError(f"init: {after} needs a fill, got {what}", w.here()).with_note(
        "fills: " + ", ".join(INIT_FILLS))


def show_arg(a) -> str:
    return f"'{a.id}'" if isinstance(a, ast.name) else show(a.value) if hasattr(a, "value") else "an expression"


def layer_kind(a: ast.name) -> str:
    op = ops.OPS[a.id]
    if op.weights == "none":
        raise SpecError(f"init {a.id}: a {a.id} layer has no weights to initialise", a.span).with_note(
            "kinds with weights: " + ", ".join(weighted_kinds()))
    return a.id


def fill(ctx, w: Words, env, kinds: list[str]) -> tuple[str, tuple[float, ...]]:
    """FILL and its numbers."""
    name = w.take()
    f = INIT_FILLS[name.id]
    vectors = [k for k in kinds if ops.OPS[k].weights == "norm"]
    if f.fan and vectors:
        raise SpecError(f"init {vectors[0]} {f.name}: {f.name} is scaled by a fan-in, but a {vectors[0]}'s "
                        "weight is a vector", name.span).with_note("a norm takes ones, zeros, constant V or normal S")
    values = []
    for _ in range(f.values):
        if w.i >= len(w.args) or w.word() in INIT_FILLS or w.word() == "bias":
            raise SpecError(f"init: {f.name} takes {f.values} value{'s' * (f.values != 1)}", name.span).with_note(
                f"{f.name}: {f.doc}")
        arg = w.take()
        v = ctx.eval(arg, env)
        if not is_num(v) or not math.isfinite(v) or (f.sign != "any" and v < 0):
            what = "a number" if f.sign == "any" else "a non-negative number"
            raise SpecError(f"init: {f.name} needs {what}, got {show(v)}", arg.span)
        values.append(float(v))
    return (f.name, tuple(values))


def layers(node) -> list[Layer]:
    """Every layer inside an IR node (a section, stage, block, dataflow ...), in order."""
    if isinstance(node, Layer):
        return [node]
    if isinstance(node, (tuple, list)):
        return [x for n in node for x in layers(n)]
    if isinstance(node, IR):
        return [x for f in type(node).model_fields for x in layers(getattr(node, f))]
    return []


def check_targets(net: Net) -> None:
    """Each tensor `init` reaches at least one layer: `init head conv ...` of a head without a conv is a mistake."""
    present = {(p.role if isinstance(p, Section) else "stage", lay.kind)
               for p in net.body for lay in layers(p)}
    for _, d in net.init:
        if not isinstance(d, TensorInit):
            continue
        where = d.sections or tuple(INIT_SECTIONS)
        if not any((s, k) in present for s in where for k in d.kinds):
            place = f"the {' or '.join(d.sections)}" if d.sections else "the network"
            raise SpecError(f"init: {place} has no {' or '.join(d.kinds)} layer", d.span)

