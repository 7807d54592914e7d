"""Clause arguments: `conv 64 k3 s stride` -> {out: 64, kernel: 3, stride: <value of stride>}.

Layers, stages, shortcuts, `merge` and `drop_path` share this form: positional values, then
attributes written `name value`, in short form (`k3`, `k1x7`), or as a flag (`bias`).
"""
from __future__ import annotations

import math

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import Span, SpecError, unknown
from ..ir import ops
from . import ast
from .context import Context
from .values import is_int, is_num, show, type_name

_SHORT = re.compile(r"^([a-z])(\d+(?:x\d+)?)$")      # k7, s2, k1x7


@dataclass
class Clause:
    """One clause being bound: its schema, what is left of its positional arguments, the scope."""
    ctx: Context
    what: str
    attrs: tuple[ops.Attr, ...]
    positional: tuple[str, ...]
    env: Mapping
    pos: list[str]
    block: bool = False          # a block used as a layer: every parameter may be given in order

    def __post_init__(self) -> None:
        self.by_name, self.by_short = _tables(self.ctx, self.attrs)


def _tables(ctx: Context, attrs: tuple[ops.Attr, ...]) -> tuple[dict, dict]:
    """A schema's attributes by name and by short form, built once per schema and lowering
    (keyed by identity: hashing the Attrs would cost more than building the tables)."""
    hit = ctx.schemas.get(id(attrs))
    if hit is None or hit[0] is not attrs:
        hit = ctx.schemas[id(attrs)] = (attrs, {a.name: a for a in attrs}, {a.short: a for a in attrs if a.short})
    return hit[1], hit[2]


def bind(ctx: Context, what: str, attrs: tuple[ops.Attr, ...], positional: tuple[str, ...],
         clause: ast.clause | ast.stage, env: Mapping, block: bool = False) -> tuple[dict, dict]:
    """Match a clause's arguments to attributes; returns (values, spans), defaults filled in."""
    c = Clause(ctx, what, attrs, positional, env, list(positional), block)
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    args, i = clause.args, 0
    while i < len(args):
        start = args[i]
        key, value, vspan, i = argument(c, args, i)
        if key in values:
            raise SpecError(f"{what} attribute '{key}' given twice", start.span)
        values[key], spans[key] = value, vspan
    for name in c.pos:
        if c.by_name[name].default is None:
            raise SpecError(f"{what} needs {name}", clause.span).with_note(
                f"positional arguments: {', '.join(positional)}")
    for attr in attrs:
        name = attr.name
        if name not in values:
            values[name] = attr.default
        elif attr.type is not int or type(values[name]) is not int:     # a plain int needs no type check
            values[name] = check_type(what, attr, values[name], spans[name])
        elif abs(values[name]) > INT64_MAX:
            in_range(what, name, values[name], spans[name])
    return values, spans


def bind_layer(ctx: Context, op: ops.Op, clause: ast.clause, env: Mapping) -> tuple[dict, dict]:
    """`bind` for a layer clause, remembered per lowering: the same clause in the 200th block of a
    stage binds as in the first when the names it mentions have the same values there."""
    names = _names(ctx, clause)
    try:
        key = (id(clause), *((v, type(v)) for v in (env.get(n, _ABSENT) for n in names)))
        hit = ctx.bound.get(key)
    except TypeError:                  # a name bound to a list: not remembered
        key, hit = None, None
    if hit is None or hit[0] is not clause:
        hit = (clause, *bind(ctx, op.kind, op.attrs, op.positional, clause, env))
        if key is not None:
            ctx.bound[key] = hit
    return dict(hit[1]), hit[2]


_ABSENT = object()


def _names(ctx: Context, clause: ast.clause) -> tuple[str, ...]:
    """Every name a clause's arguments mention (attribute words too: whether one is a variable
    decides how it binds), found once per clause and lowering."""
    hit = ctx.clause_names.get(id(clause))
    if hit is None or hit[0] is not clause:
        found: dict[str, None] = {}
        stack = list(clause.args)
        while stack:
            node = stack.pop()
            if isinstance(node, ast.name):
                found[node.id] = None
            if isinstance(node, ast.Node):
                stack.extend(getattr(node, f) for f in type(node).model_fields if f != "span")
            elif isinstance(node, (tuple, list)):
                stack.extend(node)
        hit = ctx.clause_names[id(clause)] = (clause, tuple(found))
    return hit[1]


