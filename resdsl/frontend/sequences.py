"""Sequences of layers: `{ conv 64 k3; bn; relu }`, `parallel`, `aggregate`, nested blocks.

Layers are named kind + per-kind index within their sequence (`conv1`, `conv2`, `bn1`).
"""
from __future__ import annotations

from collections import Counter

from .. import limits
from ..errors import SpecError, unknown
from ..ir import ops
from ..ir.kinds import PARALLEL_MODES
from ..ir.net import Layer, Parallel
from . import ast, dataflow
from .clauses import bind, bind_layer
from .context import Context, infer, resolve
from .values import BlockRef, bind_call, is_int, show


def seq(ctx: Context, body: ast.seq, env: dict, shape: ops.Shape, prefix: str) -> tuple[tuple, ops.Shape]:
    """Lower `{ ... }` starting from `shape`; names are `prefix` + kind + per-kind index."""
    env = dict(env)
    if dataflow.uses_dataflow(body):
        step = lambda st, env, shape, prefix, count: steps(ctx, st, env, shape, prefix, count)  # noqa: E731
        return dataflow.lower(ctx, body, env, shape, prefix, unrolled, step)
    items, count = [], Counter()
    for st in unrolled(ctx, body.stmts, env):
        if isinstance(st, ast.let_stmt):
            env[st.name] = ctx.eval(st.value, env)
        else:
            new, shape = steps(ctx, st, env, shape, prefix, count)
            items.extend(new)
    return tuple(items), shape


def steps(ctx: Context, st, env: dict, shape, prefix: str, count: Counter) -> tuple[list, ops.Shape]:
    """One statement of a sequence (a layer, a block, `parallel`, `aggregate`): its items, the shape after."""
    if isinstance(st, ast.parallel):
        count["parallel"] += 1
        item, shape = parallel(ctx, st, env, shape, f"{prefix}parallel{count['parallel']}")
        return [item], shape
    if isinstance(st, ast.aggregate):
        return aggregate(ctx, st, env, shape, prefix, count)
    item, shape = statement(ctx, st, env, shape, prefix, count)
    return [item], shape


_UNSET = object()


def unrolled(ctx: Context, stmts, env: dict):
    """The statements of a sequence with `if` and `repeat` unrolled (conditions and counts are
    evaluated as they are reached, so they see the `let`s before them)."""
    for st in stmts:
        if isinstance(st, ast.if_stmt):
            body = st.then if ctx.eval.truth(st.test, env) else st.orelse
            if body is not None:
                yield from unrolled(ctx, body.stmts, env)
        elif isinstance(st, ast.repeat):
            yield from repeated(ctx, st, env)
        else:
            yield st


def repeated(ctx: Context, st: ast.repeat, env: dict):
    """`repeat n as r { ... }`: the body n times with r = 0 .. n-1; r does not outlive the loop."""
    n = ctx.eval(st.count, env)
    if not is_int(n) or n < 0:
        raise SpecError(f"repeat needs a count >= 0, got {show(n)}", st.count.span)
    limits.OPS.check(ctx.n_layers + n, st.count.span, f"at least {ctx.n_layers + n:,} layers")
    outer = env.get(st.var, _UNSET)
    for r in range(n):
        if st.var is not None:
            env[st.var] = r
        yield from unrolled(ctx, st.body.stmts, env)
    if st.var is not None:
        env.pop(st.var, None) if outer is _UNSET else env.__setitem__(st.var, outer)


def statement(ctx: Context, st: ast.clause, env: dict, shape, prefix: str, count: Counter):
    """A layer (`conv 64 k3`) or a block used like one (`basic 64 stride 2`)."""
    target = env.get(st.keyword)
    if isinstance(target, BlockRef) or (st.keyword not in env and st.keyword in ctx.program.blocks):
        ref = target if isinstance(target, BlockRef) else BlockRef(ctx.program.blocks[st.keyword])
        count[ref.name] += 1
        return nested_block(ctx, st, ref, env, shape, f"{prefix}{ref.name}{count[ref.name]}")
    if st.keyword in ops.OPS and ops.OPS[st.keyword].user:
        count[st.keyword] += 1
        return layer(ctx, st, env, shape, f"{prefix}{st.keyword}{count[st.keyword]}")
    raise unknown("layer or block", st.keyword, [*ops.user_kinds(), *dataflow.WORDS, *ctx.program.blocks],
                  st.keyword_span)


