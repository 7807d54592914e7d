"""Stages: `stage x N block(args) [stride S] [dilation D] [share [per_step_bn]]`."""
from __future__ import annotations

from .. import limits
from ..errors import SpecError
from ..ir import ops
from ..ir.net import Block, Stage
from . import ast
from .blocks import block
from .clauses import bind
from .context import Context
from .values import BlockRef, bind_call, show, type_name

STAGE_ATTRS = (ops.Attr("block", object), ops.Attr("repeat", int, 1, short="x"),
               ops.Attr("stride", int, 1), ops.Attr("dilation", int, None),
               ops.Attr("share", bool, False, flag=True), ops.Attr("per_step_bn", bool, False, flag=True))


def stage(ctx: Context, st: ast.stage, env, shape, name: str) -> tuple[Stage, ops.Shape]:
    """N units of one block; `stride` applies to the first, `dilation` from the second on."""
    values, spans = bind(ctx, "stage", STAGE_ATTRS, ("block",), st, env)
    ref, n = check_stage(ctx, st, values, spans)
    blocks: list[Block] = []
    built: list[tuple[Block, ops.Shape]] = []
    for j in range(n):
        r = ref
        if j == 0 and "stride" in spans:
            r = rebind(r, "stride", values["stride"], spans["stride"], st.span)
        if values["dilation"] is not None:
            # torchvision's replace_stride_with_dilation: the first block keeps the previous dilation
            d = ctx.dilation if j == 0 else values["dilation"]
            r = rebind(r, "dilation", d, spans["dilation"], st.span)
        blk, out = block(ctx, r, shape, f"{name}.blocks.{j}", st.span)
        if values["share"]:
            blk = share(blk, built, shape, values["per_step_bn"])
            built.append((blk, shape))
        blocks.append(blk)
        shape = out
    if values["dilation"] is not None:
        ctx.dilation = values["dilation"]
    return Stage(name=name, block=ref.name, blocks=tuple(blocks), span=st.span), shape


def check_stage(ctx: Context, st: ast.stage, values: dict, spans: dict) -> tuple[BlockRef, int]:
    ref = values["block"]
    if not isinstance(ref, BlockRef):
        raise SpecError(f"stage needs a block, got {type_name(ref)} {show(ref)}",
                        spans.get("block", st.span)).with_note("e.g. 'stage x 3 basic(64) stride 2'")
    n = values["repeat"]
    if n < 1:
        raise SpecError(f"a stage repeats its block at least once, got x {n}", spans.get("repeat", st.span))
    limits.OPS.check(ctx.n_layers + n, spans.get("repeat", st.span), f"at least {ctx.n_layers + n:,} layers")
    for attr in ("stride", "dilation"):
        if attr in spans and attr not in {p.name for p in ref.defn.params}:
            raise SpecError(f"block '{ref.name}' has no '{attr}' parameter", spans[attr])
    if values["per_step_bn"] and not values["share"]:
        raise SpecError("per_step_bn only applies to a stage with 'share'", spans["per_step_bn"])
    return ref, n


def rebind(ref: BlockRef, param: str, value, span, call_span) -> BlockRef:
    """The reference with `param` set to `value` (a stage attribute overrides the call's value)."""
    return bind_call(without(ref, param), [(param, value, span)], call_span)


def without(ref: BlockRef, param: str) -> BlockRef:
    """The reference with `param` unbound."""
    names = [p.name for p in ref.defn.params]
    i = names.index(param)
    if i < len(ref.positional):
        return BlockRef(ref.defn, ref.positional[:i], ref.named + tuple(
            (names[k], v) for k, v in enumerate(ref.positional) if k > i), ref.spans)
    return BlockRef(ref.defn, ref.positional, tuple((k, v) for k, v in ref.named if k != param), ref.spans)


def share(blk: Block, earlier: list[tuple[Block, ops.Shape]], shape, per_step_bn: bool) -> Block:
    """Use the weights of the first earlier block with the same definition, arguments and input shape."""
    for other, other_shape in earlier:
        if other.shares is None and (other.block, other.args, other_shape) == (blk.block, blk.args, shape):
            return blk.model_copy(update={"shares": other.name, "share_bn": not per_step_bn})
    return blk
