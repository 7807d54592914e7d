"""Helpers of transfer_weights for transformers: packed attention weights and free learned tensors.

Two layouts of the same attention weights must line up with resdsl's `Attention` (a `qkv` Linear
of D → 3D and a `proj` Linear):

- torchvision's `nn.MultiheadAttention` owns `in_proj_weight`/`in_proj_bias` (the same [q; k; v]
  rows) and registers its `out_proj` child first: `unpack_attention` shows it as two Linears,
  `in_proj` then `out_proj`, sharing the very tensors (a copy into them writes the model);
- timm's `Attention` already has `qkv` and `proj` Linears: nothing to do.

Free learned tensors (class, distillation and register tokens, position embeddings) sit where a
model happens to register them (torchvision: the class token on the model, the position embedding
on its encoder; timm: all three on the model), not where they are used: `split_free` makes every
(1, N, D) parameter a leaf of its own (a `LearnedTensor`), which transfer_weights places by the
dataflow like any other leaf: where the tensor first meets the data.
"""
from __future__ import annotations

import torch
from torch import nn

STANDARD = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.Linear, nn.LayerNorm, nn.GroupNorm)


def _view(tensors: list[tuple[str, torch.Tensor]], cls=nn.Module) -> nn.Module:
    """A module holding these very tensors (parameters stay parameters), owning nothing else."""
    m = cls.__new__(cls)
    nn.Module.__init__(m)
    for name, t in tensors:
        if isinstance(t, nn.Parameter):
            m.register_parameter(name, t)
        else:
            m.register_buffer(name, t)
    return m


def unpack_attention(leaves: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    """torchvision's packed MultiheadAttention as `in_proj` (a Linear D → 3D) before `out_proj`."""
    out: list[tuple[str, nn.Module]] = []
    for name, m in leaves:
        if isinstance(m, nn.MultiheadAttention) and m.in_proj_weight is not None:
            tensors = [("weight", m.in_proj_weight)] + ([("bias", m.in_proj_bias)] if m.in_proj_bias is not None else [])
            at = next((i for i, (n, _) in enumerate(out) if n == f"{name}.out_proj"), len(out))
            out.insert(at, (f"{name}.in_proj", _view(tensors, nn.Linear)))
        else:
            out.append((name, m))
    return out


class LearnedTensor(nn.Module):
    """One free learned tensor (a class token, a position embedding) as a leaf of its own: a view that
    owns the model's very tensor, so a copy into it writes the model."""


def _is_free(m: nn.Module, name: str, t: torch.Tensor) -> bool:
    return (isinstance(t, nn.Parameter) and not isinstance(m, STANDARD) and attention_category(m) is None
            and t.dim() == 3 and t.shape[0] == 1)


def split_free(leaves: list[tuple[str, nn.Module]], tensors) -> list[tuple[str, nn.Module]]:
    """The leaves with every free learned tensor (a (1, N, D) parameter of a non-standard module) taken
    out of its owner into a LearnedTensor leaf of its own, placed where its owner was."""
    out: list[tuple[str, nn.Module]] = []
    for name, m in leaves:
        own = tensors(m)
        mine = [(n, t) for n, t in own if _is_free(m, n, t)]
        if not mine:
            out.append((name, m))
            continue
        out += [(f"{name}.{n}" if name else n, _view([(n, t)], LearnedTensor)) for n, t in mine]
        rest = [(n, t) for n, t in own if not _is_free(m, n, t)]
        if rest:
            out.append((name, _view(rest)))
    return out


# Buffers an attention computes from its window at construction, never learned: not transferred
# (torchvision keeps them in the state_dict, timm does not).
DERIVED = frozenset({"relative_position_index", "relative_coords_table"})


def attention_category(m: nn.Module) -> str | None:
    """"attention" for any window or relative-position attention module (torchvision's
    ShiftedWindowAttention[V2], timm's WindowAttention, resdsl's Attention), whose own tensors are
    its position bias; None for others."""
    return "attention" if type(m).__name__.endswith("Attention") or type(m).__name__.endswith("AttentionV2") else None
