"""transfer_weights(src, dst): copy parameters and buffers between structurally equal models.

Models are compared as sequences of their weighted leaf modules (conv, bn, linear, ...):
first in registration order, then, if that does not line up, in the order a forward pass
calls them (timm's pre-activation blocks register the shortcut after the branch but run it
first). Names never have to match; kinds and every tensor shape do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .transfer_tokens import DERIVED, attention_category, free_pairs, free_tensors, pair_free, unpack_attention


class TransferError(ValueError):
    """The two models differ in structure; the message says where."""


@dataclass
class TransferReport:
    pairs: list[tuple[str, str]] = field(default_factory=list)   # (src module, dst module)
    tensors: int = 0
    elements: int = 0
    order: str = "registration"

    def __str__(self) -> str:
        return (f"copied {self.tensors} tensors ({self.elements:,} values) between {len(self.pairs)} "
                f"modules, matched in {self.order} order")


def _category(m: nn.Module) -> str:
    if attention_category(m):
        return "attention"
    if isinstance(m, nn.modules.conv._ConvNd):
        return f"conv{len(m.kernel_size)}d"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, nn.LayerNorm):          # channels-last nn.LayerNorm or a channels-first LayerNorm2d
        return "layer_norm"
    return type(m).__name__


def _tensors(m: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*m.named_parameters(recurse=False), *((n, b) for n, b in m.named_buffers(recurse=False)
                                                   if b is not None and n not in m._non_persistent_buffers_set and n not in DERIVED)]


def weighted_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own tensors, in registration order; a module that has children too (ConvNeXt's
    CNBlock owns its layer scale) comes after them, where its tensor is used."""
    out: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()

    def walk(name: str, m: nn.Module) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        own = bool(_tensors(m))
        children = list(m.named_children())
        if own and not children:
            out.append((name, m))
        for child, c in children:
            walk(f"{name}.{child}" if name else child, c)
        if own and children:
            out.append((name, m))

    walk("", model)
    return out


def execution_order(model: nn.Module, leaves: list[tuple[str, nn.Module]], input_shape) -> list[tuple[str, nn.Module]]:
    """The same leaves, in the order one forward pass first calls them. A leaf whose weights are
    used without calling it (torchvision's window attention applies `qkv.weight` with F.linear)
    takes the place where its nearest called ancestor was entered."""
    clock: dict[int, float] = {}        # id(module) -> when it was first entered / finished
    entered: dict[int, float] = {}

    def tick(table, key):
        def record(*_):
            table.setdefault(key, len(clock) + len(entered))     # returns None: inputs stay as they are
        return record

    leaf_ids = {id(m) for _, m in leaves}
    hooks = []
    for _, m in model.named_modules():
        if id(m) in leaf_ids and any(True for _ in m.children()):
            # a module with children (CNBlock owning its layer scale) counts when it finishes, after them
            hooks.append(m.register_forward_hook(lambda mod, a, out, r=tick(clock, id(m)): r()))
        elif id(m) in leaf_ids:
            hooks.append(m.register_forward_pre_hook(tick(clock, id(m))))
        hooks.append(m.register_forward_pre_hook(tick(entered, id(m))))
    was_training = model.training
    try:
        model.eval()
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    parents = {id(c): m for m in model.modules() for c in m.children()}

    def when(i: int) -> tuple[float, int]:
        m = leaves[i][1]
        if id(m) in clock:
            return (clock[id(m)], i)
        up = parents.get(id(m))
        while up is not None and id(up) not in entered:
            up = parents.get(id(up))
        return ((entered[id(up)] + 0.5) if up is not None else float("inf"), i)

    return [leaves[i] for i in sorted(range(len(leaves)), key=when)]


def _mismatch(src, dst) -> str | None:
    """Why two leaf sequences do not line up, or None when they do."""
    if len(src) != len(dst):
        extra = src[len(dst)] if len(src) > len(dst) else dst[len(src)]
        n = min(len(src), len(dst))
        first = next((i for i in range(n) if _describe(src[i]) != _describe(dst[i])), None)
        if first is not None:
            return _at(first, src, dst)
        return (f"source has {len(src)} weighted modules, destination {len(dst)}; "
                f"first unmatched: {extra[0]} ({_category(extra[1])})")
    for i in range(len(src)):
        if _describe(src[i]) != _describe(dst[i]):
            return _at(i, src, dst)
    return None


