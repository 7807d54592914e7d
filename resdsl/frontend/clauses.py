"""Clause arguments: `conv 64 k3 s stride` -> {out: 64, kernel: 3, stride: <value of stride>}.

Layers, stages, shortcuts, `combine` and `drop_path` share this form: positional values, then
attributes written `name value`, in short form (`k3`, `k1x7`), or as a flag (`bias`).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ..errors import Span, SpecError, unknown
from ..ir import ops
from . import ast
from .values import is_int, is_num, show, type_name

_SHORT = re.compile(r"^([a-z])(\d+(?:x\d+)?)$")      # k7, s2, k1x7


class ClauseBinder:
    """Matches clause arguments to attribute schemas (uses self.eval and self.program)."""

    def bind(self, what: str, attrs: tuple[ops.Attr, ...], positional: tuple[str, ...],
             clause: ast.clause | ast.stage, env: Mapping) -> tuple[dict, dict]:
        """Match a clause's arguments to attributes; returns (values, spans)."""
        by_name = {a.name: a for a in attrs}
        by_short = {a.short: a for a in attrs if a.short}
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        pos = list(positional)
        args = list(clause.args)
        i = 0
        while i < len(args):
            a = args[i]
            key, value, vspan = None, None, a.span
            # A word that names an attribute is that attribute, unless it is also a variable in
            # scope and a positional argument is still open (`conv g k3` with a parameter `g`).
            is_key = isinstance(a, ast.name) and (a.id in by_name and a.id not in positional or a.id in by_short)
            if is_key and not (a.id in env and pos):
                attr = by_name.get(a.id) or by_short[a.id]
                key = attr.name
                nxt = args[i + 1] if i + 1 < len(args) else None
                if attr.flag:
                    value = True
                    if nxt is not None and isinstance(nxt, ast.bool_lit):
                        value, vspan, i = nxt.value, nxt.span, i + 1
                else:
                    if nxt is None:
                        raise SpecError(f"{what} attribute '{a.id}' needs a value", a.span).with_note(
                            f"write e.g. '{a.id} 2'")
                    value, vspan, i = self.eval(nxt, env), nxt.span, i + 1
            elif (isinstance(a, ast.call) and isinstance(a.func, ast.name) and len(a.args) == 1
                  and a.args[0].name is None and (a.func.id in by_name or a.func.id in by_short)
                  and a.func.id not in (*positional, *env, *self.program.blocks)):
                # `x (n - 1)` and `stride (s * 2)` parse as calls: an attribute with a bracketed value.
                attr = by_name.get(a.func.id) or by_short[a.func.id]
                key, value, vspan = attr.name, self.eval(a.args[0].value, env), a.args[0].span
            elif isinstance(a, ast.name) and (m := _SHORT.match(a.id)) and m.group(1) in by_short and a.id not in env:
                key, value = by_short[m.group(1)].name, [int(p) for p in m.group(2).split("x")]
                value = value[0] if len(value) == 1 else value
            elif isinstance(a, ast.name) and a.id not in env and a.id not in self.program.blocks and pos == []:
                names = [*by_name, *by_short]
                raise unknown(f"attribute of {what}", a.id, names, a.span)
            else:
                if not pos:
                    raise SpecError(f"too many arguments for {what}", a.span).with_note(
                        f"{what} takes {len(positional)} positional argument{'s' * (len(positional) != 1)}"
                        + (f" ({', '.join(positional)})" if positional else "")
                        + "; attributes: " + ", ".join(n for n in by_name if n not in positional))
                key, value = pos.pop(0), self.eval(a, env)
            if key in values:
                raise SpecError(f"{what} attribute '{key}' given twice", a.span)
            values[key], spans[key] = value, vspan
            i += 1
        for name in (p for p in pos if by_name[p].default is None):
            raise SpecError(f"{what} needs {name}", clause.span).with_note(
                f"positional arguments: {', '.join(positional)}")
        for attr in attrs:
            if attr.name in values:
                values[attr.name] = self.check_type(what, attr, values[attr.name], spans[attr.name])
            else:
                values[attr.name] = attr.default
        return values, spans

    @staticmethod
    def check_type(what: str, attr: ops.Attr, v: Any, span: Span) -> Any:
        want = attr.type
        if want is object:
            return v
        if want == ops.SIZE:
            if isinstance(v, (list, tuple)) and len(v) == 2 and all(is_int(x) for x in v):
                return v[0] if v[0] == v[1] else tuple(v)
            want = int
        ok = (is_int(v) if want is int else is_num(v) if want in (float, ops.NUM) else
              isinstance(v, bool) if want is bool else isinstance(v, want))
        if not ok:
            words = {int: "an integer", float: "a number", bool: "true or false", ops.NUM: "a number"}
            name = ops.WORDS.get(attr.name, attr.name)
            raise SpecError(f"{what}: {name} must be {words.get(want, want)}, got {type_name(v)} {show(v)}", span)
        return float(v) if want is float else v

    # ---- sequences of layers ----
