"""Sequences of layers: `{ conv 64 k3; bn; relu }`, `parallel`, `aggregate`, nested blocks."""
from __future__ import annotations

from collections import Counter
from typing import Mapping

from ..errors import Span, SpecError, unknown
from ..ir import ops
from ..ir.net import Layer, Parallel
from . import ast
from .. import limits
from .clauses import ClauseBinder
from .values import BlockRef, bind_call, is_int, show

MAX_LAYERS = limits.OPS.default
_UNSET = object()
# Layers a path of `aggregate` may hold: per-channel or parameter-free, so C paths stack exactly.
AGGREGATE_KINDS = {"conv", "bn", "relu", "dropout", "sigmoid"}


class SequenceLowering(ClauseBinder):
    """Lowers `{ ... }` bodies, tracking the shape; names layers kind + index per kind."""

    def layer(self, c: ast.clause, env: Mapping, shape: ops.Shape, name: str) -> tuple[Layer, ops.Shape]:
        op = ops.OPS[c.keyword]
        attrs, spans = self.bind(c.keyword, op.attrs, op.positional, c, env)
        out = self.infer(op.kind, attrs, [shape], c.span)
        self.n_layers += 1
        if self.n_layers > MAX_LAYERS:
            limits.OPS.check(self.n_layers, c.span, f"more than {MAX_LAYERS:,} layers")
        return Layer(kind=op.kind, name=name, attrs=attrs, span=c.span), out

    @staticmethod
    def infer(kind: str, attrs: dict, ins: list[ops.Shape], span: Span) -> ops.Shape:
        try:
            return ops.infer(kind, attrs, ins)
        except ops.OpError as e:
            raise SpecError(str(e), span) from None

    def seq(self, body: ast.seq, env: dict, shape: ops.Shape, prefix: str) -> tuple[tuple, ops.Shape]:
        """Lower `{ ... }` starting from `shape`; names are `prefix` + kind + per-kind index."""
        env = dict(env)
        items, count = [], Counter()
        for st in self.expand(body.stmts, env):
            if isinstance(st, ast.let_stmt):
                env[st.name] = self.eval(st.value, env)
                continue
            if isinstance(st, (ast.tap, ast.from_stmt)) or (isinstance(st, ast.clause) and st.outputs):
                raise SpecError("named tensors (`-> name`, `from name`) are not supported yet", st.span)
            if isinstance(st, ast.parallel):
                count["parallel"] += 1
                item, shape = self.parallel(st, env, shape, f"{prefix}parallel{count['parallel']}")
            elif isinstance(st, ast.aggregate):
                layers, shape = self.aggregate(st, env, shape, prefix, count)
                items.extend(layers)
                continue
            else:
                target = env.get(st.keyword)
                if isinstance(target, BlockRef) or (st.keyword not in env and st.keyword in self.program.blocks):
                    ref = target if isinstance(target, BlockRef) else BlockRef(self.program.blocks[st.keyword])
                    count[ref.name] += 1
                    item, shape = self.nested_block(st, ref, env, shape, f"{prefix}{ref.name}{count[ref.name]}")
                elif st.keyword in ops.OPS and ops.OPS[st.keyword].user:
                    count[st.keyword] += 1
                    item, shape = self.layer(st, env, shape, f"{prefix}{st.keyword}{count[st.keyword]}")
                else:
                    layers = [k for k, op in ops.OPS.items() if op.user]
                    raise unknown("layer or block", st.keyword, [*layers, *self.program.blocks], st.keyword_span)
            items.append(item)
        return tuple(items), shape

    def expand(self, stmts, env: dict):
        """The statements of a sequence with `if` and `repeat` unrolled (conditions and counts are
        evaluated as they are reached, so they see the `let`s before them)."""
        for st in stmts:
            if isinstance(st, ast.if_stmt):
                body = st.then if self.eval.truth(st.test, env) else st.orelse
                if body is not None:
                    yield from self.expand(body.stmts, env)
            elif isinstance(st, ast.repeat):
                n = self.eval(st.count, env)
                if not is_int(n) or n < 0:
                    raise SpecError(f"repeat needs a count >= 0, got {show(n)}", st.count.span)
                limits.OPS.check(self.n_layers + n, st.count.span, f"at least {self.n_layers + n:,} layers")
                outer = env.get(st.var, _UNSET)
                for r in range(n):
                    if st.var is not None:
                        env[st.var] = r
                    yield from self.expand(st.body.stmts, env)
                if st.var is not None:         # the loop variable does not outlive the loop
                    env.pop(st.var, None) if outer is _UNSET else env.__setitem__(st.var, outer)
            else:
                yield st

    def parallel(self, st: ast.parallel, env: dict, shape, name: str):
        if st.mode not in ("concat", "sum"):
            raise unknown("merge mode", st.mode, ["concat", "sum"], st.mode_span)
        if not st.branches:
            raise SpecError("parallel needs at least one branch", st.span)
        branches, shapes = [], []
        for i, br in enumerate(st.branches):
            items, out = self.seq(br.body, env, shape, f"{name}.{i}.")
            branches.append(items)
            shapes.append(out)
        out = self.infer("concat" if st.mode == "concat" else "add", {"scale": 1.0}, shapes, st.span)
        return Parallel(name=name, mode=st.mode, branches=tuple(branches), span=st.span), out

    def aggregate(self, st: ast.aggregate, env: dict, shape, prefix: str, count: Counter):
        """Sum of C identical paths (ResNeXt form a) as the equivalent grouped form (c).

        Stacking the C paths' first convs gives one conv with C·w outputs; each later conv
        reads only its own path, so it becomes a conv with C× channels and C× groups; the
        sum of the paths' last convs is one conv over the concatenated paths.
        """
        c = self.eval(st.count, env)
        if not is_int(c) or c < 1:
            raise SpecError(f"aggregate needs a positive integer count, got {show(c)}", st.count.span)
        path, _ = self.seq(st.body, env, shape, "")
        convs = [i for i, it in enumerate(path) if isinstance(it, Layer) and it.kind == "conv"]
        for i, it in enumerate(path):
            if not isinstance(it, Layer) or it.kind not in AGGREGATE_KINDS:
                what = it.kind if isinstance(it, Layer) else type(it).__name__.lower()
                raise SpecError(f"'{what}' cannot be used in an aggregate path", it.span).with_note(
                    "paths may hold " + ", ".join(sorted(AGGREGATE_KINDS)))
            if it.kind == "bn" and (not convs or i < convs[0]):
                raise SpecError("an aggregate path must start with a conv before any bn", it.span)
        if not convs or convs[-1] != len(path) - 1:
            raise SpecError("an aggregate path must end with a conv (the paths are summed there)", st.span)
        out = []
        for i, it in enumerate(path):
            a = dict(it.attrs)
            if it.kind == "conv" and len(convs) > 1:
                if i in (convs[0], convs[-1]) and a["groups"] != 1:
                    raise SpecError("the first and last conv of an aggregate path cannot be grouped", it.span)
                if i != convs[-1]:
                    a["out"] *= c
                if i != convs[0] and i != convs[-1]:
                    a["groups"] *= c
            count[it.kind] += 1
            name = f"{prefix}{it.kind}{count[it.kind]}"
            out.append(Layer(kind=it.kind, name=name, attrs=a, span=it.span))
            shape = self.infer(it.kind, a, [shape], it.span)
        return out, shape

    def nested_block(self, c: ast.clause, ref: BlockRef, env, shape, name):
        params = tuple(p.name for p in ref.defn.params)
        attrs = tuple(ops.Attr(p, object) for p in params)
        bound = {p for p, _ in ref.named} | set(params[:len(ref.positional)])
        free = tuple(p for p in params if p not in bound)
        values, spans = self.bind(ref.name, attrs, free[:1], c, env)
        args = [(k, v, spans[k]) for k, v in values.items() if k in spans]
        return self.block(bind_call(ref, args, c.span), shape, name, c.span)

    # ---- blocks ----
