"""lower(program, network, params) -> Net: evaluate expressions, expand stages and blocks.

Lowering tracks the tensor shape through the network with the op shape functions of
ir/ops.py (the same ones infer_shapes uses), because the language refers to shapes: `in` is
a block's input channels, and a `projection` shortcut exists only where the shape changes.

The passes of lowering live beside this file: clauses.py (arguments), sequences.py
(layers), blocks.py (residual units); this file lowers networks and stages.
"""
from __future__ import annotations

import math

from collections import Counter
from typing import Any, Mapping

from .. import limits
from ..errors import SpecError, unknown
from ..ir import ops
from ..ir.net import Block, Net, Section, Stage
from . import ast
from .blocks import BlockLowering
from .load import Program
from .values import BlockRef, Evaluator, Symbol, bind_call, is_int, is_num, show, type_name

# Clause schemas that are not ops.
STAGE_ATTRS = (ops.Attr("block", object), ops.Attr("repeat", int, 1, short="x"),
               ops.Attr("stride", int, 1), ops.Attr("dilation", int, None),
               ops.Attr("share", bool, False, flag=True), ops.Attr("per_step_bn", bool, False, flag=True))
DROP_PATH_ATTRS = (ops.Attr("rate", ops.NUM), ops.Attr("schedule", object, Symbol("linear")),
                   ops.Attr("mode", object, Symbol("batch")))
INDEX_NAMES = ("block_index", "stage_blocks", "net_index", "net_blocks")
INIT_DIRECTIVES = {"zero_last_bn": 0, "residual_std": 1, "looks_linear": 0}


