"""The torch module of each op kind: BUILDERS[kind](attrs, in_shapes, inplace) -> nn.Module.

Everything else about a kind (schema, shape, cost, drawing) is its entry in the op registry
(resdsl/ir/ops/); the registry is pure Python and knows nothing of torch, so the module each kind
builds lives here, one entry per kind, in the registry's family order. `attrs` are resolved
(ops.make); `in_shapes` are the node's input shapes from the graph (a Tokens shape for tokens);
`inplace` says an activation may overwrite its input (compile.py decides). A merge (add, concat,
mul, sub, highway: more than one input) has no entry: the container that holds it (ResidualBlock,
Branches, Dataflow in modules.py) runs it. tests/ir/test_registry.py checks that every other kind
has one.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..ir.ops import Shape, is_tokens
from ..ir.ops.base import sizes
from ..ir.ops.resample import blur_padding
from . import layers, tokens
from .layers import CausalConv1d, LayerNorm2d, LayerScale, Negate, SqueezeExcitation
from .layers_cnn import ECA, Affine, BlurPool2d, Pad, Rescale, SpaceToDepth, StdConv2d
from .modules import CReLU, FlattenLinear, ZeroPadShortcut

Builder = Callable[[dict, list[Shape], bool], nn.Module]


def build_op(kind: str, attrs: dict, ins: list[Shape], inplace: bool = False) -> nn.Module:
    """The module of one op node (a KeyError for a merge, which builds none)."""
    return BUILDERS[kind](attrs, ins, inplace)


def _torch(name: str, **kwargs) -> Builder:
    """A parameter-free torch.nn module by name (the activations)."""
    return lambda a, ins, inplace: getattr(nn, name)(**kwargs)


def _layer(name: str, *keys: str, extra=None) -> Builder:
    """A module of layers.py taking these attributes (or `extra(a, ins)`)."""
    return lambda a, ins, inplace: getattr(layers, name)(*([a[k] for k in keys] if extra is None else [extra(a, ins)]))


def _token_module(name: str, *args) -> Builder:
    """A module of tokens.py; an argument that is a function of (attrs, in_shapes) is called."""
    return lambda a, ins, inplace: getattr(tokens, name)(*[x(a, ins) if callable(x) else x for x in args])


# -- conv.py, stdconv.py --

def conv(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    rank = len(ins[0]) - 1
    if a["causal"]:
        return CausalConv1d(ins[0][0], a["out"], a["kernel"][0], a["stride"], a["dilation"], a["groups"], a["bias"])
    cls = nn.Conv1d if rank == 1 else nn.Conv2d
    return cls(ins[0][0], a["out"], sizes(a["kernel"], rank), a["stride"], sizes(a["padding"], rank), a["dilation"],
               a["groups"], a["bias"])


def fc(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    if is_tokens(ins[0]):
        return nn.Linear(ins[0][0], a["out"], bias=a["bias"])
    return FlattenLinear(ins[0][0], a["out"], bias=a["bias"])


def std_conv(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    return StdConv2d(ins[0][0], a["out"], sizes(a["kernel"], 2), a["stride"], sizes(a["padding"], 2), a["dilation"],
                     a["groups"], a["bias"], a["gain"], a["gamma"], a["eps"])


# -- norm.py --

def bn(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    cls = nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d      # 1d: a vector or a C×L sequence
    return cls(ins[0][0], eps=a["eps"], momentum=a["momentum"])


def layernorm(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    channels_last = len(ins[0]) == 1 or is_tokens(ins[0])       # tokens: (B, N, D), a grid (B, H, W, D)
    return (nn.LayerNorm if channels_last else LayerNorm2d)(ins[0][0], eps=a["eps"])


def groupnorm(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    return nn.GroupNorm(a["groups"], ins[0][0], eps=a["eps"])


def layer_scale(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    return LayerScale(ins[0][0], a["init"], spatial=0 if is_tokens(ins[0]) else len(ins[0]) - 1)


# -- pool.py --

def maxpool(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    cls = nn.MaxPool1d if len(ins[0]) == 2 else nn.MaxPool2d
    return cls(a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil"])


def avgpool(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    one = len(ins[0]) == 2
    if is_tokens(ins[0]):
        return tokens.TokenMean(prefix=ins[0].prefix)
    if a.get("size") is not None:             # lowering's own pools (avgdown) leave it out
        return (nn.AdaptiveAvgPool1d if one else nn.AdaptiveAvgPool2d)(a["size"][0] if one else a["size"])
    if a["kernel"] is None:
        return (nn.AdaptiveAvgPool1d if one else nn.AdaptiveAvgPool2d)(1)
    return (nn.AvgPool1d if one else nn.AvgPool2d)(a["kernel"], a["stride"], a["padding"], ceil_mode=a["ceil"],
                                                   count_include_pad=a["count_pad"])


# -- resize.py --

def upsample(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    size = a["size"] if a["size"] is None or len(a["size"]) == 2 else a["size"][0]
    return nn.Upsample(size=tuple(size) if isinstance(size, tuple) else size,
                       scale_factor=None if a["scale"] is None else float(a["scale"]),
                       mode="bilinear" if a["bilinear"] else "nearest",
                       align_corners=True if a["align_corners"] else (False if a["bilinear"] else None))


# -- se.py, eca.py: the activation and gate built from their own entries --

def se(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    """torchvision's SqueezeExcitation."""
    act, gate = (build_op(a[k], {}, [(a["channels"], 1, 1)]) for k in ("act", "gate"))
    return SqueezeExcitation(ins[0][0], a["channels"], act, gate, a["bias"])


