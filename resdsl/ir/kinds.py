"""The closed vocabularies of residual units, each one table: shortcut kinds, merge modes, stochastic
depth modes and schedules, init directives, roles, levels.

Everything else (the language's words, the IR's types, the graph's records and edge labels, the
drawing's styles, the runtime's behaviour) is derived from these tables; a consumer reads a fact
stated here (`Merge.additive`, `ShortcutKind.identity_where_same`) instead of testing names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ShortcutKind:
    """What a unit adds to its residual branch (`shortcut NAME`)."""
    name: str
    doc: str
    user: bool = True                        # written `shortcut NAME` (custom: `shortcut { ... }`)
    identity_where_same: bool = False        # where the unit keeps its shape, the kind is the identity
    carries: bool = True                     # False: no shortcut at all (a plain unit)
    layers: tuple[tuple[str, ...], ...] = ()  # the op kinds of its layers (each form it can take)
    drawn: str | None = None                 # the drawn kind, where not its own name


SHORTCUTS: dict[str, ShortcutKind] = {s.name: s for s in (
    ShortcutKind("identity", "x + F(x); the shapes must match", layers=((),)),
    ShortcutKind("zeropad", "option A: subsample by the stride, pad the new channels with zeros",
                 identity_where_same=True, layers=(("zeropad",),)),
    ShortcutKind("projection", "option B: 1×1 conv + BN where the shape changes, identity elsewhere",
                 identity_where_same=True, layers=(("conv", "bn"), ("conv",))),
    ShortcutKind("projection_all", "option C: 1×1 conv + BN in every unit",
                 layers=(("conv", "bn"), ("conv",)), drawn="projection"),
    ShortcutKind("avgdown", "ResNet-D: 2×2 avgpool, then 1×1 conv + BN where the shape changes",
                 identity_where_same=True, layers=(("avgpool", "conv", "bn"), ("avgpool", "conv"))),
    ShortcutKind("none", "no shortcut: a plain unit", carries=False),
    ShortcutKind("custom", "the layers of `shortcut { ... }`", user=False),
)}
USER_SHORTCUTS = tuple(k for k, s in SHORTCUTS.items() if s.user)


def drawn_shortcut(kind: str, layer_kinds: list[str]) -> str:
    """The drawn kind of a shortcut: its table entry's, or for `shortcut { ... }` the kind whose
    layers it has exactly (`{ conv k1 s2; bn }` is a projection), else `custom`."""
    entry = SHORTCUTS.get(kind)
    if entry is not None and entry.user:
        return entry.drawn or kind
    match = next((s for s in SHORTCUTS.values() if s.user and s.carries and layer_kinds
                  and tuple(layer_kinds) in s.layers), None)
    return (match.drawn or match.name) if match is not None else kind


@dataclass(frozen=True)
class Merge:
    """How a unit merges its residual branch with its shortcut (`merge MODE`)."""
    name: str
    node: str                    # op kind of the merge node in the graph
    drawn: str | None            # the drawn shortcut kind it implies; None: the shortcut's own kind
    doc: str
    additive: bool               # y = shortcut + scale·F(x): droppable, lesionable, an ODE step, foldable
    takes_shortcut: bool = True  # False: the input is passed on as it is (a dense unit); `shortcut` refused
    needs_gate: bool = False     # a gate T(x) is built (`k`, `bias`)


MERGE_MODES: dict[str, Merge] = {c.name: c for c in (
    Merge("add", "add", None, "y = x + F(x)", additive=True),
    Merge("gate", "highway", "gated", "y = F(x)·T(x) + x·(1 − T(x)) (highway units)", additive=False, needs_gate=True),
    Merge("concat", "concat", "concat", "y = [x, F(x)] (dense units)", additive=False, takes_shortcut=False),
)}


def additive(merge: str, shortcut: str) -> bool:
    """Whether a unit is y = x + s·F(x) with a shortcut: the one definition every pass reads
    (as `Block.additive` and the graph's `blocks[name]["additive"]`)."""
    return MERGE_MODES[merge].additive and SHORTCUTS[shortcut].carries


PARALLEL_MODES = ("concat", "sum")     # `parallel MODE { ... }`


@dataclass(frozen=True)
class DropMode:
    """Stochastic depth: how the residual of an additive unit is dropped (`drop_path P mode NAME`)."""
    name: str
    doc: str


DROP_MODES: dict[str, DropMode] = {m.name: m for m in (
    DropMode("batch", "Huang et al.: one gate per mini-batch"),
    DropMode("sample", "timm's drop path"),
)}

# `drop_path RATE SCHEDULE` on a network: unit l of L (from 1) dropped with probability f(rate, l, L)
DROP_SCHEDULES: dict[str, Callable[[float, int, int], float]] = {
    "linear": lambda rate, l, total: rate * l / total,
    "constant": lambda rate, l, total: rate,
}


@dataclass(frozen=True)
class InitDirective:
    """`init NAME [VALUE]` in a network; its effect is the function of the same name in backend/init.py."""
    name: str
    values: int                  # how many values it takes
    doc: str


INIT_DIRECTIVES: dict[str, InitDirective] = {d.name: d for d in (
    InitDirective("zero_last_bn", 0, "γ = 0 in the last BN of every residual branch: each unit starts as its shortcut (Goyal et al.)"),
    InitDirective("residual_std", 1, "residual-branch convs ~ N(0, std²); std 0 is zero init (Li et al.)"),
    InitDirective("looks_linear", 0, "orthogonal weights, [W, −W] after a CReLU: linear at init (Balduzzi et al.)"),
)}


@dataclass(frozen=True)
class InitFill:
    """A distribution `init KIND FILL [VALUE]` writes into the weights (or `bias FILL`) of layers;
    its effect is the function of the same name in `FILLS` of backend/init.py."""
    name: str
    values: int                  # how many numbers it takes
    doc: str
    fan: bool = False            # scaled by the tensor's fan-in/fan-out: needs a weight matrix or kernel
    sign: str = "non_negative"   # what its number must be ("any": a constant)


INIT_FILLS: dict[str, InitFill] = {f.name: f for f in (
    InitFill("zeros", 0, "0"),
    InitFill("ones", 0, "1"),
    InitFill("constant", 1, "the value V", sign="any"),
    InitFill("normal", 1, "N(0, S²)"),
    InitFill("trunc_normal", 1, "N(0, S²) cut to [−2, 2], torch's trunc_normal_ as torchvision and timm call it "
             "(the bounds are absolute: for S ≪ 1 a plain normal)"),
    InitFill("uniform", 1, "U(−A, A)"),
    InitFill("xavier_uniform", 0, "U(±√(6/(fan_in + fan_out))) (Glorot & Bengio)", fan=True),
    InitFill("xavier_normal", 0, "N(0, 2/(fan_in + fan_out)) (Glorot & Bengio)", fan=True),
    InitFill("kaiming_normal", 0, "N(0, 2/fan_out), the default of convs here (torchvision's ResNet; He et al.)",
             fan=True),
    InitFill("lecun_normal", 0, "variance 1/fan_in, a normal cut at ±2σ (timm's lecun_normal_)", fan=True),
    InitFill("default", 0, "torch's own default of Linear and Conv: U(±1/√fan_in), weight and bias alike",
             fan=True),
)}

# `init head fc ...`: the part of the network an `init` reaches (a section word → the graph's section name).
INIT_SECTIONS = {"stem": "stem", "stage": "stages", "transition": "transitions", "head": "head", "aux": "aux"}

# The part of a unit (or of the network) a node belongs to: `scope["role"]` in the graph.
UNIT_ROLES = ("pre", "residual", "shortcut", "gate", "merge", "post")
BRANCH_ROLES = ("residual", "gate")          # the branches a path through a unit can take
SECTION_ROLES = ("stem", "transition", "head")

# Detail of a table or a drawing: the whole network, a row per stage, per residual block, per op.
LEVELS = ("network", "stage", "block", "layer")
