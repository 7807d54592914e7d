"""Ops produced by lowering, never written as layers: the merges of residual units, branches and
dataflow bodies (`add a b`, `concat a b`, `mul a g`, `sub a b`), and the zero-padding shortcut. Merges build
no module: ResidualBlock, Branches and Dataflow (backend/modules.py) run them (`Op.builds_module`)."""
from __future__ import annotations

from .base import NUM, Attr, Op, OpError, Shape, fmt, is_tokens, strided, windowed


def add_shape(a: dict, ins: list[Shape]) -> Shape:
    if any(s != ins[0] or is_tokens(s) != is_tokens(ins[0]) for s in ins[1:]):
        raise OpError("cannot add tensors of shapes " + " and ".join(fmt(s) for s in ins))
    return ins[0]


def concat_shape(a: dict, ins: list[Shape]) -> Shape:
    if any(len(s) != len(ins[0]) or s[1:] != ins[0][1:] for s in ins[1:]):
        raise OpError("cannot concatenate tensors of shapes " + " and ".join(fmt(s) for s in ins)
                      + " (spatial sizes differ)")
    return (sum(s[0] for s in ins), *ins[0][1:])


def sub_shape(a: dict, ins: list[Shape]) -> Shape:
    """a − b of two tensors of one shape (PoolFormer's `pool(x) − x`); no broadcasting, as `add`."""
    if len(ins) != 2:
        raise OpError(f"sub takes two tensors (a − b), got {len(ins)}")
    if ins[1] != ins[0]:
        raise OpError("cannot subtract tensors of shapes " + " and ".join(fmt(s) for s in ins)).note(
            "sub needs two tensors of one shape")
    return ins[0]


def mul_shape(a: dict, ins: list[Shape]) -> Shape:
    """Elementwise product, broadcast axis by axis where one side is 1: a C×1×1 gate over a C×H×W map
    (SE), a 1×H×W gate over the channels (a spatial gate: FocalNet, CBAM), C×1 over C×L."""
    rank = len(ins[0])
    if any(len(s) != rank for s in ins) or rank < 2 and len(set(ins)) > 1:
        raise OpError("cannot multiply tensors of shapes " + " and ".join(fmt(x) for x in ins))
    out = tuple(max(dims) for dims in zip(*ins))
    if any(d not in (1, o) for s in ins for d, o in zip(s, out)):
        raise OpError("cannot multiply tensors of shapes " + " and ".join(fmt(x) for x in ins)).note(
            "each axis must agree or be 1 on one side (a C×1×1 or 1×H×W gate)")
    return out


def zeropad_shape(a: dict, ins: list[Shape]) -> Shape:
    windowed(ins[0], "zeropad")
    c, *dims = ins[0]
    if a["out"] < c:
        raise OpError(f"zero-padding shortcut cannot reduce channels from {c} to {a['out']}")
    return (a["out"], *(-(-x // a["stride"]) for x in dims))


OPS = (
    Op("add", "sum of residual branches (times scale) and a shortcut; drop_prob: stochastic depth", (),
       (Attr("scale", NUM, 1.0), Attr("drop_prob", NUM, 0.0), Attr("drop_mode", str, "batch")),
       add_shape, n_inputs=-1, user=False, merge="+",
       label=lambda a, brief: "+" if a["scale"] == 1.0 else f"+ (×{a['scale']:g})"),
    Op("highway", "gated merge: h·t + x·(1 − t) of (h, x, t)", (), (), add_shape, n_inputs=3, user=False),
    Op("concat", "channel concatenation", (), (), concat_shape, n_inputs=-1, user=False, merge="‖"),
    Op("sub", "difference of two named tensors of one shape: sub a b = a − b", (), (), sub_shape,
       n_inputs=2, user=False, merge="−"),
    Op("mul", "elementwise product of named tensors (gating); an axis of size 1 broadcasts (C×1×1, 1×H×W)", (), (), mul_shape,
       n_inputs=-1, user=False, merge="×"),
    Op("zeropad", "option-A shortcut: subsample by stride, pad channels with zeros", (),
       (Attr("out", int), Attr("stride", int, 1)), zeropad_shape, user=False,
       window=lambda a, ins: (1, a["stride"], 1),
       label=lambda a, brief: f"zero-pad to {a['out']} ch{strided(a['stride'])}"),
)
