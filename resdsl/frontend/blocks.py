"""Residual units: y = post(merge(scale · Σ_k residual_k(pre(x)), shortcut(x)))."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Span, SpecError
from ..ir import ops
from ..ir.kinds import DROP_MODES, DROP_SCHEDULES, MERGE_MODES, SHORTCUTS
from ..ir.net import Block, Layer, Shortcut
from . import ast
from .clauses import bind, in_range
from .context import Context, infer, layer
from .load import PRELUDE
from .sequences import seq
from .shortcuts import shortcut, shortcut_stride
from .values import BlockRef, Symbol, is_num, show, type_name

MERGE_ATTRS = (ops.Attr("mode", object), ops.Attr("kernel", int, 1, short="k"), ops.Attr("bias", ops.NUM, -1.0))
DROP_PATH_ATTRS = (ops.Attr("rate", ops.NUM), ops.Attr("schedule", object, Symbol("linear")),
                   ops.Attr("mode", object, Symbol("batch")))


def block(ctx: Context, ref: BlockRef, shape: ops.Shape, name: str, call_span: Span) -> tuple[Block, ops.Shape]:
    """Expand one residual unit: y = post(scale * sum_k residual_k(pre(x)) + shortcut(x))."""
    d = ref.defn
    if d.name in ctx.block_stack:
        chain = " -> ".join([*ctx.block_stack[ctx.block_stack.index(d.name):], d.name])
        raise SpecError(f"recursive block definition: {chain}", call_span)
    ctx.block_stack.append(d.name)
    try:
        return block_body(ctx, d, block_env(ctx, ref, shape, call_span), shape, name, call_span)
    except SpecError as e:
        raise in_block(ctx, e, ref, name, shape, call_span) from None
    finally:
        ctx.block_stack.pop()


def in_block(ctx: Context, e: SpecError, ref: BlockRef, name: str, shape, call_span: Span) -> SpecError:
    """Say which block instance an error happened in. An error inside the prelude points at
    the user's call instead, with the prelude line as a note."""
    if e.span is not None and e.span.file == PRELUDE and call_span.file != PRELUDE:
        e.notes.insert(0, f"in {ref} ({name}, input {ops.fmt(shape)}), at prelude block '{ref.name}' "
                          f"line {e.span.line}: {e.span.source_line()}")
        e.span = call_span
    elif not any(n.startswith("in block") or n.startswith(f"in {ref.name}(") for n in e.notes) \
            and e.span is not None and e.span != call_span:
        e.notes.append(f"in block {ref} ({name}, input {ops.fmt(shape)}) called at {call_span}")
    return e


def block_env(ctx: Context, ref: BlockRef, shape: ops.Shape, call_span: Span) -> dict:
    """`in` (the input channels) and every parameter: given, or its default."""
    env: dict[str, Any] = {"in": shape[0]}
    named = dict(ref.named)
    for i, p in enumerate(ref.defn.params):
        if i < len(ref.positional):
            env[p.name] = ref.positional[i]
        elif p.name in named:
            env[p.name] = named[p.name]
        elif p.default is not None:
            env[p.name] = ctx.eval(p.default, env)
        else:
            raise SpecError(f"{ref.name}() is missing argument '{p.name}'", call_span).with_note(
                f"{ref.name} is defined at {ref.defn.span}")
    return env


@dataclass
class Parts:
    """The statements of a block body, each checked once; `pre` lowered where it stands."""
    pre: tuple = ()
    a_shape: ops.Shape = ()
    residuals: list = field(default_factory=list)
    shortcut: ast.shortcut | None = None
    post: ast.post | None = None
    merge: ast.merge_stmt | None = None
    scale: Any = 1.0
    drop: tuple = (0.0, "batch", None)      # this unit's stochastic depth (`drop_path` in the block): rate, mode, span


