"""`init` directives of a spec, applied after the default (torchvision) initialisation."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..ir.kinds import INIT_DIRECTIVES
from .modules import CReLU, ResidualBlock


def _branches(model: nn.Module):
    for m in model.modules():
        if isinstance(m, ResidualBlock):
            yield from ([m.residual] if m.residuals is None else list(m.residuals))


def zero_last_bn(model: nn.Module, _: Any) -> None:
    """γ = 0 in the last BN of every residual branch: each block starts as its shortcut (Goyal et al.)."""
    for br in _branches(model):
        bns = [m for m in br.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if bns:
            nn.init.zeros_(bns[-1].weight)


def residual_std(model: nn.Module, std: float) -> None:
    """Residual-branch convs ~ N(0, std²), std 0 = zero init (Li et al.'s n-shortcut study)."""
    for br in _branches(model):
        for m in br.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.zeros_(m.weight) if std == 0 else nn.init.normal_(m.weight, 0.0, std)


def looks_linear(model: nn.Module, _: Any) -> None:
    """Balduzzi et al.: orthogonal weights; a conv after a CReLU gets [W, −W], so that
    W·relu(x) − W·relu(−x) = W·x and the network is exactly linear at initialisation."""
    after_crelu = set()
    prev = None
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and isinstance(prev, CReLU):
            after_crelu.add(id(m))
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, CReLU)):
            prev = m
    with torch.no_grad():
        for m in model.modules():
            if not isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                continue
            if id(m) in after_crelu:
                half = m.weight.shape[1] // 2
                w = torch.empty_like(m.weight[:, :half])
                nn.init.orthogonal_(w)
                m.weight.copy_(torch.cat((w, -w), 1))
            else:
                nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


DIRECTIVES = {name: globals()[name] for name in INIT_DIRECTIVES}      # ir/kinds.py: one function per entry


def apply_init(model: nn.Module, directives) -> None:
    for name, value in directives:
        DIRECTIVES[name](model, value)
