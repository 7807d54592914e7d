"""The loss Hessian at a starting point (Li, Jiao, Han & Weissman 2016, "Demystifying ResNet").

Loss L(θ) = ½·mean ‖f_θ(x) − A x‖² on whitened inputs x ~ N(0, I) and a random linear target A,
at θ = 0 (`zero`), θ ~ N(0, 0.01²) (`small`) or the spec's initialisation (`init`). The Hessian
is formed exactly (torch.func) up to `max_exact` parameters, else its extreme eigenvalues come
from Lanczos on Hessian-vector products. Condition number κ = max|λ| / min|λ|; a Hessian that is
zero everywhere (shortcuts spanning 3+ layers, at zero) is reported as flat.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from ..errors import SpecError

STARTS = ("zero", "small", "init")


@dataclass(frozen=True)
class Spectrum:
    params: int
    method: str
    eig_max: float
    eig_min_abs: float

    @property
    def flat(self) -> bool:
        return self.eig_max <= 1e-9

    @property
    def condition(self) -> float | None:
        if self.flat:
            return None
        return self.eig_max / self.eig_min_abs if self.eig_min_abs > 0 else float("inf")

    def as_dict(self) -> dict:
        c = self.condition
        return {"params": self.params, "method": self.method, "max_abs_eigenvalue": self.eig_max,
                "min_abs_eigenvalue": self.eig_min_abs, "flat": self.flat,
                "condition_number": None if c is None or c == float("inf") else c}


def set_start(model: nn.Module, start: str, seed: int = 0) -> None:
    """Put the parameters at the starting point: all zero, small Gaussian, or as initialised."""
    if start not in STARTS:
        raise SpecError(f"--at expects one of {', '.join(STARTS)}, got '{start}'")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if start == "zero":
                p.zero_()
            elif start == "small":
                p.copy_(torch.randn(p.shape, generator=gen) * 0.01)


def loss_fn(model: nn.Module, samples: int = 256, seed: int = 0):
    """(flat parameters θ₀, θ ↦ L(θ)) for the whitened linear regression problem above."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()
    model = model.double().eval()
    d_in = int(torch.tensor(model.input_shape).prod())
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, *model.input_shape, generator=gen, dtype=torch.float64)
    a = torch.randn(model.num_classes, d_in, generator=gen, dtype=torch.float64) / d_in ** 0.5
    y = x.reshape(samples, -1) @ a.T

    def loss(theta: torch.Tensor) -> torch.Tensor:
        params, i = {}, 0
        for n, s in zip(names, shapes):
            k = int(torch.tensor(s).prod()) if len(s) else 1
            params[n] = theta[i:i + k].reshape(s)
            i += k
        out = functional_call(model, params, (x,))
        return 0.5 * (out.reshape(samples, -1) - y).pow(2).sum(1).mean()

    return theta0, loss


def spectrum(model: nn.Module, max_exact: int = 3000, steps: int = 80, progress=None) -> Spectrum:
    """Extreme |eigenvalues| of the loss Hessian: exact below max_exact parameters, else Lanczos.
    `progress(done, total)` is called as Hessian-vector products complete (one per row, or per step)."""
    theta, loss = loss_fn(model)
    n = theta.numel()
    if n == 0:
        raise SpecError("hessian: the network has no parameters")
    tick = progress or (lambda done, total: None)
    if n <= max_exact:
        theta = theta.detach().requires_grad_(True)
        grad = torch.autograd.grad(loss(theta), theta, create_graph=True)[0]
        rows = []
        for i in range(n):                # row i = d(grad_i)/dθ: the exact Hessian, one row at a time
            rows.append(torch.autograd.grad(grad[i], theta, retain_graph=True, allow_unused=True)[0]
                        if grad[i].requires_grad else torch.zeros_like(theta))
            rows[-1] = rows[-1] if rows[-1] is not None else torch.zeros_like(theta)
            tick(i + 1, n)
        h = torch.stack(rows).detach()
        ev = torch.linalg.eigvalsh((h + h.T) / 2).abs()
        return Spectrum(n, "exact", ev.max().item(), ev.min().item())

    def hvp(v, count=[0]):
        count[0] += 1
        tick(count[0], min(steps, n))
        return torch.autograd.functional.hvp(loss, theta, v)[1]
    ev = lanczos(hvp, n, steps).abs()
    return Spectrum(n, f"lanczos ({steps} steps)", ev.max().item(), ev.min().item())


def lanczos(hvp, n: int, steps: int, seed: int = 0) -> torch.Tensor:
    """Ritz values of a symmetric operator after `steps` Lanczos steps (full reorthogonalisation)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(n, generator=gen, dtype=torch.float64)
    from ..progress import Progress

    qs, alphas, betas = [q / q.norm()], [], []
    prog = Progress("hessian (Lanczos)", min(steps, n), "Hessian-vector products")
    for _ in range(min(steps, n)):
        prog.step()
        w = hvp(qs[-1])
        alphas.append(torch.dot(w, qs[-1]))
        basis = torch.stack(qs)
        w = w - basis.T @ (basis @ w)
        beta = w.norm()
        if beta < 1e-12:
            break
        betas.append(beta)
        qs.append(w / beta)
    k = len(alphas)
    t = torch.diag(torch.stack(alphas)) + torch.diag(torch.stack(betas[:k - 1]), 1) + torch.diag(torch.stack(betas[:k - 1]), -1) \
        if k > 1 else torch.stack(alphas).reshape(1, 1)
    return torch.linalg.eigvalsh(t)