def _describe(leaf) -> tuple:
    _, m = leaf
    if _is_scale(m):     # one learnable per-channel scale, whatever the module calls it
        return ("scale", tuple(t.numel() for _, t in _tensors(m)))
    if _is_dense(m):     # a classifier written as Linear or as a 1×1 conv (timm's ResNetV2 head)
        return ("linear", tuple((n, (t.shape[0], t[0].numel()) if n == "weight" else tuple(t.shape))
                                for n, t in _tensors(m)))
    return (_category(m), tuple((n, tuple(t.shape)) for n, t in _tensors(m)))


def _is_scale(m: nn.Module) -> bool:
    """A module owning exactly one tensor, a parameter shaped (C,), (C, 1, 1) or (1, C, 1, 1), that is
    not a standard layer: a layer scale (torchvision's CNBlock.layer_scale, resdsl's LayerScale)."""
    own = _tensors(m)
    return (len(own) == 1 and _category(m) not in ("conv1d", "conv2d", "conv3d", "bn", "linear", "layer_norm")
            and isinstance(own[0][1], nn.Parameter) and own[0][1].numel() == max(own[0][1].shape))


def _is_dense(m: nn.Module) -> bool:
    """Linear, or an ungrouped, unstrided, unpadded 1×1 conv2d with bias: the same map on a C×1×1 input."""
    if isinstance(m, nn.Linear):
        return True
    return (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1 and m.bias is not None
            and m.stride == (1, 1) and m.padding == (0, 0))


def _at(i, src, dst) -> str:
    (sn, sm), (dn, dm) = src[i], dst[i]
    shapes = lambda m: ", ".join(f"{n} {tuple(t.shape)}" for n, t in _tensors(m))  # noqa: E731
    return (f"module #{i} differs: source '{sn}' is {_category(sm)} [{shapes(sm)}], "
            f"destination '{dn}' is {_category(dm)} [{shapes(dm)}]")


def transfer_weights(src: nn.Module, dst: nn.Module, input_shape=None) -> TransferReport:
    """Copy every parameter and buffer of `src` into `dst`; raise TransferError where they differ."""
    s_leaves, d_leaves = weighted_leaves(src), weighted_leaves(dst)
    # transformers: packed attention shown as two Linears; free learned tensors paired by shape
    (s_leaves, s_free), (d_leaves, d_free) = (free_tensors(unpack_attention(x), _tensors) for x in (s_leaves, d_leaves))
    order, problem = "registration", pair_free(s_free, d_free) or _mismatch(s_leaves, d_leaves)
    if problem is not None:
        shape = input_shape or getattr(dst, "input_shape", None) or getattr(src, "input_shape", None)
        if shape is None:
            raise TransferError(problem + " (pass input_shape= to also try forward order)")
        s_exec, d_exec = execution_order(src, s_leaves, shape), execution_order(dst, d_leaves, shape)
        # Forward order on both sides; or one side's forward order against the other's registration
        # order (timm's Res2Net registers its convs and BNs as two lists, and runs its shortcut last).
        for name, s_try, d_try in (("execution", s_exec, d_exec), ("source execution", s_exec, d_leaves),
                                   ("destination execution", s_leaves, d_exec)):
            if _mismatch(s_try, d_try) is None:
                order, problem, s_leaves, d_leaves = name, None, s_try, d_try
                break
    if problem is not None:
        raise TransferError(f"models differ in structure: {problem}")
    report = TransferReport(order=order)
    with torch.no_grad():
        for (sn, st), (dn, dt) in free_pairs(s_free, d_free):
            dt.copy_(st)
            report.tensors += 1
            report.elements += st.numel()
            report.pairs.append((sn, dn))
        for (sn, sm), (dn, dm) in zip(s_leaves, d_leaves):
            for (_, st), (_, dt) in zip(_tensors(sm), _tensors(dm)):
                dt.copy_(st.reshape(dt.shape))
                report.tensors += 1
                report.elements += st.numel()
            report.pairs.append((sn, dn))
    return report
