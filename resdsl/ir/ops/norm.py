"""Normalisation and per-channel scaling: bn, layernorm, groupnorm, layer_scale."""
from __future__ import annotations

from .base import NUM, Attr, Op, Shape, channels_of, divides, fraction, positive


def bn_shape(a: dict, ins: list[Shape]) -> Shape:
    channels_of(ins[0], "bn")
    return ins[0]


def groupnorm_shape(a: dict, ins: list[Shape]) -> Shape:
    divides("groupnorm", a["groups"], channels_of(ins[0], "groupnorm"))
    return ins[0]


def same_channels(what: str):
    return lambda a, ins: channels_of(ins[0], what, tokens=True) and ins[0]   # keeps the layout


OPS = (Op("bn", "batch normalisation (affine, running statistics): bn [eps E] [momentum M]", (),
          (Attr("eps", float, 1e-5, check=positive), Attr("momentum", float, 0.1, check=fraction)),
          bn_shape, lambda a, i, o: 2 * o[0], label=lambda a, brief: "BN", weights="norm",
          fold=True, fresh_output=True, per_channel=True),
       Op("layernorm", "layer norm over the channels of each position (C×H×W, ConvNeXt; C×L; each token's D) or of a vector: "
          "layernorm [eps 1e-6]", (), (Attr("eps", float, 1e-5, check=positive),), same_channels("layernorm"),
          lambda a, i, o: 2 * o[0], weights="norm"),
       Op("groupnorm", "group norm (Wu & He 2018): groupnorm G [eps 1e-5]", ("groups",),
          (Attr("groups", int), Attr("eps", float, 1e-5, check=positive)), groupnorm_shape,
          lambda a, i, o: 2 * o[0], weights="norm"),
       Op("layer_scale", "learnable per-channel scale γ ⊙ x, γ initialised to INIT (CaiT, ConvNeXt): layer_scale 1e-6",
          ("init",), (Attr("init", NUM),), same_channels("layer_scale"), lambda a, i, o: o[0],
          weights="trained"),
       )
