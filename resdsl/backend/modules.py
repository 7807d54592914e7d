"""The nn.Modules a compiled network is made of: plain PyTorch, nothing resdsl-specific at run time."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FlattenLinear(nn.Linear):
    """A Linear layer that flattens a C×1×1 input first (keeps the name `fc1`, no extra module)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight, self.bias)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut (He et al. 2015): subsample by `stride`, pad the new channels with zeros."""

    def __init__(self, stride: int, extra_channels: int):
        super().__init__()
        self.stride, self.extra_channels = stride, extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


class Branches(nn.ModuleList):
    """Parallel branches on one input, merged by channel concatenation or sum."""

    def __init__(self, branches: list[nn.Module], mode: str):
        super().__init__(branches)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self]
        if self.mode == "concat":
            return torch.cat(outs, 1)
        y = outs[0]
        for o in outs[1:]:
            y = y + o
        return y

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


class ResidualBlock(nn.Module):
    """Residual unit: y = post(scale * sum_k residual_k(pre(x)) + shortcut(x))."""

    def __init__(self, pre: nn.Module | None, residuals: list[nn.Module], shortcut: nn.Module | None,
                 shortcut_kind: str, shortcut_from_pre: bool, scale: float, post: nn.Module | None,
                 add_inplace: bool):
        super().__init__()
        self.pre = pre
        if len(residuals) == 1:
            self.residual, self.residuals = residuals[0], None
        else:
            self.residual, self.residuals = None, nn.ModuleList(residuals)
        self.shortcut = shortcut
        self.post = post
        self.has_shortcut = shortcut_kind != "none"
        self.shortcut_kind = shortcut_kind
        self.shortcut_from_pre = shortcut_from_pre
        self.scale = float(scale)
        self.add_inplace = add_inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x if self.pre is None else self.pre(x)
        if self.residuals is None:
            out = self.residual(a)
        else:
            out = self.residuals[0](a)
            for r in self.residuals[1:]:
                out = out + r(a)
        if self.scale != 1.0:
            out = out * self.scale
        if self.has_shortcut:
            s = a if self.shortcut_from_pre else x
            if self.shortcut is not None:
                s = self.shortcut(s)
            out = out.add_(s) if self.add_inplace else out + s
        return out if self.post is None else self.post(out)

    def extra_repr(self) -> str:
        return f"shortcut={self.shortcut_kind}" + (f", scale={self.scale}" if self.scale != 1.0 else "")


class Stage(nn.Module):
    """A stage: its blocks in order (`stages.{i}.blocks.{j}`)."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Network(nn.Module):
    """A compiled resdsl network: stem, stages (and transitions between them), head."""

    def __init__(self, name: str, input_shape: tuple[int, ...], num_classes: int, stem: nn.Module,
                 body: list[tuple[str, nn.Module]], head: nn.Module):
        super().__init__()
        self.spec_name, self.input_shape, self.num_classes = name, tuple(input_shape), num_classes
        self.stem = stem
        self.stages = nn.ModuleList([m for kind, m in body if kind == "stage"])
        self.transitions = nn.ModuleList([m for kind, m in body if kind == "transition"])
        self.head = head
        self._body = [m for _, m in body]     # execution order; registered above

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for m in self._body:
            x = m(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
