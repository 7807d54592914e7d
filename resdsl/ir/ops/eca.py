"""Efficient channel attention (Wang et al. 2020, ECA-Net): x · σ(conv1d_k(avgpool(x))) across channels."""
from __future__ import annotations

import math

from .activation import GATE
from .base import NUM, Attr, AttrError, Op, OpError, Shape, positive, windowed


def eca_kernel(c: int, gamma: float, beta: float) -> int:
    """The paper's adaptive kernel ψ(C) = |(log₂ C + b) / γ|, made odd, at least 3 (timm's EcaModule)."""
    t = int(abs(math.log(c, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


def eca_resolve(a: dict, ins: list[Shape]) -> dict:
    a = {**a, "gate": str(a["gate"])}
    if a["kernel"] is None:
        return {**a, "kernel": eca_kernel(ins[0][0], a["gamma"], a["beta"])}
    if a["kernel"] % 2 == 0:
        raise AttrError("kernel", f"eca kernel {a['kernel']} is even; the paper's kernels are odd (centred on "
                        "each channel)").note("leave out 'k' for the adaptive kernel ψ(C), or give an odd one")
    return a


def eca_shape(a: dict, ins: list[Shape]) -> Shape:
    from . import activations

    if a["gate"] not in activations():
        raise OpError(f"eca gate must be one of {', '.join(activations())}, got {a['gate']}")
    windowed(ins[0], "eca")
    return ins[0]


OPS = (Op("eca", "efficient channel attention (Wang et al. 2020): x·σ(conv1d_k across the channels of avgpool(x)); "
          "eca [k K] (default: ψ(C) = |(log₂ C + β)/γ| made odd, ≥ 3) [gamma 2] [beta 1] [gate sigmoid]",
          (), (Attr("kernel", int, None, short="k", check=positive), Attr("gamma", NUM, 2, check=positive),
               Attr("beta", NUM, 1), Attr("gate", object, GATE)),
          eca_shape, lambda a, i, o: a["kernel"], lambda a, i, o: i[0][0] * a["kernel"],
          resolve=eca_resolve, window=lambda a, ins: None, label=lambda a, brief: f"ECA k{a['kernel']}",
          weights="trained"),)
