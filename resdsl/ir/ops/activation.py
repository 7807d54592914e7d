"""Elementwise ops without weights: relu, sigmoid, crelu, dropout. An activation is one entry here."""
from __future__ import annotations

from .base import NUM, Attr, Op, Shape, probability, same_shape


def _relu(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    return nn.ReLU(inplace=inplace)


def _sigmoid(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    return nn.Sigmoid()


def _crelu(a: dict, ins: list[Shape], inplace: bool):
    from ...backend.modules import CReLU

    return CReLU()


def _dropout(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    return nn.Dropout(a["p"])


OPS = (
    Op("relu", "rectified linear unit", (), (), same_shape, _relu, label=lambda a, brief: "ReLU",
       fold=True, needs_output=True, per_channel=True),
    Op("sigmoid", "logistic sigmoid", (), (), same_shape, _sigmoid, label=lambda a, brief: "sigmoid",
       fold=True, needs_output=True, per_channel=True),
    Op("crelu", "concatenated ReLU: [relu(x), relu(-x)], doubles the channels", (), (),
       lambda a, ins: (2 * ins[0][0], *ins[0][1:]), _crelu),
    Op("dropout", "dropout with probability P: dropout P", ("p",), (Attr("p", NUM, check=probability),),
       same_shape, _dropout, label=lambda a, brief: f"dropout {a['p']:g}", per_channel=True),
)
