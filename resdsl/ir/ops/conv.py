"""Weighted linear ops: conv (2-D convolution) and fc (fully connected)."""
from __future__ import annotations

import math

from .base import (SIZE, Attr, AttrError, Op, OpError, Shape, fmt, pair, require_positive, spatial, strided,
                   window_size)


def conv_resolve(a: dict, ins: list[Shape]) -> dict:
    """Padding defaults to 'same' for stride 1: (k − 1)/2 · dilation per side; an even kernel has none."""
    if a["padding"] is not None:
        return a
    k = pair(a["kernel"])
    if min(k) <= 0:                           # conv_shape says what is wrong
        return {**a, "padding": 0}
    if any(x % 2 == 0 for x in k):
        written = "x".join(map(str, k)) if k[0] != k[1] else str(k[0])
        raise AttrError("kernel", f"conv kernel {fmt(k)} is even, so it has no centred ('same') padding").note(
            f"give the padding explicitly: 'p 0' for a patchify stem (conv {a['out']} k{written} "
            f"s{a['stride']} p 0), or 'p 1' for one pixel per side")
    p = tuple((x - 1) // 2 * a["dilation"] for x in k)
    return {**a, "padding": p[0] if p[0] == p[1] else p}


def conv_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = spatial(ins[0], "conv")
    require_positive(a, "out", "stride", "dilation", "groups")
    if min(pair(a["kernel"])) <= 0:
        raise OpError(f"kernel must be positive, got {a['kernel']}")
    if min(pair(a["padding"])) < 0:
        raise OpError(f"padding must be >= 0, got {a['padding']}")
    g = a["groups"]
    if c % g or a["out"] % g:
        raise OpError(f"groups {g} must divide input channels {c} and output channels {a['out']}")
    p, k = pair(a["padding"]), pair(a["kernel"])
    oh, ow = (window_size(x, kx, a["stride"], px, a["dilation"]) for x, kx, px in zip((h, w), k, p))
    if oh < 1 or ow < 1:
        raise OpError(f"feature map {h}×{w} shrinks below 1×1 (kernel {fmt(k)}, stride {a['stride']}, "
                      f"padding {fmt(p)})")
    return (a["out"], oh, ow)


def conv_params(a: dict, ins: list[Shape], out: Shape) -> int:
    return out[0] * (ins[0][0] // a["groups"]) * math.prod(pair(a["kernel"])) + (out[0] if a["bias"] else 0)


def conv_macs(a: dict, ins: list[Shape], out: Shape) -> int:
    return math.prod(out) * (ins[0][0] // a["groups"]) * math.prod(pair(a["kernel"]))


def conv_build(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    return nn.Conv2d(ins[0][0], a["out"], pair(a["kernel"]), a["stride"], pair(a["padding"]), a["dilation"],
                     a["groups"], a["bias"])


def conv_label(a: dict, brief: bool) -> str:
    """"3×3 conv 64, s2" ("1×1 conv, s2" inside a shortcut)."""
    tail = strided(a["stride"]) + "".join(f", {e}" for e in (
        f"g{a['groups']}" if a["groups"] != 1 else "", f"d{a['dilation']}" if a["dilation"] != 1 else "",
        "+bias" if a["bias"] else "") if e)
    return f"{fmt(pair(a['kernel']))} conv{'' if brief else ' ' + str(a['out'])}{tail}"


def conv_what(a: dict) -> str:
    """`conv 3×3 s2 d2 g32`: the op and its geometry."""
    parts = ["conv", fmt(pair(a["kernel"]))] + ([f"s{a['stride']}"] if a["stride"] != 1 else [])
    parts += [f"d{a['dilation']}"] if a["dilation"] != 1 else []
    parts += [f"g{a['groups']}"] if a["groups"] != 1 else []
    return " ".join(parts)


def fc_shape(a: dict, ins: list[Shape]) -> Shape:
    require_positive(a, "out")
    if len(ins[0]) == 3 and ins[0][1:] != (1, 1):
        raise OpError(f"fc needs a vector or C×1×1 input, got {fmt(ins[0])}; add a global 'avgpool' first")
    return (a["out"],)


def fc_build(a: dict, ins: list[Shape], inplace: bool):
    from ...backend.modules import FlattenLinear

    return FlattenLinear(ins[0][0], a["out"], bias=a["bias"])


def fc_window(a: dict, ins: list[Shape]):
    return None if len(ins[0]) == 3 and ins[0][1:] != (1, 1) else (1, 1, 1)


CONV = Op(
    "conv", "2-D convolution: conv OUT k K s S [p P] [d D] [groups G] [bias]; K and P may be HxW (k 1x7 p 0x3)",
    ("out",),
    (Attr("out", int), Attr("kernel", SIZE, 1, short="k"), Attr("stride", int, 1, short="s"),
     Attr("padding", SIZE, None, short="p"), Attr("dilation", int, 1, short="d"),
     Attr("groups", int, 1, short="g"), Attr("bias", bool, False, flag=True)),
    conv_shape, conv_build, conv_params, conv_macs, resolve=conv_resolve,
    window=lambda a, ins: (max(pair(a["kernel"])), a["stride"], a["dilation"]),   # the larger side of k_h×k_w
    label=conv_label, what=conv_what, weights="trained", fresh_output=True, per_channel=True,
    aten=("convolution", "_convolution", "conv2d"))

FC = Op(
    "fc", "fully connected layer on a vector or C×1×1 map: fc OUT [bias false]", ("out",),
    (Attr("out", int), Attr("bias", bool, True, flag=True)),
    fc_shape, fc_build, lambda a, i, o: i[0][0] * o[0] + (o[0] if a["bias"] else 0), lambda a, i, o: i[0][0] * o[0],
    window=fc_window, label=lambda a, brief: f"fc {a['out']}", weights="trained", aten=("mm", "addmm", "linear"))

OPS = (CONV, FC)