def layer(ctx: Context, c: ast.clause, env: dict, shape: ops.Shape, name: str) -> tuple[Layer, ops.Shape]:
    """One op: its arguments bound to the registry's schema, checked and resolved once."""
    op = ops.OPS[c.keyword]
    attrs, spans = bind_layer(ctx, op, c, env)
    attrs, out = resolve(ctx, op.kind, attrs, shape, c.span, spans)
    ctx.count(1, c.span)
    return Layer(kind=op.kind, name=name, attrs=attrs, span=c.span), out


def parallel(ctx: Context, st: ast.parallel, env: dict, shape, name: str):
    """Branches on one input, merged by channel concatenation or sum."""
    if st.mode not in PARALLEL_MODES:
        raise unknown("merge mode", st.mode, PARALLEL_MODES, st.mode_span)
    if not st.branches:
        raise SpecError("parallel needs at least one branch", st.span)
    branches, shapes = [], []
    for i, br in enumerate(st.branches):
        items, out = seq(ctx, br.body, env, shape, f"{name}.{i}.")
        branches.append(items)
        shapes.append(out)
    out = infer("concat" if st.mode == "concat" else "add", {"scale": 1.0}, shapes, st.span)
    return Parallel(name=name, mode=st.mode, branches=tuple(branches), span=st.span), out


def aggregate(ctx: Context, st: ast.aggregate, env: dict, shape, prefix: str, count: Counter):
    """Sum of C identical paths (ResNeXt form a) as the equivalent grouped form (c).

    Stacking the C paths' first convs gives one conv with C·w outputs; each later conv
    reads only its own path, so it becomes a conv with C× channels and C× groups; the
    sum of the paths' last convs is one conv over the concatenated paths.
    """
    c = ctx.eval(st.count, env)
    if not is_int(c) or c < 1:
        raise SpecError(f"aggregate needs a positive integer count, got {show(c)}", st.count.span)
    path, _ = seq(ctx, st.body, env, shape, "")
    convs = check_path(st, path)
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
        out.append(Layer(kind=it.kind, name=f"{prefix}{it.kind}{count[it.kind]}", attrs=a, span=it.span))
        shape = infer(it.kind, a, [shape], it.span)
    return out, shape


def check_path(st: ast.aggregate, path: tuple) -> list[int]:
    """An aggregate path: per-channel layers only (the registry's `per_channel`), conv first and last."""
    convs = [i for i, it in enumerate(path) if isinstance(it, Layer) and it.kind == "conv"]
    for i, it in enumerate(path):
        if not isinstance(it, Layer) or not ops.OPS[it.kind].per_channel:
            what = it.kind if isinstance(it, Layer) else type(it).__name__.lower()
            raise SpecError(f"'{what}' cannot be used in an aggregate path", it.span).with_note(
                "paths may hold " + ", ".join(sorted(k for k, op in ops.OPS.items() if op.per_channel)))
        if it.kind == "bn" and (not convs or i < convs[0]):
            raise SpecError("an aggregate path must start with a conv before any bn", it.span)
    if not convs or convs[-1] != len(path) - 1:
        raise SpecError("an aggregate path must end with a conv (the paths are summed there)", st.span)
    return convs


_DEFAULTED = object()     # a block parameter with a default: not required when used as a layer


def nested_block(ctx: Context, c: ast.clause, ref: BlockRef, env, shape, name):
    """`basic 64 stride 2` inside a sequence: the block's free parameters in order, or by name; a
    parameter with a default may be left out (`rvb` or `rvb()` when all have one)."""
    params = tuple(p.name for p in ref.defn.params)
    attrs = tuple(ops.Attr(p.name, object, None if p.default is None else _DEFAULTED) for p in ref.defn.params)
    bound = {p for p, _ in ref.named} | set(params[:len(ref.positional)])
    free = tuple(p for p in params if p not in bound)
    values, spans = bind(ctx, ref.name, attrs, free, c, env, block=True)
    args = [(k, v, spans[k]) for k, v in values.items() if k in spans]
    return ctx.expand(ctx, bind_call(ref, args, c.span), shape, name, c.span)
