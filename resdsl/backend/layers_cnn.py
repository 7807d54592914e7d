"""Runtime modules of the CNN vocabulary of issue 24 (each the module of one registry entry, exact
against the timm module named in its docstring): ECA, weight-standardised conv, constant and
learnable scalar scaling, blur pooling, space-to-depth and explicit padding. Each writes its own
constructor for `compile -o model.py` (`source_ctor`; emit.py copies the class by its source), so
these classes import nothing beyond torch, nn and F."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ECA(nn.Module):
    """Efficient channel attention (Wang et al. 2020; timm's EcaModule): global average pool, a 1-D
    conv of kernel k across the channels, a gate, and the input scaled channel by channel."""

    def __init__(self, kernel: int, gate: nn.Module):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2, bias=False)
        self.gate = gate

    def source_ctor(self, sub) -> str:
        return f"ECA({self.conv.kernel_size[0]}, {sub(self.gate, 'gate')})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, spatial = x.shape[0], x.dim() - 2
        y = x.mean(tuple(range(2, x.dim()))).view(n, 1, -1)
        return x * self.gate(self.conv(y)).view(n, -1, *(1,) * spatial)


class StdConv2d(nn.modules.conv._ConvNd):
    """A conv whose weight is standardised per output channel before use (Qiao et al. 2019; timm's
    StdConv2d); with `gain`, scaled by gamma/√fan-in and a learnable per-channel gain (Brock et al.
    2021; timm's ScaledStdConv2d). A conv by its weights (transfer_weights pairs it with timm's), but
    not an nn.Conv2d: `fuse` must not fold a BN or a scale into weights that are standardised again."""

    def __init__(self, cin: int, cout: int, kernel, stride, padding, dilation, groups, bias: bool,
                 gain: bool, gamma: float, eps: float):
        two = nn.modules.utils._pair
        super().__init__(cin, cout, two(kernel), two(stride), two(padding), two(dilation), False, two(0), groups,
                         bias, "zeros")
        self.eps, self.gamma = eps, gamma
        if gain:
            self.gain = nn.Parameter(torch.ones(cout, 1, 1, 1))
            self.scale = gamma * self.weight[0].numel() ** -0.5
        else:
            self.register_parameter("gain", None)

    def source_ctor(self, sub) -> str:
        return (f"StdConv2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, {self.stride}, {self.padding}, "
                f"{self.dilation}, {self.groups}, {self.bias is not None}, {self.gain is not None}, {self.gamma!r}, "
                f"{self.eps!r})")

    def standardised(self) -> torch.Tensor:
        scale = None if self.gain is None else (self.gain * self.scale).view(-1)
        return F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, weight=scale,
                            training=True, momentum=0.0, eps=self.eps).reshape_as(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.standardised(), self.bias, self.stride, self.padding, self.dilation, self.groups)


class Rescale(nn.Module):
    """y = factor · x with a constant factor (NF-ResNet's β on the pre-activation)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"

    def source_ctor(self, sub) -> str:
        return f"Rescale({self.factor!r})"


class Affine(nn.Module):
    """y = a·x + b with two learnable scalars (HGNetV2's LearnableAffineBlock)."""

    def __init__(self, scale: float, bias: float):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(scale)]))
        self.bias = nn.Parameter(torch.tensor([float(bias)]))

    def source_ctor(self, sub) -> str:
        return "Affine(1.0, 0.0)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x + self.bias


class BlurPool2d(nn.Module):
    """Anti-aliased downsampling (Zhang 2019; timm's BlurPool2d): reflect-pad, then a fixed binomial
    k×k filter per channel with stride s."""

    def __init__(self, channels: int, kernel: int, stride: int, padding: int):
        from math import comb

        super().__init__()
        self.channels, self.kernel, self.stride, self.padding = channels, kernel, stride, padding
        coeffs = torch.tensor([comb(kernel - 1, i) for i in range(kernel)], dtype=torch.float32) / 2 ** (kernel - 1)
        filt = (coeffs[:, None] * coeffs[None, :])[None, None].repeat(channels, 1, 1, 1)
        self.register_buffer("filt", filt, persistent=False)

    def source_ctor(self, sub) -> str:
        return f"BlurPool2d({self.channels}, {self.kernel}, {self.stride}, {self.padding})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, [self.padding] * 4, mode="reflect")
        return F.conv2d(x, self.filt.to(x.dtype), stride=self.stride, groups=x.shape[1])


class SpaceToDepth(nn.Module):
    """Each b×b block of pixels becomes b² channels (TResNet's stem; timm's SpaceToDepth)."""

    def __init__(self, block: int):
        super().__init__()
        self.block = block

    def source_ctor(self, sub) -> str:
        return f"SpaceToDepth({self.block})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        b = self.block
        x = x.view(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4).contiguous()
        return x.view(n, c * b * b, h // b, w // b)


class Pad(nn.Module):
    """Zero padding, (left, right, top, bottom) as F.pad takes it: asymmetric and TF-'same' padding."""

    def __init__(self, sides: tuple[int, ...]):
        super().__init__()
        self.sides = tuple(sides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.sides)

    def extra_repr(self) -> str:
        return f"sides={self.sides}"

    def source_ctor(self, sub) -> str:
        return f"Pad({self.sides})"
