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
from .values import BlockRef, bind_call, is_int, show, type_name

STAGE_ATTRS = (ops.Attr("block", object), ops.Attr("repeat", int, 1, short="x"),
               ops.Attr("stride", int, 1), ops.Attr("dilation", int, None),
               ops.Attr("share", bool, False, flag=True), ops.Attr("per_step_bn", bool, False, flag=True))
INDEX_NAMES = ("block_index", "stage_blocks", "net_index", "net_blocks")


def stage(ctx: Context, st: ast.stage, env, shape, name: str) -> tuple[Stage, ops.Shape]:
    """N units of one block; `stride` applies to the first, `dilation` from the second on. The
    arguments are evaluated per unit, with block_index, stage_blocks, net_index, net_blocks in scope."""
    values, spans, per_block = stage_values(ctx, st, env)
    refs, n = check_stage(ctx, st, values, spans), len(per_block)
    blocks: list[Block] = []
    built: list[tuple[Block, ops.Shape]] = []
    for j, step in enumerate(per_block):
        step = list(step) if isinstance(step, (list, tuple)) else [step]
        if len(step) != len(refs) or any(not isinstance(r, BlockRef) or r.defn is not ref.defn
                                         for r, ref in zip(step, refs)):
            raise SpecError(f"every step of a stage uses the same definitions; step {j} is {show(step)}",
                            spans.get("block", st.span))
        for k, r in enumerate(step):
            if j == 0 and k == 0 and "stride" in spans:
                r = rebind(r, "stride", values["stride"], spans["stride"], st.span)
            if values["dilation"] is not None:
                # torchvision's replace_stride_with_dilation: the first block keeps the previous dilation
                d = ctx.dilation if j == 0 else values["dilation"]
                r = rebind(r, "dilation", d, spans["dilation"], st.span)
            blk, out = block(ctx, r, shape, f"{name}.blocks.{j * len(step) + k}", st.span)
            if values["share"]:
                blk = share(blk, built, shape, values["per_step_bn"])
                built.append((blk, shape))
            blocks.append(blk)
            shape = out
    if values["dilation"] is not None:
        ctx.dilation = values["dilation"]
    ctx.net_index += n
    return Stage(name=name, block=" + ".join(r.name for r in refs), blocks=tuple(blocks), span=st.span), shape


def stage_values(ctx: Context, st: ast.stage, env) -> tuple[dict, dict, list]:
    """The stage's attributes, and its block reference evaluated once per unit."""
    values, spans = bind(ctx, "stage", STAGE_ATTRS, ("block",), st,
                         {**index_env(env, st, 0, 0, ctx.net_blocks), "net_index": ctx.net_index})
    n = values["repeat"]
    if n < 0:
        raise SpecError(f"a stage repeats its block zero or more times, got x {n}", spans.get("repeat", st.span))
    limits.OPS.check(ctx.n_layers + n, spans.get("repeat", st.span), f"at least {ctx.n_layers + n:,} layers")
    per_block = [bind(ctx, "stage", STAGE_ATTRS, ("block",), st, {
        **index_env(env, st, j, n, ctx.net_blocks), "net_index": ctx.net_index + j})[0]["block"]
        for j in range(n)]
    values["block"] = per_block[0] if per_block else values["block"]
    return values, spans, per_block


def index_env(env: dict, st: ast.stage, j: int, n: int, net_blocks: int) -> dict:
    """The names a stage's arguments may use to vary block by block (all counted from 0)."""
    for word in INDEX_NAMES:
        if word in env:
            raise SpecError(f"'{word}' is reserved in stage arguments (the block's index); "
                            f"rename the parameter or let", st.span)
    return {**env, "block_index": j, "stage_blocks": n, "net_index": j, "net_blocks": net_blocks}


def check_stage(ctx: Context, st: ast.stage, values: dict, spans: dict) -> list[BlockRef]:
    """The block (or, for a step of several units, the list of blocks: a transformer layer is
    `[attention_unit(...), mlp_unit(...)]`) of every step."""
    v = values["block"]
    refs = list(v) if isinstance(v, (list, tuple)) and v else [v]
    for ref in refs:
        if not isinstance(ref, BlockRef):
            raise SpecError(f"stage needs a block or a list of blocks, got {type_name(ref)} {show(ref)}",
                            spans.get("block", st.span)).with_note("e.g. 'stage x 3 basic(64) stride 2'")
    ref = refs[0]
    for attr in ("stride", "dilation"):
        if attr in spans and attr not in {p.name for p in ref.defn.params}:
            raise SpecError(f"block '{ref.name}' has no '{attr}' parameter", spans[attr])
    if values["per_step_bn"] and not values["share"]:
        raise SpecError("per_step_bn only applies to a stage with 'share'", spans["per_step_bn"])
    return refs


def count_blocks(ctx: Context, net: ast.network, env: dict) -> int:
    """The number of stage blocks in the network (`net_blocks`), from the lets and `x N` alone."""
    total = 0
    for st in net.body:
        if isinstance(st, ast.let_stmt):
            env[st.name] = ctx.eval(st.value, env)
        elif isinstance(st, ast.stage):
            n = ctx.eval(repeat_expr(st), env) if repeat_expr(st) is not None else 1
            total += n if is_int(n) and n > 0 else 0
    return total


def repeat_expr(st: ast.stage):
    """The expression of a stage's `x N` (`x N`, `x(N)` or `x3`), without evaluating its block."""
    for i, a in enumerate(st.args):
        if isinstance(a, ast.name) and a.id == "x" and i + 1 < len(st.args):
            return st.args[i + 1]
        if isinstance(a, ast.call) and isinstance(a.func, ast.name) and a.func.id == "x" and len(a.args) == 1:
            return a.args[0].value
        if isinstance(a, ast.name) and a.id[:1] == "x" and a.id[1:].isdigit():
            return ast.int_lit(span=a.span, value=int(a.id[1:]))
    return None


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
