"""Ops that change a tensor's size without weights: upsample (nearest, bilinear) and flatten."""
from __future__ import annotations

import math

from ... import limits
from .base import NUM, SIZE, Attr, AttrError, Op, OpError, Shape, fmt, non_negative, sizes, windowed


def upsample_resolve(a: dict, ins: list[Shape] | None) -> dict:
    """Exactly one of a scale factor and a target size (scale 0: not given, as the positional
    argument is optional); align_corners only with bilinear (torch's rule)."""
    if a["scale"] and a["size"] is not None:
        raise AttrError("size", "upsample takes a scale factor or a target size, not both")
    if not a["scale"] and a["size"] is None:
        raise AttrError("scale", "upsample needs a positive scale factor or a target size").note(
            "e.g. `upsample 2`, `upsample 2 bilinear` or `upsample size 56x56`")
    a = {**a, "scale": a["scale"] or None}
    if a["align_corners"] and not a["bilinear"]:
        raise AttrError("align_corners", "upsample: align_corners needs bilinear (nearest has no corners to align)")
    if a["size"] is not None and ins and len(ins[0]) in (2, 3):
        try:
            size = sizes(a["size"], len(ins[0]) - 1)
        except OpError as e:
            raise AttrError("size", f"upsample size {e}") from None
        return {**a, "size": size}
    return a


def upsample_shape(a: dict, ins: list[Shape]) -> Shape:
    rank = windowed(ins[0], "upsample")
    if a["bilinear"] and rank != 2:
        raise OpError("bilinear upsampling needs a C×H×W map; a C×L sequence takes nearest")
    c, *dims = ins[0]
    if a["scale"] is not None:
        out = [math.floor(float(x) * a["scale"]) for x in dims]      # torch: floor(size · scale)
    else:
        out = list(sizes(a["size"], rank))
    if min(out) < 1:
        raise OpError(f"upsampling {fmt(tuple(dims))} gives {fmt(tuple(out))}, below {fmt((1,) * rank)}")
    elements = c * math.prod(out)
    budget = limits.memory_budget()
    if elements * 4 > budget:
        raise OpError(f"upsampling to {fmt((c, *out))} makes {elements:,} elements ({elements * 4 / 2**30:,.1f} GiB "
                      f"of fp32 per sample), over the memory budget of {budget / 2**30:.1f} GiB").note(
            "limit 'memory' (default: half this machine's memory; RESDSL_LIMIT_MEMORY=BYTES sets it)")
    return (c, *out)


def upsample_label(a: dict, brief: bool) -> str:
    how = "bilinear" + (", corners" if a["align_corners"] else "") if a["bilinear"] else "nearest"
    to = f"×{a['scale']:g}" if a["scale"] is not None else f"to {fmt(a['size'])}"
    return f"upsample {to} ({how})"


def flatten_shape(a: dict, ins: list[Shape]) -> Shape:
    return (math.prod(ins[0]),)


OPS = (
    Op("upsample", "upsampling of a map (or sequence): upsample SCALE [bilinear [align_corners]] | upsample size HxW",
       ("scale",),
       (Attr("scale", NUM, 0, check=non_negative), Attr("size", SIZE, None), Attr("bilinear", bool, False, flag=True),
        Attr("align_corners", bool, False, flag=True)),
       upsample_shape, resolve=upsample_resolve,
       # each output reads 1 (nearest) or 2×2 (bilinear) input pixels; the field's jump is kept (an
       # upper bound: upsampling divides it by the scale, which the integer jump cannot say)
       window=lambda a, ins: (2 if a["bilinear"] else 1, 1, 1), label=upsample_label,
       what=lambda a: "upsample " + ("bilinear" if a["bilinear"] else "nearest")),
    Op("flatten", "a C×H×W map (or C×L sequence) as one vector of C·H·W values (before AlexNet's and VGG's fc)",
       (), (), flatten_shape, window=lambda a, ins: None if len(ins[0]) > 1 else (1, 1, 1)),
)