def argument(c: Clause, args: list, i: int) -> tuple[str, Any, Span, int]:
    """The attribute args[i] sets, its value and where the value is written; the next index."""
    a = args[i]
    if c.block and isinstance(a, ast.name) and a.id in c.by_name:
        # A block's parameters are all positional, in order, and all names: a word naming one is
        # that parameter (`basic 64 stride 2`, `basic 64 stride stride`), unless it is a variable
        # in scope naming the next open parameter (`unit dim grid` passes dim, then grid).
        nxt = args[i + 1] if i + 1 < len(args) else None
        if not (a.id in c.env and c.pos and c.pos[0] == a.id and not (isinstance(nxt, ast.name) and nxt.id == a.id)):
            if a.id in c.pos:
                c.pos.remove(a.id)
            return named(c, args, i)
        c.pos.remove(a.id)
        return a.id, c.ctx.eval(a, c.env), a.span, i + 1
    # A word that names an attribute is that attribute, unless it is also a variable in
    # scope and a positional argument is still open (`conv g k3` with a parameter `g`).
    is_key = isinstance(a, ast.name) and (a.id in c.by_name and a.id not in c.positional or a.id in c.by_short)
    if is_key and not (a.id in c.env and c.pos):
        return named(c, args, i)
    if (isinstance(a, ast.call) and isinstance(a.func, ast.name) and len(a.args) == 1
            and a.args[0].name is None and (a.func.id in c.by_name or a.func.id in c.by_short)
            and a.func.id not in ((() if c.block else c.positional) + (*c.env, *c.ctx.program.blocks))):
        # `dilation(2 ** i)` parses as a call: an attribute with a bracketed value.
        attr = c.by_name.get(a.func.id) or c.by_short[a.func.id]
        if attr.name in c.pos:
            c.pos.remove(attr.name)
        return attr.name, c.ctx.eval(a.args[0].value, c.env), a.args[0].span, i + 1
    if isinstance(a, ast.name) and (m := _SHORT.match(a.id)) and m.group(1) in c.by_short and a.id not in c.env:
        value = [int(p) for p in m.group(2).split("x")]
        return c.by_short[m.group(1)].name, value[0] if len(value) == 1 else value, a.span, i + 1
    if isinstance(a, ast.name) and a.id not in c.env and a.id not in c.ctx.program.blocks and c.pos == []:
        raise unknown(f"attribute of {c.what}", a.id, [*c.by_name, *c.by_short], a.span)
    if not c.pos:
        raise too_many(c, a)
    return c.pos.pop(0), c.ctx.eval(a, c.env), a.span, i + 1


def named(c: Clause, args: list, i: int) -> tuple[str, Any, Span, int]:
    """`kernel 3`, `k 3`, a flag (`bias`, `bias false`)."""
    a = args[i]
    attr = c.by_name.get(a.id) or c.by_short[a.id]
    nxt = args[i + 1] if i + 1 < len(args) else None
    if attr.flag:
        if nxt is not None and isinstance(nxt, ast.bool_lit):
            return attr.name, nxt.value, nxt.span, i + 2
        return attr.name, True, a.span, i + 1
    if nxt is None:
        raise SpecError(f"{c.what} attribute '{a.id}' needs a value", a.span).with_note(f"write e.g. '{a.id} 2'")
    return attr.name, c.ctx.eval(nxt, c.env), nxt.span, i + 2


def too_many(c: Clause, a) -> SpecError:
    n = len(c.positional)
    return SpecError(f"too many arguments for {c.what}", a.span).with_note(
        f"{c.what} takes {n} positional argument{'s' * (n != 1)}"
        + (f" ({', '.join(c.positional)})" if c.positional else "")
        + "; attributes: " + ", ".join(x for x in c.by_name if x not in c.positional))


def check_type(what: str, attr: ops.Attr, v: Any, span: Span) -> Any:
    want = attr.type
    if want is object:
        return v
    if want == ops.SIZE:
        if isinstance(v, (list, tuple)) and len(v) in (1, 2) and all(is_int(x) for x in v):
            return v[0] if len(v) == 2 and v[0] == v[1] else tuple(v)      # [k]: one size, for a C×L input
        want = int
    ok = (is_int(v) if want is int else is_num(v) if want in (float, ops.NUM) else
          isinstance(v, bool) if want is bool else isinstance(v, want))
    if not ok:
        words = {int: "an integer", float: "a number", bool: "true or false", ops.NUM: "a number"}
        name = ops.WORDS.get(attr.name, attr.name)
        raise SpecError(f"{what}: {name} must be {words.get(want, want)}, got {type_name(v)} {show(v)}", span)
    return in_range(what, attr.name, float(v) if want is float else v, span)


INT64_MAX = (1 << 63) - 1


def in_range(what: str, name: str, v: Any, span: Span) -> Any:
    """A number that becomes a tensor value or a size fits it: floats finite and within float32
    (a gate bias of 1e308 would be inf in the weights), integers within int64 (torch's sizes)."""
    from .values import FLOAT32_MAX

    name = ops.WORDS.get(name, name)
    if isinstance(v, float) and not (math.isfinite(v) and abs(v) <= FLOAT32_MAX):
        raise SpecError(f"{what}: {name} {show(v)} is out of range (a finite float32, |v| ≤ 3.4e38)", span)
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > INT64_MAX:
        raise SpecError(f"{what}: {name} {show(v)} is out of range (a 64-bit integer)", span)
    if isinstance(v, (list, tuple)):
        for x in v:
            in_range(what, name, x, span)
    return v
