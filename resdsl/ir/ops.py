"""The closed set of primitive ops: their attributes, output shape, parameter count and MACs.

This is the one cost implementation: lowering, shape inference, `check`, `profile` and `render`
all read these functions (through the annotated graph). Shapes are tuples (C, H, W) or (C,).
MACs count multiply-accumulates of conv and fc (the convention of torchvision's published
figures); elementwise ops count 0 MACs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

Shape = tuple[int, ...]


class OpError(Exception):
    """A short fact about an op's inputs; the caller adds the source span."""


@dataclass(frozen=True)
class Attr:
    name: str
    type: type | tuple[type, ...]
    default: Any = None          # None: required (positional) or derived
    short: str | None = None     # `k7` short form
    flag: bool = False           # `bias` alone means true


@dataclass(frozen=True)
class Op:
    kind: str
    doc: str
    positional: tuple[str, ...]
    attrs: tuple[Attr, ...]
    shape: Callable[[dict, list[Shape]], Shape]
    params: Callable[[dict, list[Shape], Shape], int] = lambda a, i, o: 0
    macs: Callable[[dict, list[Shape], Shape], int] = lambda a, i, o: 0
    n_inputs: int = 1            # -1: any number >= 1
    user: bool = True            # written in specs (vs. produced by lowering)
    aliases: dict[str, str] = field(default_factory=dict)

    def attr(self, name: str) -> Attr | None:
        return next((a for a in self.attrs if a.name == name), None)