def eca(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    return ECA(a["kernel"], build_op(a["gate"], {}, [(1, ins[0][0])]))


# -- tokens.py --

def learned_tokens(a: dict, ins: list[Shape], inplace: bool) -> nn.Module:
    return tokens.LearnedTokens(ins[0][0], a.get("count", 1), ins[0].prefix, a["std"])


BUILDERS: dict[str, Builder] = {
    # conv.py, stdconv.py
    "conv": conv,
    "fc": fc,
    "std_conv": std_conv,
    # norm.py
    "bn": bn,
    "layernorm": layernorm,
    "groupnorm": groupnorm,
    "layer_scale": layer_scale,
    # activation.py
    "relu": lambda a, ins, inplace: nn.ReLU(inplace=inplace),
    "relu6": _torch("ReLU6"),
    "silu": _torch("SiLU"),
    "gelu": _torch("GELU"),
    "gelu_tanh": _torch("GELU", approximate="tanh"),
    "hardswish": _torch("Hardswish"),
    "hardsigmoid": _torch("Hardsigmoid"),
    "sigmoid": _torch("Sigmoid"),
    "tanh": _torch("Tanh"),
    "identity": _torch("Identity"),
    "leaky_relu": lambda a, ins, inplace: nn.LeakyReLU(a["slope"]),
    "crelu": lambda a, ins, inplace: CReLU(),
    "neg": lambda a, ins, inplace: Negate(),
    "dropout": lambda a, ins, inplace: nn.Dropout(a["p"]),
    # scalar.py
    "rescale": lambda a, ins, inplace: Rescale(a["factor"]),
    "affine": lambda a, ins, inplace: Affine(a["scale"], a["bias"]),
    # channels.py
    "shuffle": _layer("ChannelShuffle", "groups"),
    "softmax": _layer("GroupSoftmax", "groups"),
    "slice": _layer("ChannelSlice", "start", "stop"),
    "pad_channels": _layer("ZeroPadChannels", extra=lambda a, ins: a["out"] - ins[0][0]),
    # pool.py
    "maxpool": maxpool,
    "avgpool": avgpool,
    # resample.py
    "blurpool": lambda a, ins, inplace: BlurPool2d(ins[0][0], a["kernel"], a["stride"],
                                                   blur_padding(a["kernel"], a["stride"])),
    "space_to_depth": lambda a, ins, inplace: SpaceToDepth(a["block"]),
    "pad": lambda a, ins, inplace: Pad(a["sides"]),
    # resize.py
    "upsample": upsample,
    "flatten": lambda a, ins, inplace: nn.Flatten(1),
    # se.py, eca.py
    "se": se,
    "eca": eca,
    # tokens.py
    "tokens": lambda a, ins, inplace: tokens.ToTokens(is_tokens(ins[0])),
    "to_map": _token_module("ToMap", lambda a, i: sizes(a["size"], 2)[0], lambda a, i: sizes(a["size"], 2)[1]),
    "transpose": _token_module("Transpose"),
    "channels_last": _token_module("Permute", (0, 2, 3, 1)),
    "channels_first": _token_module("Permute", (0, 3, 1, 2)),
    "class_token": learned_tokens,
    "dist_token": learned_tokens,
    "register_tokens": learned_tokens,
    "pos_embed": lambda a, ins, inplace: tokens.PositionEmbedding(ins[0][1], ins[0][0], a["std"]),
    "token": _token_module("TakeToken", lambda a, i: a["index"]),
    "patch_merge": _token_module("PatchMerge"),
    # attention.py
    "attention": lambda a, ins, inplace: tokens.Attention(
        ins[0][0], a["heads"], a["qkv_bias"], a["proj_bias"], a["attn_drop"], a["proj_drop"], a["window"], a["shift"],
        a["position"], a["cosine"], a["cpb_hidden"], a["grid"], a["scale"]),
    # merge.py: the one merge-family kind that is a module (a shortcut, one input)
    "zeropad": lambda a, ins, inplace: ZeroPadShortcut(a["stride"], a["out"] - ins[0][0]),
}
