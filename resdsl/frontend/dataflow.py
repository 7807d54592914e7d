"""Dataflow bodies: named tensors inside a sequence, so a block body may be any DAG.

    split 2 -> a b; from b; conv w k1; bn; relu -> c; concat a c; shuffle 2

Each statement reads the current tensor and makes a new one; `-> h` names it, `from h` makes a
named tensor current again, and the merges `add`, `concat`, `mul` read tensors by name (with one
name, the current tensor comes first: `mul g` is current · g). `x` names the sequence's input.
`split N -> a b ...` (or `split [c1, c2] -> a b`) cuts the channels into named parts.
"""
from __future__ import annotations

from collections import Counter

from ..errors import SpecError, unknown
from ..ir import ops
from ..ir.net import Dataflow, Layer, Step
from . import ast
from .values import is_int, show

MERGES = {"add": {"scale": 1.0, "drop_prob": 0.0, "drop_mode": "batch"}, "concat": {}, "mul": {}}
DATAFLOW_WORDS = (*MERGES, "split")


def uses_dataflow(body: ast.seq) -> bool:
    """Whether a sequence names tensors (then it is lowered as a DAG, not a chain)."""
    def named(st) -> bool:
        if isinstance(st, (ast.tap, ast.from_stmt)):
            return True
        if isinstance(st, ast.clause):
            return bool(st.outputs) or st.keyword in DATAFLOW_WORDS
        if isinstance(st, ast.if_stmt):
            return any(map(named, st.then.stmts)) or (st.orelse is not None and any(map(named, st.orelse.stmts)))
        if isinstance(st, ast.repeat):
            return any(map(named, st.body.stmts))
        return False
    return any(map(named, body.stmts))


class DataflowLowering:
    """Lowers a sequence with named tensors into a Dataflow item (uses the sequence lowering's
    statement(), expand(), eval and infer)."""

    def dataflow_seq(self, body: ast.seq, env: dict, shape, prefix: str):
        shapes, steps, count, alias = {"x": shape}, [], Counter(), {}
        state = {"current": "x", "fresh": 0}

        def fresh() -> str:
            state["fresh"] += 1
            return f"%{state['fresh']}"

        def tensor(name: str, span) -> str:
            if name not in shapes:
                raise unknown("tensor", name, [n for n in shapes if not n.startswith("%")], span)
            return name

        def add(item, inputs: tuple[str, ...], out_shape, outputs: tuple[str, ...], span) -> None:
            if len(outputs) > 1:
                raise SpecError(f"one output, {len(outputs)} names: only `split` makes several tensors", span)
            name = outputs[0] if outputs else fresh()
            steps.append(Step(item=item, inputs=tuple(alias.get(i, i) for i in inputs), output=name))
            alias.pop(name, None)
            shapes[name] = out_shape
            state["current"] = name

        for st in self.expand(body.stmts, env):
            cur = state["current"]
            if isinstance(st, ast.let_stmt):
                env[st.name] = self.eval(st.value, env)
            elif isinstance(st, ast.tap):
                if len(st.names) != 1:
                    raise SpecError("`-> NAME` names one tensor (use `split N -> a b` to cut one)", st.span)
                alias[st.names[0]] = alias.get(cur, cur)
                shapes[st.names[0]] = shapes[cur]
                state["current"] = st.names[0]
            elif isinstance(st, ast.from_stmt):
                state["current"] = tensor(st.tensor, st.span)
            elif isinstance(st, ast.clause) and st.keyword in MERGES:
                names = self.tensor_args(st, shapes)
                inputs = tuple(names) if len(names) > 1 else (cur, *names)
                count[st.keyword] += 1
                layer = Layer(kind=st.keyword, name=f"{prefix}{st.keyword}{count[st.keyword]}",
                              attrs=dict(MERGES[st.keyword]), span=st.span)
                out = self.infer(st.keyword, layer.attrs, [shapes[n] for n in inputs], st.span)
                add(layer, inputs, out, st.outputs, st.span)
            elif isinstance(st, ast.clause) and st.keyword == "split":
                self.split(st, env, shapes, cur, prefix, count, steps, state, alias)
            else:
                outputs = st.outputs if isinstance(st, ast.clause) else ()
                items, out = self.statement(st, env, shapes[cur], prefix, count)
                for k, item in enumerate(items):
                    add(item, (state["current"],), out if k == len(items) - 1 else None,
                        outputs if k == len(items) - 1 else (), st.span)
        if not steps:
            raise SpecError("a dataflow body needs at least one layer", body.span)
        out = alias.get(state["current"], state["current"])
        used = {i for step in steps for i in step.inputs} | {out}
        for step in steps:
            if step.output not in used:
                what = step.output if not step.output.startswith("%") else "this layer's output"
                raise SpecError(f"{what} is computed but never used", step.item.span).with_note(
                    "name it (`-> h`) and merge it (`add h ...`), or remove the layer")
        name = prefix.rstrip(".") + (".flow" if prefix else "flow")
        steps = [self.rename(s, prefix, name) for s in steps]
        return (Dataflow(name=name, steps=tuple(steps), output=out, span=body.span),), shapes[state["current"]]

    @staticmethod
    def rename(step: Step, prefix: str, flow: str) -> Step:
        """Steps live in the dataflow module: `residual.conv1` -> `residual.flow.conv1`."""
        return step.model_copy(update={"item": _renamed(step.item, prefix, flow + ".")})

    @staticmethod
    def tensor_args(st: ast.clause, shapes: dict) -> list[str]:
        names = []
        for a in st.args:
            if not isinstance(a, ast.name):
                raise SpecError(f"{st.keyword} takes names of tensors", a.span).with_note(
                    f"e.g. `{st.keyword} a b` after `... -> a` and `... -> b`")
            if a.id not in shapes:
                raise unknown("tensor", a.id, [n for n in shapes if not n.startswith("%")], a.span)
            names.append(a.id)
        if not names:
            raise SpecError(f"{st.keyword} needs at least one tensor name", st.span)
        return names

    def split(self, st: ast.clause, env, shapes, cur, prefix, count, steps, state, alias) -> None:
        """`split N -> a b ...` or `split [c1, c2] -> a b`: channel slices of the current tensor."""
        if len(st.args) != 1:
            raise SpecError("split takes one count or one list of sizes", st.span)
        c = shapes[cur][0]
        parts = self.eval(st.args[0], env)
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
                            + " ".join(f"t{i}" for i in range(len(parts))) + "`", st.span)
        start = 0
        for size, name in zip(parts, st.outputs):
            count["slice"] += 1
            attrs = {"start": start, "stop": start + size}
            layer = Layer(kind="slice", name=f"{prefix}slice{count['slice']}", attrs=attrs, span=st.span)
            steps.append(Step(item=layer, inputs=(alias.get(cur, cur),), output=name))
            alias.pop(name, None)
            shapes[name] = self.infer("slice", attrs, [shapes[cur]], st.span)
            start += size
        state["current"] = st.outputs[-1]


def _renamed(item, prefix: str, flow: str):
    """An item and everything inside it with the name prefix `prefix` replaced by `flow`."""
    if isinstance(item, Layer):
        return item.model_copy(update={"name": flow + item.name[len(prefix):]})
    from ..ir.net import Block, Parallel
    if isinstance(item, Parallel):
        return item.model_copy(update={"name": flow + item.name[len(prefix):], "branches": tuple(
            tuple(_renamed(i, prefix, flow) for i in br) for br in item.branches)})
    if isinstance(item, Block):
        raise SpecError("a block used as a layer inside a dataflow body is not supported yet", item.span)
    return item