class Lowering(BlockLowering):
    """Lowers a network: parameters, input, sections, stages, stochastic depth, init."""

    def __init__(self, program: Program):
        self.program = program
        self.eval = Evaluator(program.blocks)
        self.n_layers = 0
        self.block_stack: list[str] = []
        self.dilation = 1            # of the previous stage (for `dilation`)

    def network(self, net: ast.network, overrides: Mapping[str, Any]) -> Net:
        env = self.network_params(net, overrides)
        params = dict(env)
        self.net_blocks, self.net_index = self.count_blocks(net, dict(env)), 0
        body: list = []
        shape = input_shape = drop = None
        init: list[tuple[str, Any]] = []
        counts = Counter()
        limits.STAGES.check(sum(isinstance(st, ast.stage) for st in net.body), net.span)
        for st in net.body:
            if isinstance(st, ast.let_stmt):
                env[st.name] = self.eval(st.value, env)
                continue
            if isinstance(st, ast.input_stmt):
                if shape is not None:
                    raise SpecError("'input' given twice", st.span)
                shape = input_shape = self.input_shape(st, env)
                continue
            if shape is None:
                raise SpecError("'input' must come before the layers", st.span).with_note(
                    "e.g. 'input 3x224x224'")
            if isinstance(st, (ast.stem, ast.transition, ast.head)):
                role = type(st).__name__
                counts[role] += 1
                name = "transitions." + str(counts[role] - 1) if role == "transition" else role
                if role != "transition" and counts[role] > 1:
                    raise SpecError(f"a network has one '{role}'", st.span)
                items, shape = self.seq(st.body, {**env, "in": shape[0]}, shape, f"{name}.")
                body.append(Section(name=name, role=role, items=items, span=st.span))
            elif isinstance(st, ast.stage):
                stage, shape = self.stage(st, env, shape, f"stages.{counts['stage']}")
                if stage.blocks:                 # `stage x 0`: nothing (and no stage index)
                    counts["stage"] += 1
                    body.append(stage)
            elif isinstance(st, ast.init_stmt):
                init.append(self.init_directive(st, env))
            else:
                if drop is not None:
                    raise SpecError("'drop_path' given twice", st.span)
                drop = st
        if shape is None:
            raise SpecError(f"network '{net.name}' has no 'input'", net.span).with_note("e.g. 'input 3x224x224'")
        if drop is not None:
            body = self.drop_path(drop, env, body)
        return Net(name=net.name, params=params, input_shape=input_shape, body=tuple(body), span=net.span,
                   init=tuple(init), source=self.program.text)

    def init_directive(self, st: ast.init_stmt, env) -> tuple[str, Any]:
        first = st.args[0] if st.args else None
        if not isinstance(first, ast.name) or first.id not in INIT_DIRECTIVES:
            where = first.span if first is not None else st.span
            raise unknown("init directive", first.id if isinstance(first, ast.name) else "", INIT_DIRECTIVES, where)
        want = INIT_DIRECTIVES[first.id]
        if len(st.args) - 1 != want:
            raise SpecError(f"init {first.id} takes {want} value{'s' * (want != 1)}, got {len(st.args) - 1}", st.span)
        value = self.eval(st.args[1], env) if want else None
        if want and (not is_num(value) or value < 0):
            raise SpecError(f"init {first.id} needs a non-negative number, got {show(value)}", st.args[1].span)
        return (first.id, value)

    def drop_path(self, st: ast.drop_path_stmt, env, body: list) -> list:
        """Stochastic depth: block l of L dropped with probability rate·l/L (linear) or rate (constant)."""
        values, spans = self.bind("drop_path", DROP_PATH_ATTRS, ("rate", "schedule"), st, env)
        rate, schedule, mode = values["rate"], values["schedule"], values["mode"]
        if not 0 <= rate < 1:
            raise SpecError(f"drop_path rate must be in [0, 1), got {show(rate)}", spans["rate"])
        schedule = schedule.name if isinstance(schedule, Symbol) else schedule
        if schedule not in ("linear", "constant"):
            raise SpecError(f"unknown drop_path schedule {show(schedule)}", spans["schedule"]).with_note(
                "expected linear or constant")
        mode = mode.name if isinstance(mode, Symbol) else mode
        if mode not in ("batch", "sample"):
            raise SpecError(f"unknown drop_path mode {show(mode)}", spans["mode"]).with_note(
                "expected batch (Huang et al.: one gate per mini-batch) or sample (timm's drop path)")
        total = sum(len(p.blocks) for p in body if isinstance(p, Stage))
        out, l = [], 0
        for part in body:
            if isinstance(part, Stage):
                blocks = []
                for b in part.blocks:
                    l += 1
                    if b.drop_prob > 0:
                        raise SpecError("drop_path is set both by the network and by block "
                                        f"'{b.block}' ({b.name})", st.span)
                    _check_droppable(b, st)
                    p = rate * l / total if schedule == "linear" else rate
                    blocks.append(b.model_copy(update={"drop_prob": p, "drop_mode": mode}))
                part = part.model_copy(update={"blocks": tuple(blocks)})
            out.append(part)
        return out

    def network_params(self, net: ast.network, overrides: Mapping[str, Any]) -> dict:
        names = [p.name for p in net.params]
        for k in overrides:
            if k not in names:
                raise unknown(f"parameter of network {net.name}", k, names, net.span)
        env: dict[str, Any] = {}
        for p in net.params:
            if p.name in overrides:
                env[p.name] = overrides[p.name]
            elif p.default is not None:
                env[p.name] = self.eval(p.default, env)
            else:
                raise SpecError(f"network parameter '{p.name}' has no default and was not set", p.span).with_note(
                    f"set it with --set {p.name}=VALUE")
        return env

    def input_shape(self, st: ast.input_stmt, env) -> ops.Shape:
        dims = st.shape if st.shape is not None else self.eval(st.value, env)
        if not isinstance(dims, (list, tuple)) or len(dims) not in (1, 3) or not all(is_int(d) for d in dims):
            raise SpecError(f"input must be C×H×W integers, got {show(dims)}", st.span)
        if any(d <= 0 for d in dims):
            raise SpecError(f"input sizes must be positive, got {ops.fmt(tuple(dims))}", st.span)
        limits.INPUT_ELEMENTS.check(math.prod(dims), st.span, ops.fmt(tuple(dims)))
        return tuple(dims)

    def count_blocks(self, net: ast.network, env: dict) -> int:
        """The number of stage blocks in the network (`net_blocks`), from the lets and `x N` alone."""
        total = 0
        for st in net.body:
            if isinstance(st, ast.let_stmt):
                env[st.name] = self.eval(st.value, env)
            elif isinstance(st, ast.stage):
                n = self.eval(repeat_expr(st), env) if repeat_expr(st) is not None else 1
                total += n if is_int(n) and n > 0 else 0
        return total

    @staticmethod
    def index_env(env: dict, st: ast.stage, j: int, n: int, net_blocks: int) -> dict:
        """The names a stage's arguments may use to vary block by block (all counted from 0)."""
        for word in INDEX_NAMES:
            if word in env:
                raise SpecError(f"'{word}' is reserved in stage arguments (the block's index); "
                                f"rename the parameter or let", st.span)
        return {**env, "block_index": j, "stage_blocks": n, "net_index": j, "net_blocks": net_blocks}

    def stage(self, st: ast.stage, env, shape, name: str) -> tuple[Stage, ops.Shape]:
        """`stage x N block(args)`: the arguments are evaluated per block, with block_index,
        stage_blocks, net_index and net_blocks in scope."""
        values, spans = self.bind("stage", STAGE_ATTRS, ("block",), st, {
            **self.index_env(env, st, 0, 0, self.net_blocks), "net_index": self.net_index})
        n = values["repeat"]
        if n < 0:
            raise SpecError(f"a stage repeats its block zero or more times, got x {n}", spans.get("repeat", st.span))
        limits.OPS.check(self.n_layers + n, spans.get("repeat", st.span), f"at least {self.n_layers + n:,} layers")
        per_block = [self.bind("stage", STAGE_ATTRS, ("block",), st, {
            **self.index_env(env, st, j, n, self.net_blocks), "net_index": self.net_index + j})[0]["block"]
            for j in range(max(n, 0))]
        values["block"] = per_block[0] if per_block else values["block"]
        ref = values["block"]
        if not isinstance(ref, BlockRef):
            raise SpecError(f"stage needs a block, got {type_name(ref)} {show(ref)}",
                            spans.get("block", st.span)).with_note("e.g. 'stage x 3 basic(64) stride 2'")
        for attr in ("stride", "dilation"):
            if attr in spans and attr not in {p.name for p in ref.defn.params}:
                raise SpecError(f"block '{ref.name}' has no '{attr}' parameter", spans[attr])
        if values["per_step_bn"] and not values["share"]:
            raise SpecError("per_step_bn only applies to a stage with 'share'", spans["per_step_bn"])
        blocks: list[Block] = []
        built: list[tuple[Block, ops.Shape]] = []
        for j in range(n):
            r = per_block[j]
            if not isinstance(r, BlockRef) or r.defn is not ref.defn:
                raise SpecError(f"every block of a stage uses one definition; block {j} is {show(r)}",
                                spans.get("block", st.span))
            if j == 0 and "stride" in spans:
                r = self.rebind(r, "stride", values["stride"], spans["stride"], st.span)
            if values["dilation"] is not None:
                # torchvision's replace_stride_with_dilation: the first block keeps the previous dilation
                d = self.dilation if j == 0 else values["dilation"]
                r = self.rebind(r, "dilation", d, spans["dilation"], st.span)
            blk, out = self.block(r, shape, f"{name}.blocks.{j}", st.span)
            if values["share"]:
                blk = self.share(blk, built, shape, values["per_step_bn"])
                built.append((blk, shape))
            blocks.append(blk)
            shape = out
        if values["dilation"] is not None:
            self.dilation = values["dilation"]
        self.net_index += n
        return Stage(name=name, block=ref.name, blocks=tuple(blocks), span=st.span), shape

    def rebind(self, ref: BlockRef, param: str, value, span, call_span) -> BlockRef:
        return bind_call(_without(ref, param), [(param, value, span)], call_span)

    @staticmethod
    def share(blk: Block, earlier: list[tuple[Block, ops.Shape]], shape, per_step_bn: bool) -> Block:
        """Use the weights of the first earlier block with the same definition, arguments and input shape."""
        for other, other_shape in earlier:
            if other.shares is None and (other.block, other.args, other_shape) == (blk.block, blk.args, shape):
                return blk.model_copy(update={"shares": other.name, "share_bn": not per_step_bn})
        return blk


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


