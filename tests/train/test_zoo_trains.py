"""Every zoo spec trains: compile, a few optimiser steps in training mode (stochastic-depth draws
included), then eval — at a small input, so that no spec ships that cannot train."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import resdsl
from resdsl.backend.modules import ResidualBlock
from resdsl.zoo import SPECS
from resdsl.zoo.catalog import zoo

ENTRIES = zoo(SPECS)


def small_input(model) -> tuple[int, ...]:
    """A quarter of the declared pixels when the net takes it (global pooling heads), else the
    declared input; ImageNet-sized nets at 64x64 (75x75 for Inception's valid convolutions)."""
    if len(model.input_shape) == 2:        # a C×L sequence: a quarter of its length
        c, n = model.input_shape
        tries = [(c, n // 4)]
    else:
        c, h, w = model.input_shape
        tries = [(c, h // 2, w // 2)] if h <= 64 else [(c, 64, 64), (c, 75, 75)]
    model.eval()
    for shape in tries:
        try:
            with torch.no_grad():
                model(torch.zeros(2, *shape))
            return shape
        except RuntimeError:
            continue
    return tuple(model.input_shape)


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_zoo_spec_trains_and_evaluates(entry):
    torch.manual_seed(0)
    model = resdsl.compile(entry.spec, entry.name)
    shape = small_input(model)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    x, y = torch.randn(4, *shape), torch.arange(4) % model.num_classes
    model.train()
    for _ in range(3):          # with drop_prob up to 0.5, three draws usually include a dropped block
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (4, model.num_classes) and torch.isfinite(out).all()


def test_stochastic_depth_dropped_blocks_train():
    """Every block dropped (p = 1 in training is refused, so force the draw): the in-place post
    relu must not modify the shortcut tensor autograd still needs."""
    model = resdsl.compile(SPECS / "stochastic_depth.res", n=1)
    for m in model.modules():
        if isinstance(m, ResidualBlock) and m.unit.drop_prob > 0:
            m.unit = replace(m.unit, drop_prob=0.999999)
    x = torch.randn(2, 3, 32, 32)
    loss = model.train()(x).logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.stem.parameters())


@pytest.mark.parametrize("clause", ["shortcut none", "merge concat"])
def test_drop_path_on_blocks_it_could_never_drop_is_refused(clause):
    text = (f"block c(w) {{\n  residual {{ conv w k3 }}\n  {clause}\n}}\n"
            "network n() {\n  input 3x8x8\n  drop_path 0.5 linear\n  stem { conv 4 k3 }\n"
            "  stage x 2 c(4)\n  head { avgpool; fc 2 }\n}\n")
    with pytest.raises(resdsl.SpecError, match="drop_path cannot apply") as e:
        resdsl.graph(text)
    assert e.value.span.line == 7
