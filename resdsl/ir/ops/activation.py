"""Elementwise ops without weights: the activations, crelu, dropout. An activation is one entry here
(`activation=True` also makes it a value of `se act ...` / `gate ...`)."""
from __future__ import annotations

from .base import NUM, Attr, Op, probability, same_shape

# The nonlinearities of gated units unless a spec says otherwise: squeeze-and-excitation's inner
# activation and gate (`se act ... gate ...`), and a highway unit's transform gate T(x) = σ(conv x).
ACT, GATE = "relu", "sigmoid"


def act(kind: str, doc: str) -> Op:
    """A parameter-free torch.nn activation (its module: backend/builders.py)."""
    return Op(kind, doc, (), (), same_shape, activation=True)


OPS = (
    Op("relu", "rectified linear unit", (), (), same_shape, label=lambda a, brief: "ReLU",
       fold=True, needs_output=True, per_channel=True, activation=True),
    act("relu6", "min(max(x, 0), 6) (MobileNetV2)"),
    act("silu", "x·σ(x), a.k.a. swish (EfficientNet)"),
    act("gelu", "x·Φ(x), exact (ConvNeXt); `gelu_tanh` is the tanh approximation"),
    act("gelu_tanh", "GELU, tanh approximation"),
    act("hardswish", "x·relu6(x + 3)/6 (MobileNetV3)"),
    act("hardsigmoid", "relu6(x + 3)/6 (MobileNetV3's SE gate)"),
    Op("sigmoid", "logistic sigmoid", (), (), same_shape, label=lambda a, brief: "sigmoid",
       fold=True, needs_output=True, per_channel=True, activation=True),
    act("tanh", "hyperbolic tangent"),
    act("identity", "y = x (a placeholder, e.g. in a conditional)"),
    Op("leaky_relu", "max(x, slope·x): leaky_relu 0.01", ("slope",), (Attr("slope", NUM, 0.01),), same_shape),
    Op("crelu", "concatenated ReLU: [relu(x), relu(-x)], doubles the channels", (), (),
       lambda a, ins: (2 * ins[0][0], *ins[0][1:])),
    Op("neg", "negation: y = −x (with `sub`, PoolFormer's pool(x) − x; `from h; neg` negates a named tensor)",
       (), (), same_shape, label=lambda a, brief: "−x", per_channel=True),
    Op("dropout", "dropout with probability P: dropout P", ("p",), (Attr("p", NUM, check=probability),),
       same_shape, label=lambda a, brief: f"dropout {a['p']:g}", per_channel=True),
)
