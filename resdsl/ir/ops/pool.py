"""Pooling: maxpool and avgpool (global without a kernel)."""
from __future__ import annotations

from typing import Callable

from .base import Attr, Op, OpError, Shape, require_positive, spatial, strided, window_size


def pool_resolve(kind: str) -> Callable[[dict, list[Shape]], dict]:
    """Stride defaults to the kernel; padding to (k − 1)/2 for maxpool, 0 for avgpool."""
    def resolve(a: dict, ins: list[Shape]) -> dict:
        k = a["kernel"]
        if k is None:                          # global pooling
            return a
        stride = k if a["stride"] is None else a["stride"]
        padding = a["padding"] if a["padding"] is not None else ((k - 1) // 2 if kind == "maxpool" else 0)
        return {**a, "stride": stride, "padding": padding}
    return resolve


def pool_shape(kind: str) -> Callable[[dict, list[Shape]], Shape]:
    def shape(a: dict, ins: list[Shape]) -> Shape:
        c, h, w = spatial(ins[0], kind)
        if a["kernel"] is None:                # global pooling
            return (c, 1, 1)
        require_positive(a, "kernel", "stride")
        k, s, p = a["kernel"], a["stride"], a["padding"]
        if p > k // 2:
            raise OpError(f"padding {p} must be at most half the kernel {k}")
        oh, ow = (window_size(x, k, s, p, 1, a["ceil"]) for x in (h, w))
        if oh < 1 or ow < 1:
            raise OpError(f"feature map {h}×{w} shrinks below 1×1 ({kind} kernel {k}, stride {s})")
        return (c, oh, ow)
    return shape


def _maxpool(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    return nn.MaxPool2d(a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil"])


def _avgpool(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    if a["kernel"] is None:
        return nn.AdaptiveAvgPool2d(1)
    return nn.AvgPool2d(a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil"],
                        count_include_pad=a["count_pad"])


def pool_facets(kind: str) -> dict:
    """Window, label and row text shared by both pools."""
    def label(a: dict, brief: bool) -> str:
        k = a["kernel"]
        return f"global {kind}" if k is None else f"{k}×{k} {kind}{strided(a['stride'])}"

    def what(a: dict) -> str:
        if a["kernel"] is None:
            return kind + (" (global)" if kind == "avgpool" else "")
        return " ".join([kind, f"{a['kernel']}×{a['kernel']}"] + ([f"s{a['stride']}"] if a["stride"] != 1 else []))

    return dict(resolve=pool_resolve(kind), label=label, what=what,
                window=lambda a, ins: None if a["kernel"] is None else (a["kernel"], a["stride"], 1))


OPS = (
    Op("maxpool", "max pooling: maxpool k K s S [p P] [ceil]", (),
       (Attr("kernel", int, 3, short="k"), Attr("stride", int, None, short="s"),
        Attr("padding", int, None, short="p"), Attr("ceil", bool, False, flag=True)),
       pool_shape("maxpool"), _maxpool, **pool_facets("maxpool")),
    Op("avgpool", "average pooling: global without a kernel, else avgpool k K s S", (),
       (Attr("kernel", int, None, short="k"), Attr("stride", int, None, short="s"),
        Attr("padding", int, None, short="p"), Attr("ceil", bool, False, flag=True),
        Attr("count_pad", bool, True)),
       pool_shape("avgpool"), _avgpool, **pool_facets("avgpool")),
)