def collect(ctx: Context, d: ast.block_def, env: dict, shape, name: str) -> Parts:
    """Walk the body in order: `let`s bind as they come; one pre (first), shortcut, post, merge."""
    p = Parts(a_shape=shape)
    for st in d.body:
        if isinstance(st, ast.let_stmt):
            env[st.name] = ctx.eval(st.value, env)
        elif isinstance(st, ast.pre):
            if p.residuals or p.pre:
                raise SpecError("'pre' must come once, before 'residual'", st.span)
            p.pre, p.a_shape = seq(ctx, st.body, env, shape, f"{name}.pre.")
        elif isinstance(st, ast.residual):
            p.residuals.append(st)
        elif isinstance(st, (ast.shortcut, ast.post, ast.merge_stmt)):
            slot = {ast.shortcut: "shortcut", ast.post: "post", ast.merge_stmt: "merge"}[type(st)]
            if getattr(p, slot) is not None:
                raise SpecError(f"a block has one '{slot}'", st.span)
            setattr(p, slot, st)
        elif isinstance(st, ast.drop_path_stmt):
            rate, _, mode = drop_path_values(ctx, st, env, network=False)
            p.drop = (float(rate), mode, st.span)
        elif isinstance(st, ast.scale_stmt):
            p.scale = ctx.eval(st.value, env)
            if not is_num(p.scale):
                raise SpecError(f"scale must be a number, got {type_name(p.scale)}", st.value.span)
            in_range("scale", "scale", float(p.scale), st.value.span)
        else:
            raise SpecError(f"'{type(st).__name__.removesuffix('_stmt')}' is not supported in blocks yet", st.span)
    if not p.residuals:
        raise SpecError(f"block '{d.name}' has no 'residual' branch", d.span)
    return p


def residuals(ctx: Context, p: Parts, env: dict, name: str) -> tuple[tuple, ops.Shape]:
    """The residual branches on pre(x): `residual` (one) or `residuals.k` (several, same shape)."""
    branches, r_shape = [], None
    for k, r in enumerate(p.residuals):
        prefix = f"{name}.residual." if len(p.residuals) == 1 else f"{name}.residuals.{k}."
        items, out = seq(ctx, r.body, env, p.a_shape, prefix)
        if r_shape is not None and out != r_shape:
            raise SpecError(f"residual branches differ in shape: {ops.fmt(r_shape)} and {ops.fmt(out)}", r.span)
        branches.append(items)
        r_shape = out
    return tuple(branches), r_shape


def block_body(ctx: Context, d: ast.block_def, env: dict, shape, name: str, call_span: Span):
    p = collect(ctx, d, env, shape, name)
    branches, r_shape = residuals(ctx, p, env, name)
    mode, gate_attrs = merge_mode(ctx, p.merge, env)
    if not MERGE_MODES[mode].takes_shortcut:
        if p.shortcut is not None:
            raise SpecError("a dense (concat) block passes its input on unchanged: remove 'shortcut'", p.shortcut.span)
        sc = Shortcut(kind="identity", span=p.merge.span)
        merged = infer("concat", {}, [shape, r_shape], p.merge.span)
    else:
        sc = shortcut(ctx, p.shortcut, env, shape, p.a_shape, r_shape, bool(p.pre), name, call_span)
        merged = r_shape
    gate = gate_layers(sc, gate_attrs, shape, r_shape, name, p.merge) if MERGE_MODES[mode].needs_gate else ()
    post_items = ()
    if p.post is not None:
        post_items, merged = seq(ctx, p.post.body, env, merged, f"{name}.post.")
    params = {q.name for q in d.params}
    args = {k: v for k, v in env.items() if k in params}
    blk = Block(name=name, block=d.name, args=args, pre=p.pre, residuals=branches, shortcut=sc,
                scale=float(p.scale), merge=mode, gate=gate, gate_bias=float(gate_attrs.get("bias", 0.0)),
                post=post_items, drop_prob=p.drop[0], drop_mode=p.drop[1], span=call_span)
    if p.drop[0] > 0:
        check_droppable(blk, p.drop[2], in_block=True)
    return blk, merged


