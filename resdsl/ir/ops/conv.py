"""Weighted linear ops: conv (2-D on maps, 1-D on sequences) and fc (fully connected)."""
from __future__ import annotations

import math

from .base import (SIZE, Attr, AttrError, Op, OpError, Shape, fmt, rank_of, require_positive, sizes, strided,
                   window_size, window_text, windowed)
from .base import is_tokens, like


def conv_resolve(a: dict, ins: list[Shape] | None) -> dict:
    """Kernel and padding one value per axis on a C×L sequence ((k,)); padding defaults to 'same'
    for stride 1, (k − 1)/2 · dilation per side (an even kernel has none), or with `causal` to
    (k − 1) · dilation, all on the left (WaveNet: output t sees inputs ≤ t)."""
    rank = len(ins[0]) - 1 if ins and len(ins[0]) in (2, 3) else rank_of(a["kernel"])
    for name in ("kernel", "padding"):
        try:
            v = a[name] if a[name] is None else sizes(a[name], rank)
        except OpError as e:
            raise AttrError(name, f"conv {name} {e}") from None
        if rank == 1:
            a = {**a, name: v}
    if a.get("causal"):                  # lowering's own convs (a projection) leave it out
        return causal_padding(a, rank)
    a = {**a, "causal": False}
    if a["padding"] is not None:
        return a
    k = sizes(a["kernel"], rank)
    if min(k) <= 0:                           # conv_shape says what is wrong
        return {**a, "padding": (0,) if rank == 1 else 0}
    if any(x % 2 == 0 for x in k):
        raise even_kernel(a, k, rank)
    p = tuple((x - 1) // 2 * a["dilation"] for x in k)
    return {**a, "padding": p if rank == 1 or p[0] != p[1] else p[0]}


def even_kernel(a: dict, k: tuple[int, ...], rank: int) -> AttrError:
    written = "x".join(map(str, k)) if len(set(k)) > 1 else str(k[0])
    err = AttrError("kernel", f"conv kernel {fmt(k)} is even, so it has no centred ('same') padding")
    if rank == 1:
        return err.note(f"on a sequence, 'causal' pads (k − 1)·d on the left (conv {a['out']} k{written} causal, "
                        "WaveNet); or give the padding explicitly: 'p 0'")
    return err.note(f"give the padding explicitly: 'p 0' for a patchify stem (conv {a['out']} k{written} "
                    f"s{a['stride']} p 0), or 'p 1' for one pixel per side")


def causal_padding(a: dict, rank: int) -> dict:
    """`causal`: a 1-D conv padded by (k − 1)·d on the left only, so output t reads inputs t − (k − 1)·d .. t."""
    if rank != 1:
        raise AttrError("causal", "causal padding needs a C×L sequence; this conv reads a C×H×W map").note(
            "drop 'causal', or give the network a sequence input ('input 40x16000')")
    k = a["kernel"][0]
    left = (k - 1) * a["dilation"]
    if a["padding"] is not None and a["padding"] != (left,):
        raise AttrError("padding", f"a causal conv pads (k − 1)·d = {left} on the left; padding "
                        f"{fmt(a['padding'])} cannot be given with 'causal'").note("leave out 'p'")
    return {**a, "padding": (left,)}


def conv_shape(a: dict, ins: list[Shape]) -> Shape:
    rank = windowed(ins[0], "conv")
    c, *dims = ins[0]
    require_positive(a, "out", "stride", "dilation", "groups")
    k, p = sizes(a["kernel"], rank), sizes(a["padding"], rank)
    if min(k) <= 0:
        raise OpError(f"kernel must be positive, got {a['kernel']}")
    if min(p) < 0:
        raise OpError(f"padding must be >= 0, got {a['padding']}")
    g = a["groups"]
    if c % g or a["out"] % g:
        raise OpError(f"groups {g} must divide input channels {c} and output channels {a['out']}")
    if a["causal"]:      # all the padding on the left: the length grows by p, not 2p
        out = [window_size(x + px, kx, a["stride"], 0, a["dilation"]) for x, kx, px in zip(dims, k, p)]
    else:
        out = [window_size(x, kx, a["stride"], px, a["dilation"]) for x, kx, px in zip(dims, k, p)]
    if min(out) < 1:
        raise OpError(f"{'sequence' if rank == 1 else 'feature map'} {fmt(tuple(dims))} shrinks below "
                      f"{fmt((1,) * rank)} (kernel {fmt(k)}, stride {a['stride']}, padding {fmt(p)})")
    return (a["out"], *out)


def conv_params(a: dict, ins: list[Shape], out: Shape) -> int:
    return out[0] * (ins[0][0] // a["groups"]) * math.prod(sizes(a["kernel"])) + (out[0] if a["bias"] else 0)


def conv_macs(a: dict, ins: list[Shape], out: Shape) -> int:
    return math.prod(out) * (ins[0][0] // a["groups"]) * math.prod(sizes(a["kernel"]))


def conv_label(a: dict, brief: bool) -> str:
    """"3×3 conv 64, s2" ("1×1 conv, s2" inside a shortcut; "k2 conv 32, d4, causal" on a sequence)."""
    tail = strided(a["stride"]) + "".join(f", {e}" for e in (
        f"g{a['groups']}" if a["groups"] != 1 else "", f"d{a['dilation']}" if a["dilation"] != 1 else "",
        "causal" if a["causal"] else "", "+bias" if a["bias"] else "") if e)
    return f"{window_text(a['kernel'])} conv{'' if brief else ' ' + str(a['out'])}{tail}"


def conv_what(a: dict) -> str:
    """`conv 3×3 s2 d2 g32` (`conv k2 d4 causal` on a sequence): the op and its geometry."""
    parts = ["conv", window_text(a["kernel"])] + ([f"s{a['stride']}"] if a["stride"] != 1 else [])
    parts += [f"d{a['dilation']}"] if a["dilation"] != 1 else []
    parts += [f"g{a['groups']}"] if a["groups"] != 1 else []
    parts += ["causal"] if a["causal"] else []
    return " ".join(parts)


def fc_shape(a: dict, ins: list[Shape]) -> Shape:
    require_positive(a, "out")
    if is_tokens(ins[0]):                 # a Linear on each token's D (a transformer's MLP, Swin's reduction)
        return like(ins[0], (a["out"], *ins[0][1:]))
    if any(d != 1 for d in ins[0][1:]):
        raise OpError(f"fc needs a vector, C×1 or C×1×1 input, got {fmt(ins[0])}; add a global 'avgpool' first")
    return (a["out"],)


def fc_window(a: dict, ins: list[Shape]):
    if is_tokens(ins[0]):
        return (1, 1, 1)
    return None if any(d != 1 for d in ins[0][1:]) else (1, 1, 1)


CONV = Op(
    "conv", "convolution, 2-D on a C×H×W map or 1-D on a C×L sequence: conv OUT k K s S [p P] [d D] [groups G] "
    "[bias] [causal]; K and P may be HxW (k 1x7 p 0x3); causal (1-D): (k − 1)·d zeros on the left only",
    ("out",),
    (Attr("out", int), Attr("kernel", SIZE, 1, short="k"), Attr("stride", int, 1, short="s"),
     Attr("padding", SIZE, None, short="p"), Attr("dilation", int, 1, short="d"),
     Attr("groups", int, 1, short="g"), Attr("bias", bool, False, flag=True),
     Attr("causal", bool, None, flag=True)),
    conv_shape, conv_params, conv_macs, resolve=conv_resolve,
    window=lambda a, ins: (max(sizes(a["kernel"])), a["stride"], a["dilation"]),   # the larger side of k_h×k_w
    label=conv_label, what=conv_what, weights="trained", fresh_output=True, per_channel=True,
    aten=("convolution", "_convolution", "conv2d"))

FC = Op(
    "fc", "fully connected layer on a vector or C×1×1 map, or on each token (N×D tokens, a grid): fc OUT [bias false]", ("out",),
    (Attr("out", int), Attr("bias", bool, True, flag=True)),
    fc_shape, lambda a, i, o: i[0][0] * o[0] + (o[0] if a["bias"] else 0), lambda a, i, o: math.prod(o) * i[0][0],
    window=fc_window, label=lambda a, brief: f"fc {a['out']}", weights="trained", aten=("mm", "addmm", "linear"))

OPS = (CONV, FC)
