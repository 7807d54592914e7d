"""Iterative estimation (Greff, Srivastava & Schmidhuber 2017): per block ‖F(x)‖/‖x‖ and cos(F(x), x).

F(x) is the sum of the block's residual branch outputs times its scale, read by forward hooks
on `residual` / `residuals.k`; x is what F is added to: the `shortcut` module's output, or the
block's input where the shortcut is the identity. Averaged per sample over the test images.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SpecError
from .common import block_module, branch_modules


@dataclass(frozen=True)
class BlockNorm:
    """Mean over samples of ‖F(x)‖/‖x‖ and of cos(F(x), x) for one block."""

    block: str
    ratio: float
    cosine: float

    def as_dict(self) -> dict:
        return {"block": self.block, "norm_ratio": self.ratio, "cosine": self.cosine}


def measurable(g: nx.DiGraph) -> list[str]:
    """Add-merged blocks with a shortcut; a clear error when the network has none."""
    names = [n for n, b in g.graph["blocks"].items() if b["additive"]]
    if not names:
        raise SpecError(f"norms: {g.graph.get('name')} has no residual block with a shortcut and an add; "
                        "‖F(x)‖/‖x‖ is defined only where F(x) is added to x")
    return names


def _hooks(model: nn.Module, g: nx.DiGraph, name: str, seen: dict) -> list:
    """Record x (shortcut output or block input) and F (sum of branch outputs × scale) of one block."""
    block = block_module(model, name)
    scale = float(g.graph["blocks"][name]["scale"])
    rec = seen.setdefault(name, {"F": []})
    handles = [block.register_forward_pre_hook(lambda m, inp: rec.__setitem__("x", inp[0].detach()))]
    if getattr(block, "shortcut", None) is not None:
        handles.append(block.shortcut.register_forward_hook(lambda m, i, o: rec.__setitem__("x", o.detach())))
    for br in branch_modules(block):
        handles.append(br.register_forward_hook(lambda m, i, o: rec["F"].append(o.detach() * scale)))
    return handles


@torch.no_grad()
def block_norms(model: nn.Module, g: nx.DiGraph, x: torch.Tensor, batch: int = 250) -> list[BlockNorm]:
    """‖F(x)‖/‖x‖ and cos(F(x), x) for every measurable block, on the images x."""
    names, sums = measurable(g), {}
    for i in range(0, len(x), batch):
        seen: dict = {}
        handles = [h for n in names for h in _hooks(model, g, n, seen)]
        try:
            model(x[i:i + batch])
        finally:
            for h in handles:
                h.remove()
        for n in names:
            f = sum(seen[n]["F"]).flatten(1)
            s = seen[n]["x"].flatten(1)
            r = f.norm(dim=1) / s.norm(dim=1).clamp_min(1e-12)
            c = F.cosine_similarity(f, s, dim=1)
            acc = sums.setdefault(n, [0.0, 0.0, 0])
            acc[0], acc[1], acc[2] = acc[0] + r.sum().item(), acc[1] + c.sum().item(), acc[2] + len(r)
    return [BlockNorm(n, a / k, c / k) for n, (a, c, k) in sums.items()]
