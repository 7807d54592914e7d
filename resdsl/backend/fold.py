"""Exact algebra on linear layers for inference: fold BatchNorm into convs, merge parallel convs.

A BatchNorm in eval mode is the per-channel affine map bn(x) = a·x + b with a = γ/√(σ² + ε) and
b = β − μ·a. Parallel linear branches on one input sum to one convolution (Ding et al. 2021,
RepVGG): kernels zero-padded to the largest frame, an identity (or a lone BN) as a centred unit
kernel per group. Every function returns new modules and leaves its arguments untouched.
"""
from __future__ import annotations

from dataclasses import dataclass
import torch
from torch import nn

from .fuse_graph import Geom, merge_geometry

_BN = nn.modules.batchnorm._BatchNorm


@dataclass
class Diag:
    """A per-channel affine map y = scale·x + shift (identity: scale 1, shift 0), any group count."""

    scale: torch.Tensor
    shift: torch.Tensor


def bn_affine(bn: _BN) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(a, b) with bn(x) = a·x + b in eval mode, or None when eval mode uses batch statistics."""
    if bn.running_mean is None or bn.running_var is None:
        return None
    with torch.no_grad():
        a = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            a = a * bn.weight.double()
        b = -bn.running_mean.double() * a
        if bn.bias is not None:
            b = b + bn.bias.double()
    return a, b


def identity(channels: int, like: torch.Tensor) -> Diag:
    return Diag(torch.ones(channels, dtype=torch.float64, device=like.device),
                torch.zeros(channels, dtype=torch.float64, device=like.device))


def new_conv(like: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor, *, padding=None, groups=None,
             dilation=None) -> nn.Conv2d:
    """A Conv2d with `like`'s geometry (unless overridden) holding the given weight and bias."""
    out, _, kh, kw = weight.shape
    g = like.groups if groups is None else groups
    conv = nn.Conv2d(like.in_channels, out, (kh, kw), like.stride, like.padding if padding is None else padding,
                     like.dilation if dilation is None else dilation, g, True, like.padding_mode,
                     device=like.weight.device, dtype=like.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    w = conv.weight
    return conv.bias.double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)


def conv_then_bn(conv: nn.Conv2d, bn: _BN) -> nn.Conv2d | None:
    """bn(conv(x)) = conv'(x): W' = a·W, b' = a·b_conv + b."""
    ab = bn_affine(bn)
    if ab is None or bn.num_features != conv.out_channels:
        return None
    a, b = ab
    w = conv.weight.double() * a.view(-1, 1, 1, 1)
    return new_conv(conv, w, _bias(conv) * a + b)