def drop_path_values(ctx: Context, st: ast.drop_path_stmt, env, network: bool) -> tuple[float, str, str]:
    """`drop_path RATE [SCHEDULE] [mode MODE]` (ir/kinds.py DROP_SCHEDULES, DROP_MODES): the one
    validation of stochastic depth, for a network (rate by schedule) and for a block (its own rate)."""
    values, spans = bind(ctx, "drop_path", DROP_PATH_ATTRS, ("rate", "schedule") if network else ("rate",), st, env)
    rate, schedule, mode = values["rate"], values["schedule"], values["mode"]
    if not 0 <= rate < 1:
        raise SpecError(f"drop_path rate must be in [0, 1), got {show(rate)}", spans["rate"])
    if not network and "schedule" in spans:
        raise SpecError("a block's drop_path has no schedule (vary the rate with the block's index)",
                        spans["schedule"])
    schedule = schedule.name if isinstance(schedule, Symbol) else schedule
    if schedule not in DROP_SCHEDULES:
        raise SpecError(f"unknown drop_path schedule {show(schedule)}", spans["schedule"]).with_note(
            "expected " + " or ".join(DROP_SCHEDULES))
    mode = mode.name if isinstance(mode, Symbol) else mode
    if mode not in DROP_MODES:
        raise SpecError(f"unknown drop_path mode {show(mode)}", spans["mode"]).with_note(
            "expected " + " or ".join(f"{m.name} ({m.doc})" for m in DROP_MODES.values()))
    return rate, schedule, mode


def check_droppable(b: Block, span: Span, in_block: bool = False) -> None:
    """Stochastic depth drops a residual added to a shortcut (`Block.additive`); any other unit
    would never be dropped."""
    if b.additive:
        return
    why = ("it has no shortcut (`shortcut none`)" if not SHORTCUTS[b.shortcut.kind].carries
           else f"it merges with `merge {b.merge}`")
    err = SpecError(f"drop_path cannot apply to block '{b.name}' ({b.block}): {why}", span).with_note(
        f"block defined at {b.span}; stochastic depth needs `merge add` with a shortcut "
        "(y = x + f(x), the residual dropped); remove drop_path or change the block")
    raise err.with_note("e.g. `drop_path has_skip ? rate : 0`") if in_block else err


def merge_mode(ctx: Context, st: ast.merge_stmt | None, env) -> tuple[str, dict]:
    """`merge add|gate|concat` (ir/kinds.py MERGE_MODES); gate takes `k` and `bias`."""
    if st is None:
        return "add", {}
    values, spans = bind(ctx, "merge", MERGE_ATTRS, ("mode",), st, env)
    mode = values["mode"]
    if not isinstance(mode, Symbol) or mode.name not in MERGE_MODES:
        raise SpecError(f"unknown merge mode {show(mode)}", spans.get("mode", st.span)).with_note(
            "expected one of: " + ", ".join(MERGE_MODES))
    extra = [k for k in ("kernel", "bias") if k in spans]
    if extra and mode.name != "gate":
        raise SpecError(f"merge {mode.name} takes no '{extra[0]}'", spans[extra[0]])
    return mode.name, values


def gate_layers(sc: Shortcut, gate_attrs: dict, shape, r_shape, name: str, st: ast.merge_stmt) -> tuple:
    """Highway gate T(x) = σ(conv(x)), strided like the shortcut (Srivastava et al.)."""
    if sc.kind == "none":
        raise SpecError("a gated block needs a shortcut to carry", st.span)
    stride = shortcut_stride(shape, r_shape, st.span)
    conv, _ = layer("conv", f"{name}.gate.conv1", {"out": r_shape[0], "kernel": gate_attrs["kernel"],
                    "stride": stride, "padding": None, "dilation": 1, "groups": 1, "bias": True}, [shape], st.span)
    return conv, Layer(kind=ops.GATE, name=f"{name}.gate.{ops.GATE}1", attrs={}, span=st.span)
