"""lower(program, network, args) -> Net: evaluate expressions, expand stages and blocks.

Lowering is plain functions over one explicit Context (context.py), one file per concern:
clauses.py (arguments), sequences.py (layers), blocks.py (residual units), shortcuts.py,
stages.py, and this file (networks: arguments, input, sections, stochastic depth, init).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import limits
from ..errors import SpecError, unknown
from ..ir import ops
from ..ir.net import Net, Section, Stage
from . import ast
from ..ir.kinds import DROP_SCHEDULES, INIT_DIRECTIVES
from .blocks import block, check_droppable, drop_path_values
from .clauses import bind
from .context import Context
from .init_stmt import check_targets, tensor_init
from .load import Program
from .sequences import seq
from .stages import count_blocks, stage
from .values import Evaluator, Symbol, is_int, is_num, show

AUX_WEIGHT = 0.3        # an auxiliary classifier's loss weight unless `aux weight W` says otherwise


@dataclass
class Body:
    """What a network's statements have produced so far."""
    shape: ops.Shape | None = None
    input_shape: ops.Shape | None = None
    parts: list = field(default_factory=list)
    init: list = field(default_factory=list)
    drop: ast.drop_path_stmt | None = None
    counts: Counter = field(default_factory=Counter)


def lower(program: Program, network: str | None = None, args: Mapping[str, Any] | None = None) -> Net:
    ctx = Context(program, Evaluator(program.blocks), block)
    return lower_network(ctx, program.network(network), args or {})


def lower_network(ctx: Context, net: ast.network, overrides: Mapping[str, Any]) -> Net:
    env = network_args(ctx, net, overrides)
    args = dict(env)
    ctx.net_blocks, ctx.net_index = count_blocks(ctx, net, dict(env)), 0
    b = Body()
    limits.STAGES.check(sum(isinstance(st, ast.stage) for st in net.body), net.span)
    for st in net.body:
        statement(ctx, st, env, b)
    if b.shape is None:
        raise SpecError(f"network '{net.name}' has no 'input'", net.span).with_note("e.g. 'input 3x224x224'")
    parts = drop_path(ctx, b.drop, env, b.parts) if b.drop is not None else b.parts
    out = Net(name=net.name, args=args, input_shape=b.input_shape, body=tuple(parts), span=net.span,
              init=tuple(b.init), source=ctx.program.text)
    check_targets(out)
    return out


def statement(ctx: Context, st, env: dict, b: Body) -> None:
    """One statement of a network body, in order: let, input, sections, stages, init, drop_path."""
    if isinstance(st, ast.let_stmt):
        env[st.name] = ctx.eval(st.value, env)
        return
    if isinstance(st, ast.input_stmt):
        if b.shape is not None:
            raise SpecError("'input' given twice", st.span)
        b.shape = b.input_shape = input_shape(ctx, st, env)
        return
    if b.shape is None:
        raise SpecError("'input' must come before the layers", st.span).with_note("e.g. 'input 3x224x224'")
    if isinstance(st, (ast.stem, ast.transition, ast.head)):
        section(ctx, st, env, b)
    elif isinstance(st, ast.aux):
        aux(ctx, st, env, b)
    elif isinstance(st, ast.stage):
        part, b.shape = stage(ctx, st, env, b.shape, f"stages.{b.counts['stage']}")
        if part.blocks:                 # `stage x 0`: nothing (and no stage index)
            b.counts["stage"] += 1
            b.parts.append(part)
    elif isinstance(st, ast.init_stmt):
        b.init.append(init_directive(ctx, st, env))
    else:
        if b.drop is not None:
            raise SpecError("'drop_path' given twice", st.span)
        b.drop = st


def section(ctx: Context, st, env: dict, b: Body) -> None:
    """stem, transitions.{i}, head: plain sequences of layers."""
    role = type(st).__name__
    b.counts[role] += 1
    name = "transitions." + str(b.counts[role] - 1) if role == "transition" else role
    if role != "transition" and b.counts[role] > 1:
        raise SpecError(f"a network has one '{role}'", st.span)
    items, b.shape = seq(ctx, st.body, {**env, "in": b.shape[0]}, b.shape, f"{name}.")
    b.parts.append(Section(name=name, role=role, items=items, span=st.span))


