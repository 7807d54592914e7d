import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="Rewrite golden files (error messages, DOT renders, cost tables) instead of comparing.")


def run_cli(*args, **kwargs):
    """`resdsl ARGS...` run in-process (click's CliRunner), its Result. A traceback in the output, or an
    exception other than the command's exit, fails the test: a mistake must end in a message."""
    from click.testing import CliRunner

    from resdsl.cli import main

    r = CliRunner().invoke(main, [str(a) for a in args], **kwargs)
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


@pytest.fixture
def cli():
    """The shared CLI runner: `cli("check", spec, "--json").output`."""
    return run_cli


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    yield


def shared_data(name: str) -> Path:
    """A file of ../shared/data, or skip the test when this clone has none beside it."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not present (tests on real data need ../shared/data beside the clone)")
    return path


def emitted_twin(model, source: str | None = None):
    """`compile -o model.py` run: the emitted standalone source of `model` (or `source`, emitted
    with the spec) executed, its build() loaded with the model's weights (strict). Train mode."""
    import resdsl

    scope: dict = {"__name__": "emitted"}
    exec(compile(resdsl.emit_source(model) if source is None else source, "model.py", "exec"), scope)
    twin = scope["build"]()
    twin.load_state_dict(model.state_dict())
    return twin


def randomise_zero_weights(model, seed: int = 1):
    """Weights that start at zero (the head of torchvision's ViT, timm's Mixer) drawn N(0, 0.02²):
    a zero head computes zeros, and a comparison of two models' outputs would say nothing."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
    return model


def randomise_bn(model, seed: int = 0, spread: float = 0.1):
    """Every BN's running statistics and affine parameters drawn far from (0, 1) — a default BN is
    the identity in eval mode, which would hide a wrong fold or a swapped activation. Eval mode."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * spread)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * spread)
    return model.eval()


def assert_equal_after_transfer(ref, ours, x, atol=0.0, grad_rtol=1e-4):
    """Transfer ref's weights into ours, then equal outputs in eval mode and equal gradients of
    every paired parameter in train mode. Returns the transfer report."""
    import torch

    import resdsl

    report = resdsl.transfer_weights(ref, ours)
    assert report.tensors == len(ref.state_dict())
    ref.eval(), ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=atol)
    ref.train(), ours.train()
    ref(x).square().mean().backward()
    ours(x).square().mean().backward()
    src, dst = dict(ref.named_modules()), dict(ours.named_modules())
    for sn, dn in report.pairs:
        for (n, p1), (_, p2) in zip(src[sn].named_parameters(recurse=False), dst[dn].named_parameters(recurse=False)):
            torch.testing.assert_close(p2.grad, p1.grad.reshape(p2.shape), rtol=grad_rtol, atol=1e-6, msg=f"{sn}.{n}")
    return report


TINY_NET = """
{blocks}
network t(n = 2) {{
  input 3x16x16
  stem {{ conv 16 k3; bn; relu }}
  stage x n unit(16)
  head {{ avgpool; fc 10 }}
}}
"""


def tiny_spec(blocks: str) -> str:
    """A small network around a block `unit(w)` the test defines (two units of width 16 on 16×16)."""
    return TINY_NET.format(blocks=blocks)
