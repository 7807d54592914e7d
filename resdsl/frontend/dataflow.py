"""Dataflow bodies: named tensors inside a sequence, so a block body may be any DAG.

    split 2 -> a b; from b; conv w k1; bn; relu -> c; concat a c; shuffle 2

Each statement reads the current tensor and makes a new one; `-> h` names it, `from h` makes a
named tensor current again, and the merges `add`, `concat`, `mul`, `sub` read tensors by name (with
one name, the current tensor comes first: `mul g` is current · g, `sub x` is current − x). `x` names the sequence's input.
`split N -> a b ...` (or `split [c1, c2] -> a b`) cuts the channels into named parts. A body that
uses any of these lowers to one `Dataflow` item named `{prefix}flow` holding its steps.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ..errors import SpecError, unknown
from ..ir import ops
from ..ir.net import Dataflow, Step
from . import ast
from .context import Context, layer
from .values import is_int, show

MERGES = {"add": {"scale": 1.0, "drop_prob": 0.0, "drop_mode": "batch"}, "concat": {}, "mul": {}, "sub": {}}
WORDS = (*MERGES, "split")       # statements of a dataflow body that are not layers


def uses_dataflow(body: ast.seq) -> bool:
    """Whether a sequence names tensors (then it is lowered as a DAG, not a chain)."""
    def named(st) -> bool:
        if isinstance(st, (ast.tap, ast.from_stmt)):
            return True
        if isinstance(st, ast.clause):
            return bool(st.outputs) or st.keyword in WORDS
        if isinstance(st, ast.if_stmt):
            return any(map(named, st.then.stmts)) or (st.orelse is not None and any(map(named, st.orelse.stmts)))
        if isinstance(st, ast.repeat):
            return any(map(named, st.body.stmts))
        return False
    return any(map(named, body.stmts))


@dataclass
class Flow:
    """The tensors of one body as it is lowered: shapes by name, aliases (`-> h` on an existing
    tensor), the steps made so far and the current tensor."""
    prefix: str
    shapes: dict[str, ops.Shape]
    steps: list[Step] = field(default_factory=list)
    alias: dict[str, str] = field(default_factory=dict)
    count: Counter = field(default_factory=Counter)
    current: str = "x"
    fresh: int = 0

    def real(self, name: str) -> str:
        return self.alias.get(name, name)

    def known(self, name: str, span) -> str:
        if name not in self.shapes:
            raise unknown("tensor", name, [n for n in self.shapes if "%" not in n], span)
        return name

    def add(self, item, inputs: tuple[str, ...], shape: ops.Shape, output: str | None = None) -> None:
        """A step; a name given again (`-> h` in a `repeat`) names the new tensor from here on."""
        inputs = tuple(self.real(i) for i in inputs)
        if output is None:
            self.fresh += 1
            output = f"%{self.fresh}"
        self.alias.pop(output, None)
        if output in self.shapes:
            self.fresh += 1
            self.alias[output] = f"{output}%{self.fresh}"
        self.steps.append(Step(item=item, inputs=inputs, output=self.real(output)))
        self.shapes[output] = self.shapes[self.real(output)] = shape
        self.current = output


def lower(ctx: Context, body: ast.seq, env: dict, shape: ops.Shape, prefix: str, unrolled: Callable,
          statement: Callable) -> tuple[tuple, ops.Shape]:
    """A body with named tensors as one Dataflow item; `statement(st, env, shape, prefix, count)`
    lowers an ordinary statement to (items, shape) as the chain lowering does."""
    name = f"{prefix}flow"
    f = Flow(prefix=name + ".", shapes={"x": shape})
    for st in unrolled(ctx, body.stmts, env):
        if isinstance(st, ast.let_stmt):
            env[st.name] = ctx.eval(st.value, env)
        elif isinstance(st, ast.tap):
            tap(f, st)
        elif isinstance(st, ast.from_stmt):
            f.current = f.known(st.tensor, st.span)
        elif isinstance(st, ast.clause) and st.keyword in MERGES:
            merge(ctx, f, st)
        elif isinstance(st, ast.clause) and st.keyword == "split":
            split(ctx, f, st, env)
        else:
            outputs = st.outputs if isinstance(st, ast.clause) else ()
            if len(outputs) > 1:
                raise many_names(st.keyword, len(outputs), st.span)
            items, out = statement(st, env, f.shapes[f.current], f.prefix, f.count)
            for k, item in enumerate(items):      # several: an `aggregate`'s layers, one after another
                last = k == len(items) - 1
                shape = out if last else ops.infer(item.kind, item.attrs, [f.shapes[f.current]])
                f.add(item, (f.current,), shape, outputs[0] if last and outputs else None)
    if not f.steps:
        raise SpecError("a dataflow body needs at least one layer", body.span)
    out = f.real(f.current)
    check_used(f, out)
    return (Dataflow(name=name, steps=tuple(f.steps), output=out, span=body.span),), f.shapes[f.current]


def many_names(what: str, n: int, span) -> SpecError:
    return SpecError(f"{what} makes one tensor, not {n}", span).with_note(
        "only `split` makes several: `split 2 -> a b`")


def tap(f: Flow, st: ast.tap) -> None:
    """`-> h` alone: h names the current tensor."""
    if len(st.names) != 1:
        raise SpecError("`-> NAME` names one tensor (use `split N -> a b` to cut one)", st.span)
    h = st.names[0]
    f.alias[h] = f.real(f.current)
    f.shapes[h] = f.shapes[f.current]
    f.current = h


def merge(ctx: Context, f: Flow, st: ast.clause) -> None:
    """`add a b`, `concat a b c`, `mul g` (current · g): a merge node reading tensors by name."""
    names = []
    for a in st.args:
        if not isinstance(a, ast.name):
            raise SpecError(f"{st.keyword} takes names of tensors", a.span).with_note(
                f"e.g. `{st.keyword} a b` after `... -> a` and `... -> b`")
        names.append(f.known(a.id, a.span))
    if not names:
        raise SpecError(f"{st.keyword} needs at least one tensor name", st.span).with_note(
            f"e.g. `{st.keyword} a b`, or `{st.keyword} a` for the current tensor and a")
    inputs = tuple(names) if len(names) > 1 else (f.current, *names)
    real = [f.real(n) for n in inputs]
    twice = next((n for n, r in zip(inputs, real) if real.count(r) > 1), None)
    if twice is not None:
        raise SpecError(f"{st.keyword} reads the tensor '{twice}' twice", st.span).with_note(
            "a merge reads each tensor once")
    if len(st.outputs) > 1:
        raise many_names(st.keyword, len(st.outputs), st.span)
    f.count[st.keyword] += 1
    item, out = layer(st.keyword, f"{f.prefix}{st.keyword}{f.count[st.keyword]}", dict(MERGES[st.keyword]),
                      [f.shapes[n] for n in inputs], st.span)
    ctx.count(1, st.span)
    f.add(item, inputs, out, st.outputs[0] if st.outputs else None)


def split(ctx: Context, f: Flow, st: ast.clause, env: dict) -> None:
    """`split N -> a b ...` or `split [c1, c2] -> a b`: channel slices of the current tensor."""
    if len(st.args) != 1:
        raise SpecError("split takes one count or one list of sizes", st.span).with_note(
            "e.g. `split 2 -> a b` or `split [16, 48] -> a b`")
    cur = f.current
    c = f.shapes[cur][0]
    parts = ctx.eval(st.args[0], env)
    if is_int(parts):
        if parts < 1 or c % parts:
            raise SpecError(f"split {parts}: the {c} channels do not divide into {parts} equal parts",
                            st.args[0].span)
        parts = [c // parts] * parts
    if not isinstance(parts, list) or not all(is_int(p) and p > 0 for p in parts) or sum(parts) != c:
        raise SpecError(f"split sizes {show(parts)} must be positive and add up to the {c} channels",
                        st.args[0].span)
    if len(st.outputs) != len(parts):
        raise SpecError(f"split makes {len(parts)} tensors; name each: `-> "
                        + " ".join(f"t{i + 1}" for i in range(len(parts))) + "`", st.span)
    start = 0
    for size, name in zip(parts, st.outputs):
        f.count["slice"] += 1
        attrs = {"start": start, "stop": start + size}
        item, out = layer("slice", f"{f.prefix}slice{f.count['slice']}", attrs, [f.shapes[cur]], st.span)
        ctx.count(1, st.span)
        f.add(item, (cur,), out, name)
        start += size


def check_used(f: Flow, out: str) -> None:
    """Every tensor computed is read (or is the body's output): a dangling branch is a mistake."""
    used = {i for step in f.steps for i in step.inputs} | {out}
    for step in f.steps:
        if step.output not in used:
            shown = step.output.split("%")[0]
            what = f"tensor '{shown}'" if shown else "this layer's output"
            raise SpecError(f"{what} is computed but never used", step.item.span).with_note(
                "merge it (`add h ...`, `concat h ...`), continue from it (`from h`), or remove it")
