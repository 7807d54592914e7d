"""fuse(model) -> an equivalent inference module: BN folded, linear parallel branches merged.

Works on the compiled module tree (backend/modules.py), whose classes say exactly what is linear:
a Conv2d, an eval-mode BatchNorm, an identity shortcut, a sum of branches. Nothing is changed
where the result would not be exact; `report=True` says what was folded and what was left.
The result is for eval mode only (BN statistics and eval-time drop-path scaling are baked in).
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from ..ir.kinds import MERGE_MODES
from . import fold
from .modules import Branches, Dataflow, ResidualBlock

_BN = nn.modules.batchnorm._BatchNorm


@dataclass
class FuseReport:
    folded: list[tuple[str, str]] = field(default_factory=list)    # (module, what was done)
    left: list[tuple[str, str]] = field(default_factory=list)      # (module, why not)
    # (module that replaces them, module paths folded away, geometry of a new conv or None):
    # what render --fuse applies to the graph, whose node names are the module paths
    units: list[tuple[str, list[str], dict | None]] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0

    def __str__(self) -> str:
        lines = [f"fused: {self.params_before:,} -> {self.params_after:,} parameters, "
                 f"{len(self.folded)} folds, {len(self.left)} left as they were"]
        lines += [f"  folded {name}: {what}" for name, what in self.folded]
        lines += [f"  left   {name}: {why}" for name, why in self.left]
        return "\n".join(lines)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fuse(model: nn.Module, report: bool = False, memory_format: torch.memory_format | None = torch.channels_last):
    """A new eval-mode module computing model.eval()'s function; (module, FuseReport) with report=True.

    Weights go to `memory_format` (None: as they are). channels_last is the default because oneDNN's
    convolutions run faster on NHWC activations on this CPU (ResNet-50, batch 16: 1.34× against
    NCHW; benchmarks/RESULTS.md); an NCHW input is accepted and the activations follow the weights.
    """
    out = copy.deepcopy(model).eval()
    rep = FuseReport(params_before=_params(model))
    with torch.no_grad():
        out = Fuser(rep).module(out, "")
    if memory_format is not None:
        out = out.to(memory_format=memory_format)
    out.eval()
    rep.params_after = _params(out)
    gone = [p for _, prefixes, _ in rep.units for p in prefixes]
    rep.left = [(n, why) for n, why in rep.left if not _under(n, gone)]     # folded later on: not left
    return (out, rep) if report else out


class Fuser:
    def __init__(self, rep: FuseReport):
        self.rep = rep
        self.memo: dict[tuple[int, ...], nn.Module] = {}    # shared weights stay shared after folding
        self.replaced: dict[int, nn.Module] = {}

    def module(self, m: nn.Module, name: str) -> nn.Module:
        if isinstance(m, ResidualBlock):
            return self.block(m, name)
        if isinstance(m, nn.Sequential):
            return self.seq(m, name)
        if isinstance(m, Branches):
            return self.branches(m, name)
        if isinstance(m, Dataflow):
            return self.flow(m, name)
        for child, sub in list(m.named_children()):
            new = self.module(sub, _join(name, child))
            self.replaced[id(sub)] = new
            setattr(m, child, new)
        if isinstance(getattr(m, "_body", None), list):     # Network: its execution order list
            m._body = [self.replaced.get(id(x), x) for x in m._body]
        if isinstance(m, _BN):
            self.rep.left.append((name, "bn with no conv beside it to fold into"))
        return m

    # -- sequences: conv+bn, bn+conv ------------------------------------------------------------
    def seq(self, s: nn.Sequential, name: str) -> nn.Module:
        items = [(k, self.module(v, _join(name, k))) for k, v in s.named_children()]
        out: list[tuple[str, nn.Module]] = []
        i = 0
        while i < len(items):
            k, m = items[i]
            nxt = items[i + 1] if i + 1 < len(items) else None
            if isinstance(m, nn.Conv2d) and nxt is not None and isinstance(nxt[1], nn.BatchNorm2d):
                conv = self.shared((m, nxt[1]), lambda: fold.conv_then_bn(m, nxt[1]))
                if conv is not None:
                    self.rep.folded.append((_join(name, k), f"{nxt[0]} folded into the conv"))
                    self.rep.units.append((_join(name, k), [_join(name, nxt[0])], None))
                    items[i + 1] = (k, conv)
                    i += 1
                    continue
            if isinstance(m, nn.BatchNorm2d):
                if nxt is not None and isinstance(nxt[1], nn.Conv2d):
                    conv, why = self.bn_conv(m, nxt[1])
                    if conv is not None:
                        self.rep.folded.append((_join(name, nxt[0]), f"{k} (before it) folded into the conv"))
                        self.rep.units.append((_join(name, nxt[0]), [_join(name, k)], None))
                        items[i + 1] = (nxt[0], conv)
                        i += 1
                        continue
                else:
                    why = f"bn followed by {_kind(nxt[1]) if nxt else 'nothing'} in this sequence, not a conv"
                self.rep.left.append((_join(name, k), why))
            out.append((k, m))
            i += 1
        return nn.Sequential(OrderedDict(out))

    # -- dataflow bodies: conv+bn where the BN alone reads the conv's output ----------------------
    def flow(self, d: Dataflow, name: str) -> nn.Module:
        mods = {k: v if isinstance(v, nn.BatchNorm2d) else self.module(v, _join(name, k))
                for k, v in d.named_children()}
        reads: dict[str, int] = {}
        for _, _, inputs, _ in d.wiring:
            for t in inputs:
                reads[t] = reads.get(t, 0) + 1
        steps = [[k, mods.get(k, merge), list(ins), out] for k, merge, ins, out in d.wiring]
        made = {s[3]: s for s in steps}
        for step in list(steps):
            k, m, ins, out = step
            src = made.get(ins[0]) if isinstance(m, nn.BatchNorm2d) else None
            if src is None or not isinstance(src[1], nn.Conv2d) or reads[ins[0]] != 1 or ins[0] == d.output:
                if isinstance(m, nn.BatchNorm2d):
                    self.rep.left.append((_join(name, k), "bn not alone after a conv in this dataflow body"))
                continue
            conv = self.shared((src[1], m), lambda: fold.conv_then_bn(src[1], m))
            if conv is None:
                continue
            self.rep.folded.append((_join(name, src[0]), f"{k} folded into the conv"))
            self.rep.units.append((_join(name, src[0]), [_join(name, k)], None))
            src[1], src[3] = conv, out                  # the conv now makes the BN's tensor
            made[out] = src
            steps.remove(step)
        return Dataflow([tuple(s) for s in steps], d.output)

    def bn_conv(self, bn: nn.Module, conv: nn.Conv2d):
        box = {}
        def make():
            c, box["why"] = fold.bn_then_conv(bn, conv)
            return c
        c = self.shared((bn, conv), make)
        return c, box.get("why", "")

    def shared(self, key_mods: tuple[nn.Module, ...], make):
        key = tuple(id(x) for x in key_mods)
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    # -- parallel branches ----------------------------------------------------------------------
    def branches(self, b: Branches, name: str) -> nn.Module:
        subs = [self.module(br, _join(name, str(i))) for i, br in enumerate(b)]
        if b.mode == "sum":
            parts = [linear_part(s) for s in subs]
            if all(p is not None for p in parts):
                c_in = _in_channels(parts)
                conv, why = fold.merge(parts, c_in) if c_in else (None, "no conv gives the input channels")
                if conv is not None:
                    self.rep.folded.append((name, f"{len(parts)} summed branches merged into one {_k(conv)} conv"))
                    self.rep.units.append((name, [name], geometry(conv)))
                    return conv
                self.rep.left.append((name, f"summed branches not merged: {why}"))
            else:
                self.rep.left.append((name, "summed branches not merged: a branch is not linear"))
        return Branches(subs, b.mode)

    # -- residual blocks ------------------------------------------------------------------------
    def block(self, b: ResidualBlock, name: str) -> nn.Module:
        for child, sub in list(b.named_children()):
            setattr(b, child, self.module(sub, _join(name, child)))
        u = b.unit
        scale = u.scale * (1.0 - u.drop_prob) if u.drop_prob > 0 and u.drop_mode == "batch" else u.scale
        merged = self.merge_block(b, name, scale)
        if merged is not None:
            return merged
        if scale != 1.0 and not MERGE_MODES[u.merge].needs_gate:
            self.fold_scale(b, name, scale)
        return b

    def merge_block(self, b: ResidualBlock, name: str, scale: float) -> nn.Module | None:
        """post(Σ residual_k(a)·scale + shortcut(a)) with all linear: post(conv(a)), a = pre(x)."""
        why = _block_obstacle(b)
        residuals = [b.residual] if b.residuals is None else list(b.residuals)
        parts = [linear_part(r) for r in residuals]
        sc = None
        if not why and any(p is None for p in parts):
            why = "a residual branch is not linear (one conv or bn after folding)"
        if not why and b.unit.has_shortcut:
            sc = "identity" if b.shortcut is None else linear_part(b.shortcut)
            if sc is None:
                why = "the shortcut is not linear"
        if why:
            self.rep.left.append((name, f"block not merged: {why}"))
            return None
        parts = [_scale_part(p, scale) for p in parts]
        c_in = _in_channels(parts + ([sc] if sc is not None else []))
        if sc is not None:
            parts.append(fold.identity(c_in, _any_tensor(b)) if sc == "identity" else sc)
        conv, why = fold.merge(parts, c_in) if c_in else (None, "no conv gives the input channels")
        if conv is None:
            self.rep.left.append((name, f"block not merged: {why}"))
            return None
        mods = OrderedDict()
        if b.pre is not None:
            mods["pre"] = b.pre
        mods["conv"] = conv
        if b.post is not None:
            mods["post"] = b.post
        self.rep.folded.append((name, f"{len(parts)} linear paths (residuals and shortcut) merged into one {_k(conv)} conv"))
        self.rep.units.append((f"{name}.conv", [f"{name}.{p}" for p in ("residual", "residuals", "shortcut", "add")],
                               geometry(conv)))
        return nn.Sequential(mods)

    def fold_scale(self, b: ResidualBlock, name: str, scale: float) -> None:
        """scale·Σ r_k(x) with each r_k ending in a conv: scale goes into those convs' weights."""
        residuals = [b.residual] if b.residuals is None else list(b.residuals)
        if not all(isinstance(r, nn.Sequential) and len(r) and isinstance(r[-1], nn.Conv2d) for r in residuals):
            self.rep.left.append((name, f"scale {scale:g} kept: a residual branch does not end in a conv"))
            return
        for r in residuals:
            last = list(r._modules)[-1]
            r._modules[last] = fold.scaled(r[-1], scale)
        b.unit = replace(b.unit, scale=1.0, drop_prob=0.0)
        self.rep.folded.append((name, f"scale {scale:g} folded into the last conv of the residual"))


