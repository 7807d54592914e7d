"""Elementwise ops without weights: the activations, crelu, dropout. An activation is one entry here
(`activation=True` also makes it a value of `se act ...` / `gate ...`)."""
from __future__ import annotations

from .base import NUM, Attr, Op, Shape, probability, same_shape

# The nonlinearities of gated units unless a spec says otherwise: squeeze-and-excitation's inner
# activation and gate (`se act ... gate ...`), and a highway unit's transform gate T(x) = σ(conv x).
ACT, GATE = "relu", "sigmoid"


def torch_module(name: str, **kwargs):
    """A builder for a parameter-free torch.nn module, created when the model is compiled."""
    def build(a: dict, ins: list[Shape], inplace: bool):
        from torch import nn

        return getattr(nn, name)(**kwargs)
    return build


def _relu(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    return nn.ReLU(inplace=inplace)


_sigmoid = torch_module("Sigmoid")


def _crelu(a: dict, ins: list[Shape], inplace: bool):
    from ...backend.modules import CReLU

    return CReLU()


def _leaky_relu(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    return nn.LeakyReLU(a["slope"])


def _dropout(a: dict, ins: list[Shape], inplace: bool):
    from torch import nn

    return nn.Dropout(a["p"])


def _neg(a: dict, ins: list[Shape], inplace: bool):
    from ...backend.layers import Negate

    return Negate()


def act(kind: str, doc: str, module: str, **kwargs) -> Op:
    return Op(kind, doc, (), (), same_shape, torch_module(module, **kwargs), activation=True)


OPS = (
    Op("relu", "rectified linear unit", (), (), same_shape, _relu, label=lambda a, brief: "ReLU",
       fold=True, needs_output=True, per_channel=True, activation=True),
    act("relu6", "min(max(x, 0), 6) (MobileNetV2)", "ReLU6"),
    act("silu", "x·σ(x), a.k.a. swish (EfficientNet)", "SiLU"),
    act("gelu", "x·Φ(x), exact (ConvNeXt); `gelu_tanh` is the tanh approximation", "GELU"),
    act("gelu_tanh", "GELU, tanh approximation", "GELU", approximate="tanh"),
    act("hardswish", "x·relu6(x + 3)/6 (MobileNetV3)", "Hardswish"),
    act("hardsigmoid", "relu6(x + 3)/6 (MobileNetV3's SE gate)", "Hardsigmoid"),
    Op("sigmoid", "logistic sigmoid", (), (), same_shape, _sigmoid, label=lambda a, brief: "sigmoid",
       fold=True, needs_output=True, per_channel=True, activation=True),
    act("tanh", "hyperbolic tangent", "Tanh"),
    act("identity", "y = x (a placeholder, e.g. in a conditional)", "Identity"),
    Op("leaky_relu", "max(x, slope·x): leaky_relu 0.01", ("slope",), (Attr("slope", NUM, 0.01),), same_shape,
       _leaky_relu),
    Op("crelu", "concatenated ReLU: [relu(x), relu(-x)], doubles the channels", (), (),
       lambda a, ins: (2 * ins[0][0], *ins[0][1:]), _crelu),
    Op("neg", "negation: y = −x (with `sub`, PoolFormer's pool(x) − x; `from h; neg` negates a named tensor)",
       (), (), same_shape, _neg, label=lambda a, brief: "−x", per_channel=True),
    Op("dropout", "dropout with probability P: dropout P", ("p",), (Attr("p", NUM, check=probability),),
       same_shape, _dropout, label=lambda a, brief: f"dropout {a['p']:g}", per_channel=True),
)