def aux(ctx: Context, st: ast.aux, env: dict, b: Body) -> None:
    """aux.{i}: an auxiliary classifier on the current tensor, a side output (the network goes on
    from the tensor it read); its loss weight defaults to GoogLeNet's 0.3 (Szegedy et al. 2015, §5).
    A body left empty (its layers in a false `if`) is no head at all."""
    b.counts["aux"] += 1
    name = f"aux.{b.counts['aux'] - 1}"
    weight = AUX_WEIGHT if st.weight is None else ctx.eval(st.weight, env)
    if not is_num(weight) or weight < 0:
        raise SpecError(f"aux weight must be a non-negative number, got {show(weight)}", st.weight.span)
    items, out = seq(ctx, st.body, {**env, "in": b.shape[0]}, b.shape, f"{name}.")
    if not items:                       # `aux { if aux_logits { ... } }`: torchvision's aux_logits=False
        b.counts["aux"] -= 1
        return
    if len(out) != 1:
        raise SpecError(f"an aux head must end in a vector of class scores, got {ops.fmt(out)}", st.span).with_note(
            "end it with `fc classes` (after a global `avgpool`, or `flatten`)")
    b.parts.append(Section(name=name, role="aux", items=items, span=st.span, weight=float(weight)))


def init_directive(ctx: Context, st: ast.init_stmt, env) -> tuple[str, Any]:
    first = st.args[0] if st.args else None
    if isinstance(first, ast.name) and first.id not in INIT_DIRECTIVES:
        return ("fill", tensor_init(ctx, st, env))          # init fc xavier_uniform bias zeros (init_stmt.py)
    if not isinstance(first, ast.name) or first.id not in INIT_DIRECTIVES:
        where = first.span if first is not None else st.span
        raise unknown("init directive", first.id if isinstance(first, ast.name) else "", INIT_DIRECTIVES, where)
    want = INIT_DIRECTIVES[first.id].values
    if len(st.args) - 1 != want:
        raise SpecError(f"init {first.id} takes {want} value{'s' * (want != 1)}, got {len(st.args) - 1}", st.span)
    value = ctx.eval(st.args[1], env) if want else None
    if want and (not is_num(value) or value < 0):
        raise SpecError(f"init {first.id} needs a non-negative number, got {show(value)}", st.args[1].span)
    return (first.id, value)


def drop_path(ctx: Context, st: ast.drop_path_stmt, env, body: list) -> list:
    """Stochastic depth: block l of L dropped with probability rate·l/L (linear) or rate (constant)."""
    rate, schedule, mode = drop_path_values(ctx, st, env, network=True)
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
                check_droppable(b, st.span)
                p = DROP_SCHEDULES[schedule](rate, l, total)
                blocks.append(b.model_copy(update={"drop_prob": p, "drop_mode": mode}))
            part = part.model_copy(update={"blocks": tuple(blocks)})
        out.append(part)
    return out


def network_args(ctx: Context, net: ast.network, overrides: Mapping[str, Any]) -> dict:
    """The network's arguments: `--set` overrides, else defaults (evaluated in order)."""
    names = [p.name for p in net.params]
    for k in overrides:
        if k not in names:
            raise unknown(f"parameter of network {net.name}", k, names, net.span)
    env: dict[str, Any] = {}
    for p in net.params:
        if p.name in overrides:
            env[p.name] = overrides[p.name]
        elif p.default is not None:
            env[p.name] = ctx.eval(p.default, env)
        else:
            raise SpecError(f"network parameter '{p.name}' has no default and was not set", p.span).with_note(
                f"set it with --set {p.name}=VALUE")
    return env


def input_shape(ctx: Context, st: ast.input_stmt, env) -> ops.Shape:
    dims = st.shape if st.shape is not None else ctx.eval(st.value, env)
    if not isinstance(dims, (list, tuple)) or len(dims) not in (1, 2, 3) or not all(is_int(d) for d in dims):
        raise SpecError(f"input must be C×H×W, C×L or C integers, got {show(dims)}", st.span).with_note(
            "e.g. 'input 3x224x224' (an image), 'input 40x16000' (a sequence: channels × length)")
    if any(d <= 0 for d in dims):
        raise SpecError(f"input sizes must be positive, got {ops.fmt(tuple(dims))}", st.span)
    limits.INPUT_ELEMENTS.check(math.prod(dims), st.span, ops.fmt(tuple(dims)))
    return tuple(dims)
