"""Gradient by path length (Veit, Wilber & Belongie 2016, Fig. 6), by sampling paths.

For a path length k, k of the n residual blocks are drawn; in the backward pass the gradient
flows through only the residual branches of those k blocks and only the shortcuts of the
others (the forward pass is unchanged). The mean norm of the loss gradient reaching the input,
per image, is the gradient magnitude of one path of length k; times the C(n, k) paths of that
length it is the total gradient length k contributes. Routing is done by forward pre-hooks:
a block's input is detached for the shortcut and handed, attached, to the chosen residual.
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from math import comb

import networkx as nx
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpecError
from .common import block_module, branch_modules
from .paths import binomial_check, count_paths


@dataclass(frozen=True)
class LengthGradient:
    """Mean per-path input-gradient norm at each sampled length, and the total over C(n, k) paths."""

    blocks: int
    per_path: dict[int, float]

    def total(self, k: int) -> float:
        return self.per_path[k] * comb(self.blocks, k)

    def as_dict(self) -> dict:
        return {"blocks": self.blocks, "per_path_gradient": {str(k): v for k, v in self.per_path.items()},
                "total_gradient": {str(k): self.total(k) for k in self.per_path}}


def chain_blocks(g: nx.DiGraph) -> list[str]:
    """The residual blocks of a chain whose paths are binomial; an error for any other network."""
    names = [n for n, b in g.graph["blocks"].items() if b["merge"] == "add" and b["shortcut"] != "none"]
    pc = count_paths(g)
    if not names or len(names) != pc.blocks or not binomial_check(pc):
        raise SpecError(f"gradient by path length needs a chain of single-residual blocks with shortcuts "
                        f"(binomial path counts); {g.graph.get('name')} is not one")
    return names


@contextlib.contextmanager
def routed(model: nn.Module, blocks: list[str], through_residual: set[str]):
    """Backward flows through the residual of blocks in `through_residual`, the shortcut of the rest."""
    handles = []
    for name in blocks:
        block = block_module(model, name)
        if name in through_residual:
            handles += _through_residual(block)
        else:
            for br in branch_modules(block):
                handles.append(br.register_forward_pre_hook(lambda m, inp: (inp[0].detach(),)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _through_residual(block: nn.Module) -> list:
    """Detach the block's input (so the shortcut carries no gradient); feed the branch the attached one."""
    held = {}

    def keep(m, inp):
        held["x"] = inp[0]
        return (inp[0].detach(),)

    def attach(m, inp):
        x = held["x"]
        pre = getattr(block, "pre", None)
        return (pre(x) if pre is not None else x,)

    return [block.register_forward_pre_hook(keep)] + [br.register_forward_pre_hook(attach)
                                                      for br in branch_modules(block)]


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over images of ‖∂loss/∂input‖ for the per-image cross-entropy loss."""
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.flatten(1).norm(dim=1).mean().item()


def gradient_by_length(model: nn.Module, g: nx.DiGraph, x: torch.Tensor, y: torch.Tensor,
                       lengths: list[int], draws: int, seed: int = 0) -> LengthGradient:
    """Veit's path sampling at each length in `lengths`, `draws` draws of the k blocks each."""
    names = chain_blocks(g)
    bad = [k for k in lengths if not 0 <= k <= len(names)]
    if bad:
        raise SpecError(f"path lengths must lie in 0..{len(names)}; got {bad}")
    model.eval()
    rng, per_path = random.Random(seed), {}
    for k in lengths:
        vals = []
        for _ in range(draws if 0 < k < len(names) else 1):
            with routed(model, names, set(rng.sample(names, k))):
                vals.append(input_gradient(model, x, y))
        per_path[k] = sum(vals) / len(vals)
    return LengthGradient(len(names), per_path)
