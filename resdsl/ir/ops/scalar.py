"""Scalar scalings: a constant factor (NF-ResNet's β) and a learnable a·x + b (HGNetV2)."""
from __future__ import annotations

from .base import NUM, Attr, Op, channels_of


def _same(what: str):
    return lambda a, ins: (channels_of(ins[0], what), ins[0])[1]


OPS = (Op("rescale", "y = F·x with a constant F, not learned (NF-ResNet's β = 1/√Var on the pre-activation): rescale F",
          ("factor",), (Attr("factor", NUM),), _same("rescale"),
          label=lambda a, brief: f"×{a['factor']:.4g}"),
       Op("affine", "y = a·x + b with two learnable scalars (HGNetV2's LearnableAffineBlock): affine [scale 1] [bias 0]",
          (), (Attr("scale", NUM, 1.0), Attr("bias", NUM, 0.0)), _same("affine"),
          lambda a, i, o: 2, label=lambda a, brief: "a·x+b", weights="trained"),)