def _without(ref: BlockRef, param: str) -> BlockRef:
    """The reference with `param` unbound (a stage attribute overrides the call's value)."""
    names = [p.name for p in ref.defn.params]
    i = names.index(param)
    if i < len(ref.positional):
        return BlockRef(ref.defn, ref.positional[:i], ref.named + tuple(
            (names[k], v) for k, v in enumerate(ref.positional) if k > i), ref.spans)
    return BlockRef(ref.defn, ref.positional, tuple((k, v) for k, v in ref.named if k != param), ref.spans)


def lower(program: Program, network: str | None = None, params: Mapping[str, Any] | None = None) -> Net:
    return Lowering(program).network(program.network(network), params or {})


def _check_droppable(b, st: ast.drop_path_stmt) -> None:
    """Stochastic depth drops a residual added to a shortcut; any other block would never be dropped."""
    why = ("it has no shortcut (`shortcut none`)" if b.shortcut.kind == "none"
           else f"it merges with `combine {b.combine}`" if b.combine != "add" else None)
    if why:
        raise SpecError(f"drop_path cannot apply to block '{b.name}' ({b.block}): {why}", st.span).with_note(
            f"block defined at {b.span}; stochastic depth needs `combine add` with a shortcut "
            "(y = x + f(x), the residual dropped); remove drop_path or change the block")

