"""`init` directives of a spec, applied after the default (torchvision) initialisation."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from ..errors import SpecError
from ..ir.kinds import INIT_DIRECTIVES, INIT_FILLS, INIT_SECTIONS
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


def _fan_in(weight: torch.Tensor) -> int:
    return nn.init._calculate_fan_in_and_fan_out(weight)[0]


def _lecun_normal(t: torch.Tensor, weight: torch.Tensor) -> None:
    """timm's lecun_normal_: N(0, 1) cut at ±2, scaled so that the variance is 1/fan_in."""
    nn.init.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0)
    t.mul_(math.sqrt(1.0 / _fan_in(weight)) / 0.87962566103423978)   # 0.8796…: the std of N(0,1) cut at ±2


def _default(t: torch.Tensor, weight: torch.Tensor) -> None:
    """torch's reset_parameters of Linear and Conv: kaiming_uniform_(a=√5) = U(±1/√fan_in), the bias alike."""
    bound = 1.0 / math.sqrt(_fan_in(weight)) if _fan_in(weight) > 0 else 0.0
    nn.init.uniform_(t, -bound, bound)


# ir/kinds.py INIT_FILLS: f(tensor, the layer's weight (for its fans), *values)
FILLS: dict[str, Callable[..., Any]] = {
    "zeros": lambda t, w: nn.init.zeros_(t),
    "ones": lambda t, w: nn.init.ones_(t),
    "constant": lambda t, w, v: nn.init.constant_(t, v),
    "normal": lambda t, w, s: nn.init.normal_(t, 0.0, s),
    "trunc_normal": lambda t, w, s: nn.init.trunc_normal_(t, std=s),
    "uniform": lambda t, w, a: nn.init.uniform_(t, -a, a),
    "xavier_uniform": lambda t, w: nn.init.xavier_uniform_(t),
    "xavier_normal": lambda t, w: nn.init.xavier_normal_(t),
    "kaiming_normal": lambda t, w: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
    "lecun_normal": _lecun_normal,
    "default": _default,
}
assert set(FILLS) == set(INIT_FILLS), "ir/kinds.py INIT_FILLS and FILLS name the same fills"


def _targets(g, rec) -> list[str]:
    """The graph nodes an `init` reaches: its kinds, in its sections (any, when it names none)."""
    prefixes = tuple(INIT_SECTIONS[s] for s in rec.sections)
    return [n for n, d in g.nodes(data=True) if d["kind"] in rec.kinds
            and (not prefixes or d["scope"]["section"].split(".")[0] in prefixes)]


def _layers(mod: nn.Module) -> list[tuple[nn.Parameter, nn.Parameter | None]]:
    """(weight, bias) of every layer in an op's module; a learned tensor (class token, position
    embedding) is its own weight."""
    out = [(m.weight, getattr(m, "bias", None)) for m in mod.modules()
           if isinstance(getattr(m, "weight", None), nn.Parameter)]
    return out or [(p, None) for p in mod.parameters(recurse=False)]


@torch.no_grad()
def fill(model: nn.Module, rec, g) -> None:
    """`init [SECTION] KIND [PART] FILL [V] [bias FILL [V]]` (frontend/init_stmt.py) on the compiled modules."""
    for node in _targets(g, rec):
        mod = model.get_submodule(node)
        for weight, bias in _layers(getattr(mod, rec.part) if rec.part else mod):
            for t, f in ((weight, rec.weight), (bias, rec.bias)):
                if t is None or f is None:
                    continue
                if INIT_FILLS[f[0]].fan and weight.dim() < 2:      # affine's scalars: no fan-in to scale by
                    raise SpecError(f"init: {f[0]} is scaled by a fan-in, but {node} holds a tensor of shape "
                                    f"{tuple(weight.shape)}, not a weight matrix or kernel", rec.span)
                FILLS[f[0]](t, weight, *f[1])


def apply_init(model: nn.Module, directives, g=None) -> None:
    """The spec's `init` directives, in order (a tensor `init` reads the graph: kinds and sections)."""
    for name, value in directives:
        if name == "fill":
            fill(model, value, g)
        else:
            DIRECTIVES[name](model, value)