def _per_input(conv: nn.Conv2d, v: torch.Tensor) -> torch.Tensor:
    """A per-input-channel vector laid out as the weight's (out, in/groups) slots."""
    g, out = conv.groups, conv.out_channels
    return v.view(g, 1, -1).expand(g, out // g, -1).reshape(out, -1)


def bn_then_conv(bn: _BN, conv: nn.Conv2d) -> tuple[nn.Conv2d | None, str]:
    """conv(bn(x)) = conv'(x): W' = W·a (per input channel), b' = b_conv + Σ W·b.

    Exact only where the conv reads no zero padding, or the BN shift b is zero: padding zeros
    after the BN are zeros, not b, so the border would differ. "Zero" allows |b| ≤ 1e-7·|a|
    (β = μ·γ/σ computed in float32 leaves a rounding residue), far below the 1e-5 tolerance.
    """
    ab = bn_affine(bn)
    if ab is None:
        return None, "bn uses batch statistics in eval mode (track_running_stats=False)"
    a, b = ab
    padded = any(p != 0 for p in conv.padding) if isinstance(conv.padding, tuple) else conv.padding != "valid"
    if padded and bool((b.abs() > 1e-7 * a.abs()).any()):
        return None, f"bn before a zero-padded conv (padding {conv.padding}) with nonzero shift β − μ·γ/σ"
    w = conv.weight.double()
    w2 = w * _per_input(conv, a)[:, :, None, None]
    bias = _bias(conv) + (w * _per_input(conv, b)[:, :, None, None]).sum((1, 2, 3))
    return new_conv(conv, w2, bias), ""


def scaled(conv: nn.Conv2d, s: float) -> nn.Conv2d:
    """s·conv(x) as one conv."""
    return new_conv(conv, conv.weight.double() * s, _bias(conv) * s)


def _regroup(w: torch.Tensor, g_from: int, g_to: int, c_in: int) -> torch.Tensor:
    """The same grouped kernel written with fewer groups (g_to divides g_from): block-diagonal."""
    if g_from == g_to:
        return w
    out, per_from = w.shape[0], c_in // g_from
    per_to = c_in // g_to
    full = w.new_zeros(out, per_to, *w.shape[2:])
    for gi in range(g_from):
        rows = slice(gi * out // g_from, (gi + 1) * out // g_from)
        start = gi * per_from - (gi * g_to // g_from) * per_to
        full[rows, start:start + per_from] = w[rows]
    return full


def _diag_kernel(d: Diag, groups: int, kh: int, kw: int) -> torch.Tensor:
    c = d.scale.numel()
    w = torch.zeros(c, c // groups, kh, kw, dtype=torch.float64, device=d.scale.device)
    idx = torch.arange(c, device=d.scale.device)
    w[idx, idx % (c // groups), kh // 2, kw // 2] = d.scale
    return w


def geom(conv: nn.Conv2d) -> Geom:
    return Geom(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                conv.groups, conv.padding_mode)


def merge(parts: list[nn.Conv2d | Diag], c_in: int) -> tuple[nn.Conv2d | None, str]:
    """Σ_k part_k(x) as one conv; (None, why) where that is not exact. The geometry and the
    decision are fuse_graph.merge_geometry's (the fusion pass reads the same function)."""
    convs = [p for p in parts if isinstance(p, nn.Conv2d)]
    diags = [p for p in parts if isinstance(p, Diag)]
    if not convs:
        c = diags[0].scale.numel()
        return _from_diags(diags, c), ""
    if any(not isinstance(c.padding, tuple) for c in convs):
        return None, f"conv with padding {next(c.padding for c in convs if not isinstance(c.padding, tuple))!r} is not centred on its kernel"
    target, why = merge_geometry([geom(c) for c in convs], len(diags), c_in)
    if target is None:
        return None, why
    kh, kw = target.kernel
    groups = target.groups
    out = target.out
    w = torch.zeros(out, c_in // groups, kh, kw, dtype=torch.float64, device=convs[0].weight.device)
    bias = torch.zeros(out, dtype=torch.float64, device=w.device)
    for c in convs:
        dh, dw = (kh - c.kernel_size[0]) // 2, (kw - c.kernel_size[1]) // 2
        w[:, :, dh:dh + c.kernel_size[0], dw:dw + c.kernel_size[1]] += _regroup(c.weight.double(), c.groups, groups, c_in)
        bias += _bias(c)
    for d in diags:
        w += _diag_kernel(d, groups, kh, kw)
        bias += d.shift
    return new_conv(convs[0], w, bias, padding=target.padding, groups=groups, dilation=target.dilation), ""


def _from_diags(diags: list[Diag], c: int) -> nn.Conv2d:
    """A sum of per-channel affine maps as a depthwise 1×1 conv."""
    scale = sum(d.scale for d in diags)
    shift = sum(d.shift for d in diags)
    conv = nn.Conv2d(c, c, 1, groups=c, bias=True, dtype=torch.float32, device=scale.device)
    with torch.no_grad():
        conv.weight.copy_(scale.view(c, 1, 1, 1))
        conv.bias.copy_(shift)
    return conv


def evaluate(recipe: tuple, model: nn.Module, done: dict | None = None):
    """A fusion recipe (backend/fuse_graph.py) computed from a trained model's modules: an nn.Conv2d
    (or a Diag). Modules are looked up by path; `done` caches what was computed."""
    done = {} if done is None else done
    key = id(recipe)
    if key in done:
        return done[key][1]
    how = recipe[0]
    if how == "conv":
        out = model.get_submodule(recipe[1])
    elif how == "bn":
        out = Diag(*bn_affine(model.get_submodule(recipe[1])))
    elif how == "identity":
        out = identity(recipe[1], next(iter(model.parameters()), torch.empty(0)))
    elif how == "conv_bn":
        out = conv_then_bn(evaluate(recipe[1], model, done), model.get_submodule(recipe[2]))
    elif how == "bn_conv":
        out = bn_then_conv(model.get_submodule(recipe[1]), evaluate(recipe[2], model, done))[0]
    elif how == "scale":
        p, s = evaluate(recipe[1], model, done), recipe[2]
        out = Diag(p.scale * s, p.shift * s) if isinstance(p, Diag) else scaled(p, s)
    else:
        out = merge([evaluate(r, model, done) for r in recipe[1]], recipe[2])[0]
    if out is None:
        raise ValueError(f"fuse: the recipe {how} cannot be computed from this model's weights")
    done[key] = (recipe, out)
    return out
