"""Normalisation: bn (batch normalisation, affine, running statistics)."""
from __future__ import annotations

from .base import Attr, Op, OpError, Shape, fmt, fraction, positive


def bn_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) not in (1, 3):
        raise OpError(f"bn needs a C or C×H×W input, got {fmt(ins[0])}")
    return ins[0]


def bn_build(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    cls = nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d
    return cls(ins[0][0], eps=a["eps"], momentum=a["momentum"])


OPS = (Op("bn", "batch normalisation (affine, running statistics): bn [eps E] [momentum M]", (),
          (Attr("eps", float, 1e-5, check=positive), Attr("momentum", float, 0.1, check=fraction)),
          bn_shape, bn_build, lambda a, i, o: 2 * o[0], label=lambda a, brief: "BN", weights="norm",
          fold=True, fresh_output=True, per_channel=True),)
