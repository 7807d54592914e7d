"""Squeeze-and-excitation (Hu et al.): x·σ(W2 relu(W1 avgpool(x)))."""
from __future__ import annotations

from .activation import ACT, GATE
from .base import NUM, Attr, Op, OpError, Shape, positive, spatial


def se_resolve(a: dict, ins: list[Shape]) -> dict:
    """Squeeze width: explicit `channels`, else C/r rounded to a multiple of `divisor` (timm's
    make_divisible); the activation and gate by name."""
    a = {**a, "act": str(a["act"]), "gate": str(a["gate"])}
    if a["channels"]:
        return a
    c, d = ins[0][0], a["divisor"]
    return {**a, "channels": max(d, int(c / a["reduction"] + d / 2) // d * d)}


def se_shape(a: dict, ins: list[Shape]) -> Shape:
    from . import activations

    for attr in ("act", "gate"):
        if a[attr] not in activations():
            raise OpError(f"se {attr} must be one of {', '.join(activations())}, got {a[attr]}")
    spatial(ins[0], "se")
    return ins[0]


def se_params(a: dict, ins: list[Shape], out: Shape) -> int:
    c, r = ins[0][0], a["channels"]
    return 2 * c * r + ((r + c) if a["bias"] else 0)


OPS = (Op("se", "squeeze-and-excitation (Hu et al.): x·σ(W2 relu(W1 avgpool(x))), "
          "se r 16 [divisor 8] [channels N] [act silu] [gate hardsigmoid]",
          (), (Attr("reduction", NUM, 16, short="r", check=positive), Attr("divisor", int, 1, check=positive),
               Attr("channels", int, None, check=positive), Attr("bias", bool, True, flag=True),
               Attr("act", object, ACT), Attr("gate", object, GATE)),
          se_shape, se_params, lambda a, i, o: 2 * i[0][0] * a["channels"], resolve=se_resolve,
          weights="trained"),)
