"""Shattered gradients (Balduzzi et al. 2017, Figs. 1-3): gradients along a 1-D line of inputs.

Inputs x(t) = x₀ + t·d on a line (x₀, d random images of unit-variance pixels, t in [-2, 2]
on `points` steps, as the paper's 1-D input; not through 0, where a bias-free ReLU net is
positively homogeneous and its gradient piecewise constant). The gradient signal is the directional
derivative g(t) = <∇ₓ(u·f(x(t))), d> for a random unit read-out u. Its autocorrelation over
`draws` draws of (d, u) is C(lag) = Σ g(t)g(t+lag) / sqrt(Σ g(t)² Σ g(t+lag)²): 1 for a linear
net (constant gradient), near 0 when the gradient is white noise. The summary is C(1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Shattering:
    """Gradient signals and their autocorrelation for one network."""

    label: str
    depth: int
    autocorr: list[float]          # C(lag) for lag = 0 .. max_lag
    example: list[float]           # g(t) of the first draw, for the figure

    @property
    def corr1(self) -> float:
        return self.autocorr[1] if len(self.autocorr) > 1 else 1.0

    def as_dict(self) -> dict:
        return {"label": self.label, "depth": self.depth, "corr_lag1": self.corr1,
                "autocorr": self.autocorr, "gradient_example": self.example}


def line_gradients(model: nn.Module, points: int, draws: int, seed: int = 0) -> torch.Tensor:
    """g_r(t) for r < draws: directional derivatives of a random read-out along random lines."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(-2.0, 2.0, points)
    shape = tuple(model.input_shape)
    from ..progress import Progress

    out = []
    prog = Progress("shattering", draws, "lines")
    for _ in range(draws):
        prog.step()
        x0, d = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
        x = (x0 + t.view(-1, *[1] * len(shape)) * d).requires_grad_(True)
        y = model(x)
        u = torch.randn(y.shape[1:], generator=gen)
        (grad,) = torch.autograd.grad((y * (u / u.norm())).sum(), x)
        out.append((grad * d).flatten(1).sum(1).detach())
    return torch.stack(out)


def autocorrelation(g: torch.Tensor, max_lag: int) -> list[float]:
    """C(lag) = Σ_r,t g_r(t)·g_r(t+lag) / sqrt(Σ g_r(t)² · Σ g_r(t+lag)²), uncentred, lag 0..max_lag."""
    g = g.double()
    cs = []
    for lag in range(max_lag + 1):
        a, b = g[:, : g.shape[1] - lag], g[:, lag:]
        den = (a.pow(2).sum() * b.pow(2).sum()).sqrt()
        cs.append(float((a * b).sum() / den) if den > 0 else 0.0)
    return cs


def measure(model: nn.Module, label: str, depth: int, points: int = 128, draws: int = 4,
            max_lag: int = 16, seed: int = 0) -> Shattering:
    """The gradient autocorrelation of one network in eval mode (BN uses its running statistics)."""
    model.eval()
    g = line_gradients(model, points, draws, seed)
    return Shattering(label, depth, autocorrelation(g, max_lag), g[0].tolist())


def weighted_depth(g) -> int:
    """Number of conv and fc layers on the longest input-to-output path of the graph."""
    import networkx as nx

    best: dict[str, int] = {}
    for n in nx.topological_sort(g):
        here = 1 if g.nodes[n]["kind"] in ("conv", "fc") else 0
        best[n] = here + max((best[u] for u in g.predecessors(n)), default=0)
    return best[g.graph["output"]]
