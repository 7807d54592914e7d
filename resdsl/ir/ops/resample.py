"""Resampling without weights: anti-aliased blur pooling, space-to-depth, and explicit zero padding
(asymmetric sides, or TF's 'same' for a given kernel and stride)."""
from __future__ import annotations

import math

from .base import Attr, AttrError, Op, OpError, Shape, fmt, positive, spatial, windowed


def is_word(v, word: str) -> bool:
    """A bare word of the language (the frontend's Symbol, read here by its text: ops sit below the frontend)."""
    return not isinstance(v, (int, float, list, tuple, str)) and str(v) == word


def blur_padding(k: int, s: int) -> int:
    """timm's get_padding(k, s): ((s − 1) + (k − 1)) // 2 per side."""
    return ((s - 1) + (k - 1)) // 2


def blurpool_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = spatial(ins[0], "blurpool")
    if a["kernel"] < 2:
        raise OpError(f"blurpool kernel must be at least 2, got {a['kernel']}")
    p = blur_padding(a["kernel"], a["stride"])
    if min(h, w) <= p:
        raise OpError(f"blurpool reflect-pads {p} per side, which needs a map larger than {p}×{p}; got {fmt(ins[0])}")
    return (c, *((x + 2 * p - a["kernel"]) // a["stride"] + 1 for x in (h, w)))


def s2d_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = spatial(ins[0], "space_to_depth")
    b = a["block"]
    if h % b or w % b:
        raise OpError(f"space_to_depth {b} needs a map whose height and width divide by {b}, got {fmt(ins[0])}")
    return (c * b * b, h // b, w // b)


def same_sides(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TF 'same': total (⌈n/s⌉ − 1)·s + (k − 1)·d + 1 − n, the extra pixel after (timm's pad_same)."""
    total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def pad_resolve(a: dict, ins: list[Shape]) -> dict:
    v, rank = a["sides"], len(ins[0]) - 1 if len(ins[0]) in (2, 3) else 2
    if is_word(v, "same"):
        if a["kernel"] is None:
            raise AttrError("kernel", "pad same needs the kernel of the conv it pads for").note(
                "write 'pad same k3 s2' (TF's 'same' for a 3×3 conv of stride 2), then 'conv ... p 0'")
        dims = ins[0][1:]
        per = [same_sides(n, a["kernel"], a["stride"], a["dilation"]) for n in dims]
        sides = tuple(x for axis in reversed(per) for x in axis)       # F.pad: last axis first
        return {**a, "sides": sides}
    if isinstance(v, int):
        v = [v] * (2 * rank)
    if (not isinstance(v, (list, tuple)) or len(v) != 2 * rank
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)):
        want = "[left, right, top, bottom]" if rank == 2 else "[left, right]"
        raise AttrError("sides", f"pad takes 'same' or {2 * rank} sizes {want} (torch's F.pad order), "
                        f"each >= 0")
    return {**a, "sides": tuple(v)}


def pad_shape(a: dict, ins: list[Shape]) -> Shape:
    windowed(ins[0], "pad")
    c, *dims = ins[0]
    sides = a["sides"]
    grown = [n + sides[2 * (len(dims) - 1 - i)] + sides[2 * (len(dims) - 1 - i) + 1] for i, n in enumerate(dims)]
    return (c, *grown)


OPS = (Op("blurpool", "anti-aliased downsampling (Zhang 2019): reflect padding, a fixed binomial k×k blur per channel, "
          "stride s (timm's BlurPool2d): blurpool [k 3] [s 2]", (),
          (Attr("kernel", int, 3, short="k"), Attr("stride", int, 2, short="s", check=positive)),
          blurpool_shape,
          macs=lambda a, i, o: math.prod(o) * a["kernel"] ** 2,
          window=lambda a, ins: (a["kernel"], a["stride"], 1), label=lambda a, brief: f"blurpool k{a['kernel']}, s{a['stride']}",
          per_channel=True),
       Op("space_to_depth", "each b×b block of pixels becomes b² channels (TResNet's stem): space_to_depth B",
          ("block",), (Attr("block", int, check=positive),), s2d_shape,
          window=lambda a, ins: (a["block"], a["block"], 1), label=lambda a, brief: f"space_to_depth {a['block']}"),
       Op("pad", "zero padding: pad [left, right, top, bottom] (F.pad order; [left, right] on a sequence), or TF's "
          "'same' for a kernel and stride: pad same k K s S [d D]", ("sides",),
          (Attr("sides", object), Attr("kernel", int, None, short="k", check=positive),
           Attr("stride", int, 1, short="s", check=positive), Attr("dilation", int, 1, short="d", check=positive)),
          pad_shape, resolve=pad_resolve, label=lambda a, brief: f"pad {list(a['sides'])}"),)
