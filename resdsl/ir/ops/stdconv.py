"""Weight-standardised convolution (Qiao et al. 2019; Brock et al. 2021's normaliser-free nets)."""
from __future__ import annotations

from .base import NUM, Attr, AttrError, Op, Shape, positive, spatial
from .conv import CONV, conv_macs, conv_params, conv_resolve, conv_shape, conv_what


def std_resolve(a: dict, ins: list[Shape]) -> dict:
    if not a["gain"] and a["gamma"] != 1:
        raise AttrError("gamma", f"std_conv gamma {a['gamma']:g} scales the gain; without 'gain' the weight is "
                        "only standardised").note("write 'std_conv ... gain gamma G' (timm's ScaledStdConv2d)")
    return conv_resolve({**a, "causal": False}, ins)


def std_shape(a: dict, ins: list[Shape]) -> Shape:
    spatial(ins[0], "std_conv")
    return conv_shape(a, ins)


def std_label(a: dict, brief: bool) -> str:
    from .base import strided, window_text

    tail = strided(a["stride"]) + (f", g{a['groups']}" if a["groups"] != 1 else "") + (", gain" if a["gain"] else "")
    return f"{window_text(a['kernel'])} std_conv{'' if brief else ' ' + str(a['out'])}{tail}"


OPS = (Op("std_conv", "weight-standardised conv (each output channel's weights to mean 0, variance 1 before use; "
          "timm's StdConv2d): std_conv OUT k K s S [p P] [d D] [groups G] [bias] [eps 1e-6]; with 'gain': "
          "× gamma/√fan-in × a learnable per-channel gain (ScaledStdConv2d, NF-ResNet/NFNet)",
          ("out",),
          tuple(x for x in CONV.attrs if x.name != "causal") + (
              Attr("gain", bool, False, flag=True), Attr("gamma", NUM, 1.0, check=positive),
              Attr("eps", float, 1e-6, check=positive)),
          std_shape, lambda a, i, o: conv_params(a, i, o) + (o[0] if a["gain"] else 0), conv_macs,
          resolve=std_resolve, window=CONV.window, label=std_label,
          what=lambda a: "std_" + conv_what(a), weights="trained", fresh_output=True),)