def _block_obstacle(b: ResidualBlock) -> str:
    u = b.unit
    if not MERGE_MODES[u.merge].additive:
        return f"merge {u.merge} is not a sum"
    if b.pre is not None and u.has_shortcut and not u.from_pre:
        return "the shortcut reads x, the residual pre(x)"
    if u.drop_prob > 0 and u.drop_mode == "sample" and b.training:
        return "drop path in training mode"
    return ""


def linear_part(m: nn.Module | None):
    """m as a Conv2d or a per-channel affine map (fold.Diag), or None when m is not one such map."""
    if m is None:
        return None
    if isinstance(m, nn.Sequential):
        mods = list(m.children())
        if len(mods) != 1:
            return None
        m = mods[0]
    if isinstance(m, nn.Conv2d):
        return m
    if isinstance(m, nn.BatchNorm2d):
        ab = fold.bn_affine(m)
        return None if ab is None else fold.Diag(*ab)
    return None


def _scale_part(p, s: float):
    if s == 1.0:
        return p
    if isinstance(p, fold.Diag):
        return fold.Diag(p.scale * s, p.shift * s)
    return fold.scaled(p, s)


def _in_channels(parts) -> int:
    for p in parts:
        if isinstance(p, nn.Conv2d):
            return p.in_channels
        if isinstance(p, fold.Diag):
            return p.scale.numel()
    return 0


def _any_tensor(m: nn.Module) -> torch.Tensor:
    return next(iter(m.parameters()), torch.empty(0))


def geometry(conv: nn.Conv2d) -> dict:
    """A conv's attributes as the graph writes them (ir/ops.py)."""
    k = conv.kernel_size
    return {"out": conv.out_channels, "kernel": k[0] if k[0] == k[1] else list(k), "stride": conv.stride[0],
            "padding": list(conv.padding), "dilation": conv.dilation[0], "groups": conv.groups, "bias": True,
            "causal": False}


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _join(a: str, b: str) -> str:
    return f"{a}.{b}" if a else b


def _kind(m: nn.Module) -> str:
    return type(m).__name__


def _k(conv: nn.Conv2d) -> str:
    return "×".join(map(str, conv.kernel_size))
