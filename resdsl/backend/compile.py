"""compile_net(net, g) -> Network: one nn.Module per op, named as in the net (see ir/net.py)."""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable

import networkx as nx
from torch import nn

from ..errors import SpecError
from ..ir import ops
from ..ir.net import Block, Item, Layer, Net, Parallel, Section
from ..ir.shapes import totals
from . import layers
from .init import apply_init
from .modules import (Branches, CReLU, FlattenLinear, Network, ResidualBlock, Stage,
                      ZeroPadShortcut)

# Layers after which a ReLU may not run in place (their backward needs their output).
_NEEDS_OUTPUT = {"relu", "sigmoid"}


def _conv(a: dict, c_in: int, shape) -> nn.Module:
    return nn.Conv2d(c_in, a["out"], ops.pair(a["kernel"]), a["stride"], ops.conv_padding(a), a["dilation"],
                     a["groups"], a["bias"])


def _bn(a: dict, c_in: int, shape) -> nn.Module:
    cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return cls(c_in, eps=a["eps"], momentum=a["momentum"])


def _maxpool(a: dict, c_in: int, shape) -> nn.Module:
    pad = a["padding"] if a["padding"] is not None else (a["kernel"] - 1) // 2
    return nn.MaxPool2d(a["kernel"], a["stride"] or a["kernel"], pad, ceil_mode=a["ceil"])


def _avgpool(a: dict, c_in: int, shape) -> nn.Module:
    if a["kernel"] is None:
        return nn.AdaptiveAvgPool2d(1)
    return nn.AvgPool2d(a["kernel"], a["stride"] or a["kernel"], a["padding"] or 0,
                        ceil_mode=a["ceil"], count_include_pad=a["count_pad"])


BUILDERS: dict[str, Callable[[dict, int, tuple], nn.Module]] = {
    "conv": _conv,
    "bn": _bn,
    "relu": lambda a, c, s: nn.ReLU(),
    "sigmoid": lambda a, c, s: nn.Sigmoid(),
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "fc": lambda a, c, s: FlattenLinear(c, a["out"], bias=a["bias"]),
    "dropout": lambda a, c, s: nn.Dropout(a["p"]),
    "zeropad": lambda a, c, s: ZeroPadShortcut(a["stride"], a["out"] - c),
    "crelu": lambda a, c, s: CReLU(),
    # the vocabulary after ResNet (ir/ops.py VOCABULARY)
    **{k: (lambda k: lambda a, c, s: layers.ACTIVATIONS[k]())(k) for k in ops.ACTIVATIONS if k not in ("relu", "sigmoid")},
    "leaky_relu": lambda a, c, s: nn.LeakyReLU(a["slope"]),
    "layernorm": lambda a, c, s: (layers.LayerNorm2d if len(s) == 3 else nn.LayerNorm)(c, eps=a["eps"]),
    "groupnorm": lambda a, c, s: nn.GroupNorm(a["groups"], c, eps=a["eps"]),
    "layer_scale": lambda a, c, s: layers.LayerScale(c, a["init"], spatial=len(s) == 3),
    "shuffle": lambda a, c, s: layers.ChannelShuffle(a["groups"]),
    "softmax": lambda a, c, s: layers.GroupSoftmax(a["groups"]),
    "pad_channels": lambda a, c, s: layers.ZeroPadChannels(a["out"] - c),
    "slice": lambda a, c, s: layers.ChannelSlice(a["start"], a["stop"]),
    "se": lambda a, c, s: layers.SqueezeExcitation(c, ops.se_channels(a, c), str(a["act"]), str(a["gate"]), a["bias"]),
}


