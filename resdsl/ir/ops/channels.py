"""Channel plumbing without weights: shuffle, softmax over groups, slice, pad_channels."""
from __future__ import annotations

from .base import Attr, Op, OpError, Shape, channels_of, divides, spatial


def shuffle_shape(a: dict, ins: list[Shape]) -> Shape:
    divides("shuffle", a["groups"], spatial(ins[0], "shuffle")[0])
    return ins[0]


def softmax_shape(a: dict, ins: list[Shape]) -> Shape:
    divides("softmax", a["groups"], channels_of(ins[0], "softmax"))
    return ins[0]


def pad_channels_shape(a: dict, ins: list[Shape]) -> Shape:
    c = channels_of(ins[0], "pad_channels")
    if a["out"] < c:
        raise OpError(f"pad_channels cannot reduce channels from {c} to {a['out']}")
    return (a["out"], *ins[0][1:])


def slice_shape(a: dict, ins: list[Shape]) -> Shape:
    c = channels_of(ins[0], "slice")
    if not 0 <= a["start"] < a["stop"] <= c:
        raise OpError(f"slice {a['start']} {a['stop']}: needs 0 <= start < stop <= {c} (the input channels)")
    return (a["stop"] - a["start"], *ins[0][1:])


OPS = (
    Op("shuffle", "channel shuffle (ShuffleNet): shuffle G", ("groups",), (Attr("groups", int),), shuffle_shape),
    Op("softmax", "softmax across G channel groups at each position (SK-Net, ResNeSt); G = 1: over channels",
       (), (Attr("groups", int, 1, short="g"),), softmax_shape,
       label=lambda a, brief: "softmax" if a["groups"] == 1 else f"softmax across {a['groups']}"),
    Op("slice", "channels [START, STOP) of the input: slice 0 C/2 (one half of ShuffleNetV2's split)",
       ("start", "stop"), (Attr("start", int), Attr("stop", int)), slice_shape,
       label=lambda a, brief: f"channels {a['start']}:{a['stop']}"),
    Op("pad_channels", "append zero channels up to OUT, no subsampling (PyramidNet): pad_channels OUT", ("out",),
       (Attr("out", int),), pad_channels_shape),
)
