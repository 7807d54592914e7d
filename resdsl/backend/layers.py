"""Torch modules of the vocabulary after ResNet: channel-first layer norm, layer scale, channel
shuffle and split, gating, softmax across branches, zero-padded channels, configurable SE."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of each position of a C×H×W map (ConvNeXt's channels-first LN),
    or of a C×L sequence."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x.dim() - 1              # positive dims: ONNX's Transpose takes no negative perm
        x = x.movedim(1, last)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(last, 1)


class CausalConv1d(nn.Conv1d):
    """A 1-D conv that sees only the past (WaveNet, van den Oord et al. 2016): (k − 1)·d zeros on
    the left, none on the right, so output t reads inputs t − (k − 1)·d .. t. Parameters are
    nn.Conv1d's (`weight`, `bias`), so state_dict keys are those of any conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, dilation: int, groups: int,
                 bias: bool):
        super().__init__(in_channels, out_channels, kernel, stride, 0, dilation, groups, bias)
        self.left = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", causal (left pad {self.left})"


class LayerScale(nn.Module):
    """Learnable per-channel scale (Touvron et al. 2021, CaiT; ConvNeXt): y = γ ⊙ x, γ initialised to `init`."""

    def __init__(self, channels: int, init: float, spatial: int = 2):
        super().__init__()
        shape = (channels,) + (1,) * spatial          # spatial: the input's spatial rank (0: a vector)
        self.init = float(init)                        # the spec's value (γ itself changes with training)
        self.layer_scale = nn.Parameter(torch.full(shape, float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_scale * x


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: (g, C/g) channel groups transposed to (C/g, g)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *rest = x.shape
        x = x.view(b, self.groups, c // self.groups, *rest).transpose(1, 2).contiguous()
        return x.view(b, c, *rest)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class ChannelSlice(nn.Module):
    """Channels [start, stop) of the input: one part of `split`."""

    def __init__(self, start: int, stop: int):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.stop]

    def extra_repr(self) -> str:
        return f"channels {self.start}:{self.stop}"


class GroupSoftmax(nn.Module):
    """Softmax across G channel groups at each position (SK-Net, ResNeSt): G = 1 is over all channels."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *rest = x.shape
        if self.groups == 1:
            return x.softmax(1)
        return x.view(b, self.groups, c // self.groups, *rest).softmax(1).view(b, c, *rest)


class ZeroPadChannels(nn.Module):
    """Append zero channels up to `out` (PyramidNet's shortcut, without subsampling)."""

    def __init__(self, extra: int):
        super().__init__()
        self.extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = [0, 0] * (x.dim() - 2) + [0, self.extra]
        return F.pad(x, pad)


class Negate(nn.Module):
    """y = −x (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -x


class Multiply(nn.Module):
    """Elementwise product of its inputs, broadcast (a C×1×1 gate times a C×H×W map)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class SqueezeExcitation(nn.Module):
    """x · gate(fc2(act(fc1(mean_hw(x))))), fcs as 1×1 convs — torchvision's SqueezeExcitation with
    its activation and gate chosen (ReLU/sigmoid: SE-Net, RegNet; SiLU/sigmoid: EfficientNet;
    ReLU/hardsigmoid: MobileNetV3), both given as modules (built from their registry entries)."""

    def __init__(self, channels: int, reduced: int, act: nn.Module, gate: nn.Module, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=bias)
        self.act = act
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=bias)
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))