class Compiler:
    def __init__(self, g: nx.DiGraph):
        self.g = g
        self.gate_biases: list[tuple[nn.Parameter, float]] = []   # set after init_weights

    def in_shape(self, name: str) -> tuple:
        return self.g.nodes[name]["in_shapes"][0]

    def layer(self, it: Layer) -> nn.Module:
        shape = self.in_shape(it.name)
        return BUILDERS[it.kind](it.attrs, shape[0], shape)

    def seq(self, items: tuple[Item, ...], owns_input: bool = False) -> nn.Sequential:
        """Layers in order; a ReLU runs in place unless it would overwrite a tensor someone else reads."""
        mods: OrderedDict[str, nn.Module] = OrderedDict()
        prev = None
        for i, it in enumerate(items):
            local = it.name.rsplit(".", 1)[-1]
            if isinstance(it, Layer):
                m = self.layer(it)
                if isinstance(m, nn.ReLU):
                    m.inplace = (i > 0 or owns_input) and prev not in _NEEDS_OUTPUT
                prev = it.kind
            elif isinstance(it, Parallel):
                m = Branches([self.seq(br) for br in it.branches], it.mode)
                prev = "merge"
            else:
                m = self.block(it)
                prev = "block"
            mods[local] = m
        return nn.Sequential(mods)

    def block(self, b: Block) -> ResidualBlock:
        sc = b.shortcut
        last = b.residuals[0][-1] if b.residuals[0] else None
        fresh = isinstance(last, Layer) and last.kind in ("conv", "bn")
        gate = None
        if b.gate:
            gate = self.seq(b.gate)
            self.gate_biases.append((gate.conv1.bias, b.gate_bias))
        return ResidualBlock(
            pre=self.seq(b.pre) if b.pre else None,
            residuals=[self.seq(r) for r in b.residuals],
            shortcut=self.seq(sc.layers) if sc.layers else None,
            shortcut_kind=sc.kind,
            shortcut_from_pre=sc.source == "pre",
            scale=b.scale,
            post=self.seq(b.post, owns_input=True) if b.post else None,
            add_inplace=fresh or b.scale != 1.0 or len(b.residuals) > 1,
            combine=b.combine, gate=gate, drop_prob=b.drop_prob, drop_mode=b.drop_mode,
        )

    def stage(self, blocks: tuple[Block, ...]) -> Stage:
        """Blocks in order; a block that `shares` uses the very modules of the one it names."""
        mods = {b.name: self.block(b) for b in blocks}
        for b in blocks:
            if b.shares is not None:
                tie(mods[b.shares], mods[b.name], b.share_bn)
        return Stage(list(mods.values()))

    def network(self, net: Net) -> Network:
        stem, head, body = nn.Sequential(), nn.Sequential(), []
        for part in net.body:
            if isinstance(part, Section) and part.role == "stem":
                stem = self.seq(part.items)
            elif isinstance(part, Section) and part.role == "head":
                head = self.seq(part.items)
            elif isinstance(part, Section):
                body.append(("transition", self.seq(part.items)))
            else:
                body.append(("stage", self.stage(part.blocks)))
        out = self.g.nodes[self.g.graph["output"]]["out_shape"]
        model = Network(net.name, net.input_shape, out[0], stem, body, head)
        init_weights(model)
        for bias, value in self.gate_biases:      # highway gate biases come from the spec
            nn.init.constant_(bias, value)
        apply_init(model, net.init)
        return model


def tie(src: nn.Module, dst: nn.Module, share_bn: bool) -> None:
    """Make dst's weighted layers the very modules of src (BN too unless one BN per step)."""
    for name, m in list(dst.named_modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)) or (share_bn and isinstance(m, nn.modules.batchnorm._BatchNorm)):
            parent, _, leaf = name.rpartition(".")
            setattr(dst.get_submodule(parent) if parent else dst, leaf, src.get_submodule(name))


def init_weights(model: nn.Module) -> None:
    """torchvision's ResNet initialisation: He-normal (fan_out) convs, BN γ=1 β=0, default Linear."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def check_size(net: Net, g: nx.DiGraph, force: bool) -> None:
    """Refuse, before allocating, a network whose fp32 parameters need over half the machine's memory."""
    params, _ = totals(g)
    need, have = params * 4, physical_memory()
    if need > have // 2 and not force:
        raise SpecError(f"network '{net.name}' has {params:,} parameters ({need / 2**30:.1f} GiB in fp32), "
                        f"more than half this machine's memory ({have / 2**30:.1f} GiB)", net.span).with_note(
            "pass --force (or force=True) to build it anyway")


def compile_net(net: Net, g: nx.DiGraph, force: bool = False) -> Network:
    check_size(net, g, force)
    return Compiler(g).network(net)