def _spatial(shape: Shape, what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise OpError(f"{what} needs a C×H×W input, got {fmt(shape)}")
    return shape  # type: ignore[return-value]


def _window(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    span = d * (k - 1) + 1
    num = size + 2 * p - span
    if num < 0:
        return 0
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p:   # PyTorch: last window must start inside the input
        out -= 1
    return out


# How an attribute is named in messages, where its short name would not say what it is.
WORDS = {"out": "the number of output channels"}


def _positive(attrs: dict, *names: str) -> None:
    for n in names:
        v = attrs.get(n)
        if v is not None and v <= 0:
            raise OpError(f"{WORDS.get(n, n)} must be positive, got {v}")


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    """A size given as one int (square) or as (height, width)."""
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def conv_padding(a: dict) -> tuple[int, int]:
    """Explicit padding, else 'same' for stride 1: (k − 1)/2 · dilation per dimension."""
    if a["padding"] is not None:
        return pair(a["padding"])
    return tuple((k - 1) // 2 * a["dilation"] for k in pair(a["kernel"]))  # type: ignore[return-value]


def conv_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = _spatial(ins[0], "conv")
    _positive(a, "out", "stride", "dilation", "groups")
    if min(pair(a["kernel"])) <= 0:
        raise OpError(f"kernel must be positive, got {a['kernel']}")
    if a["padding"] is not None and min(pair(a["padding"])) < 0:
        raise OpError(f"padding must be >= 0, got {a['padding']}")
    g = a["groups"]
    if c % g or a["out"] % g:
        raise OpError(f"groups {g} must divide input channels {c} and output channels {a['out']}")
    p = conv_padding(a)
    k = pair(a["kernel"])
    oh, ow = (_window(x, kx, a["stride"], px, a["dilation"]) for x, kx, px in zip((h, w), k, p))
    if oh < 1 or ow < 1:
        raise OpError(f"feature map {h}×{w} shrinks below 1×1 (kernel {fmt(k)}, stride {a['stride']}, "
                      f"padding {fmt(p)})")
    return (a["out"], oh, ow)


def conv_params(a: dict, ins: list[Shape], out: Shape) -> int:
    return out[0] * (ins[0][0] // a["groups"]) * math.prod(pair(a["kernel"])) + (out[0] if a["bias"] else 0)


def conv_macs(a: dict, ins: list[Shape], out: Shape) -> int:
    return math.prod(out) * (ins[0][0] // a["groups"]) * math.prod(pair(a["kernel"]))


def pool_shape(kind: str) -> Callable[[dict, list[Shape]], Shape]:
    def shape(a: dict, ins: list[Shape]) -> Shape:
        c, h, w = _spatial(ins[0], kind)
        if a.get("kernel") is None:            # global pooling
            return (c, 1, 1)
        _positive(a, "kernel", "stride")
        k, s = a["kernel"], a["stride"] or a["kernel"]
        p = a["padding"] if a["padding"] is not None else ((k - 1) // 2 if kind == "maxpool" else 0)
        if p > k // 2:
            raise OpError(f"padding {p} must be at most half the kernel {k}")
        oh, ow = (_window(x, k, s, p, 1, a["ceil"]) for x in (h, w))
        if oh < 1 or ow < 1:
            raise OpError(f"feature map {h}×{w} shrinks below 1×1 ({kind} kernel {k}, stride {s})")
        return (c, oh, ow)
    return shape


def same_shape(a: dict, ins: list[Shape]) -> Shape:
    return ins[0]


def bn_shape(a: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) not in (1, 3):
        raise OpError(f"bn needs a C or C×H×W input, got {fmt(ins[0])}")
    return ins[0]


def fc_shape(a: dict, ins: list[Shape]) -> Shape:
    _positive(a, "out")
    if len(ins[0]) == 3 and ins[0][1:] != (1, 1):
        raise OpError(f"fc needs a vector or C×1×1 input, got {fmt(ins[0])}; add a global 'avgpool' first")
    return (a["out"],)


def add_shape(a: dict, ins: list[Shape]) -> Shape:
    if any(s != ins[0] for s in ins[1:]):
        raise OpError("cannot add tensors of shapes " + " and ".join(fmt(s) for s in ins))
    return ins[0]


def concat_shape(a: dict, ins: list[Shape]) -> Shape:
    if any(len(s) != len(ins[0]) or s[1:] != ins[0][1:] for s in ins[1:]):
        raise OpError("cannot concatenate tensors of shapes " + " and ".join(fmt(s) for s in ins)
                      + " (spatial sizes differ)")
    return (sum(s[0] for s in ins), *ins[0][1:])


def zeropad_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = _spatial(ins[0], "zeropad")
    if a["out"] < c:
        raise OpError(f"zero-padding shortcut cannot reduce channels from {c} to {a['out']}")
    s = a["stride"]
    return (a["out"], -(-h // s), -(-w // s))


def se_channels(a: dict, c: int) -> int:
    """Squeeze width: explicit `channels`, else C/r rounded to a multiple of `divisor` (timm's make_divisible)."""
    if a.get("channels"):
        return a["channels"]
    d = a["divisor"]
    return max(d, int(c / a["reduction"] + d / 2) // d * d)


def se_shape(a: dict, ins: list[Shape]) -> Shape:
    _spatial(ins[0], "se")
    _positive(a, "reduction", "divisor", "channels")
    return ins[0]


def se_params(a: dict, ins: list[Shape], out: Shape) -> int:
    c, r = ins[0][0], se_channels(a, ins[0][0])
    return 2 * c * r + ((r + c) if a["bias"] else 0)


def crelu_shape(a: dict, ins: list[Shape]) -> Shape:
    return (2 * ins[0][0], *ins[0][1:])


def _dropout_shape(a: dict, ins: list[Shape]) -> Shape:
    if not 0 <= a["p"] < 1:
        raise OpError(f"dropout probability must be in [0, 1), got {a['p']}")
    return ins[0]


NUM = (int, float)
SIZE = "size"        # attribute type: an int, or [height, width] (written 1x7 or [1, 7])
OPS: dict[str, Op] = {op.kind: op for op in [
    Op("conv", "2-D convolution: conv OUT k K s S [p P] [d D] [groups G] [bias]; K and P may be HxW (k 1x7 p 0x3)",
       ("out",),
       (Attr("out", int), Attr("kernel", SIZE, 1, short="k"), Attr("stride", int, 1, short="s"),
        Attr("padding", SIZE, None, short="p"), Attr("dilation", int, 1, short="d"),
        Attr("groups", int, 1, short="g"), Attr("bias", bool, False, flag=True)),
       conv_shape, conv_params, conv_macs),
    Op("bn", "batch normalisation (affine, running statistics)", (),
       (Attr("eps", float, 1e-5), Attr("momentum", float, 0.1)),
       bn_shape, lambda a, i, o: 2 * o[0]),
    Op("relu", "rectified linear unit", (), (), same_shape),
    Op("sigmoid", "logistic sigmoid", (), (), same_shape),
    Op("maxpool", "max pooling: maxpool k K s S [p P] [ceil]", (),
       (Attr("kernel", int, 3, short="k"), Attr("stride", int, None, short="s"),
        Attr("padding", int, None, short="p"), Attr("ceil", bool, False, flag=True)),
       pool_shape("maxpool")),
    Op("avgpool", "average pooling: global without a kernel, else avgpool k K s S", (),
       (Attr("kernel", int, None, short="k"), Attr("stride", int, None, short="s"),
        Attr("padding", int, None, short="p"), Attr("ceil", bool, False, flag=True),
        Attr("count_pad", bool, True)),
       pool_shape("avgpool")),
    Op("fc", "fully connected layer on a vector or C×1×1 map: fc OUT [bias false]", ("out",),
       (Attr("out", int), Attr("bias", bool, True, flag=True)),
       fc_shape, lambda a, i, o: i[0][0] * o[0] + (o[0] if a["bias"] else 0),
       lambda a, i, o: i[0][0] * o[0]),
    Op("dropout", "dropout with probability P: dropout P", ("p",), (Attr("p", NUM),), _dropout_shape),
    Op("se", "squeeze-and-excitation (Hu et al.): x·σ(W2 relu(W1 avgpool(x))), se r 16 [divisor 8] [channels N]",
       (), (Attr("reduction", NUM, 16, short="r"), Attr("divisor", int, 1), Attr("channels", int, None),
            Attr("bias", bool, True, flag=True)),
       se_shape, se_params, lambda a, i, o: 2 * i[0][0] * se_channels(a, i[0][0])),
    Op("crelu", "concatenated ReLU: [relu(x), relu(-x)], doubles the channels", (), (), crelu_shape),
    Op("add", "sum of residual branches (times scale) and a shortcut; drop_prob: stochastic depth", (),
       (Attr("scale", NUM, 1.0), Attr("drop_prob", NUM, 0.0), Attr("drop_mode", str, "batch")),
       add_shape, n_inputs=-1, user=False),
    Op("highway", "gated merge: h·t + x·(1 − t) of (h, x, t)", (), (), add_shape, n_inputs=3, user=False),
    Op("concat", "channel concatenation", (), (), concat_shape, n_inputs=-1, user=False),
    Op("zeropad", "option-A shortcut: subsample by stride, pad channels with zeros", (),
       (Attr("out", int), Attr("stride", int, 1)), zeropad_shape, user=False),
]}


# ---- the vocabulary after ResNet (MobileNet, EfficientNet, ConvNeXt, ShuffleNet, ...) ----

ACTIVATIONS = ("relu", "relu6", "silu", "gelu", "gelu_tanh", "hardswish", "hardsigmoid", "sigmoid",
               "tanh", "identity")


def _channels(shape: Shape, what: str) -> int:
    if len(shape) not in (1, 3):
        raise OpError(f"{what} needs a C or C×H×W input, got {fmt(shape)}")
    return shape[0]


def _divides(what: str, groups: int, c: int) -> None:
    if groups <= 0 or c % groups:
        raise OpError(f"{what}: {groups} groups must divide the {c} channels")


def groupnorm_shape(a: dict, ins: list[Shape]) -> Shape:
    _divides("groupnorm", a["groups"], _channels(ins[0], "groupnorm"))
    return ins[0]


def shuffle_shape(a: dict, ins: list[Shape]) -> Shape:
    _divides("shuffle", a["groups"], _spatial(ins[0], "shuffle")[0])
    return ins[0]


def softmax_shape(a: dict, ins: list[Shape]) -> Shape:
    _divides("softmax", a["groups"], _channels(ins[0], "softmax"))
    return ins[0]


def pad_channels_shape(a: dict, ins: list[Shape]) -> Shape:
    c = _channels(ins[0], "pad_channels")
    if a["out"] < c:
        raise OpError(f"pad_channels cannot reduce channels from {c} to {a['out']}")
    return (a["out"], *ins[0][1:])


def slice_shape(a: dict, ins: list[Shape]) -> Shape:
    c = _channels(ins[0], "slice")
    if not 0 <= a["start"] < a["stop"] <= c:
        raise OpError(f"slice {a['start']} {a['stop']}: needs 0 <= start < stop <= {c} (the input channels)")
    return (a["stop"] - a["start"], *ins[0][1:])


def se_check(a: dict, ins: list[Shape]) -> Shape:
    for attr in ("act", "gate"):
        if str(a[attr]) not in ACTIVATIONS:
            raise OpError(f"se {attr} must be one of {', '.join(ACTIVATIONS)}, got {a[attr]}")
    return se_shape(a, ins)


def _act(kind: str, doc: str, attrs: tuple = ()) -> Op:
    return Op(kind, doc, tuple(x.name for x in attrs), attrs, same_shape)


VOCABULARY = [
    _act("relu6", "min(max(x, 0), 6) (MobileNetV2)"),
    _act("silu", "x·σ(x), a.k.a. swish (EfficientNet)"),
    _act("gelu", "x·Φ(x), exact (ConvNeXt); `gelu_tanh` is the tanh approximation"),
    _act("gelu_tanh", "GELU, tanh approximation"),
    _act("hardswish", "x·relu6(x + 3)/6 (MobileNetV3)"),
    _act("hardsigmoid", "relu6(x + 3)/6 (MobileNetV3's SE gate)"),
    _act("tanh", "hyperbolic tangent"),
    _act("identity", "y = x (a placeholder, e.g. in a conditional)"),
    Op("leaky_relu", "max(x, slope·x): leaky_relu 0.01", ("slope",), (Attr("slope", NUM, 0.01),), same_shape),
    Op("layernorm", "layer norm over the channels of each position (C×H×W, ConvNeXt) or of a vector: layernorm [eps 1e-6]",
       (), (Attr("eps", float, 1e-5),), lambda a, i: (_channels(i[0], "layernorm"), *i[0][1:]),
       lambda a, i, o: 2 * o[0]),
    Op("groupnorm", "group norm (Wu & He 2018): groupnorm G [eps 1e-5]", ("groups",),
       (Attr("groups", int), Attr("eps", float, 1e-5)), groupnorm_shape, lambda a, i, o: 2 * o[0]),
    Op("layer_scale", "learnable per-channel scale γ ⊙ x, γ initialised to INIT (CaiT, ConvNeXt): layer_scale 1e-6",
       ("init",), (Attr("init", NUM),), lambda a, i: (_channels(i[0], "layer_scale"), *i[0][1:]),
       lambda a, i, o: o[0]),
    Op("shuffle", "channel shuffle (ShuffleNet): shuffle G", ("groups",), (Attr("groups", int),), shuffle_shape),
    Op("softmax", "softmax across G channel groups at each position (SK-Net, ResNeSt); G = 1: over channels",
       (), (Attr("groups", int, 1, short="g"),), softmax_shape),
    Op("slice", "channels [START, STOP) of the input: slice 0 C/2 (one half of ShuffleNetV2's split)",
       ("start", "stop"), (Attr("start", int), Attr("stop", int)), slice_shape),
    Op("pad_channels", "append zero channels up to OUT, no subsampling (PyramidNet): pad_channels OUT", ("out",),
       (Attr("out", int),), pad_channels_shape),
]
OPS.update({op.kind: op for op in VOCABULARY})
# `se` chooses its inner activation and gate (torchvision: ReLU/σ for SE-Net and RegNet, SiLU/σ for
# EfficientNet, ReLU/hardsigmoid for MobileNetV3).
OPS["se"] = Op("se", OPS["se"].doc.replace("se r 16", "se r 16 [act silu] [gate hardsigmoid]"), (),
               OPS["se"].attrs + (Attr("act", object, "relu"), Attr("gate", object, "sigmoid")),
               se_check, se_params, OPS["se"].macs)


def fmt(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


def infer(kind: str, attrs: dict, ins: list[Shape]) -> Shape:
    return OPS[kind].shape(attrs, ins)


def cost(kind: str, attrs: dict, ins: list[Shape], out: Shape) -> tuple[int, int]:
    op = OPS[kind]
    return op.params(attrs, ins, out), op.macs(attrs, ins, out)
