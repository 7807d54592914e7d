"""`resdsl compile -o X.pt2` loads in plain PyTorch; torch.compile and channels_last work; writes are atomic."""
import subprocess
import sys
import textwrap

import pytest
import torch
from click.testing import CliRunner

import resdsl
from conftest import ROOT, SPECS
from resdsl.cli import main

CIFAR = SPECS / "cifar_resnet.res"

# Runs in a fresh interpreter, outside the repository, and must never import resdsl.
LOADER = textwrap.dedent("""
    import sys, torch
    program = torch.export.load(sys.argv[1])
    x = torch.load(sys.argv[2])
    torch.save(program.module()(x), sys.argv[3])
    assert not [m for m in sys.modules if m.startswith("resdsl")], "resdsl was imported"
""")


def compile_cli(*args):
    result = CliRunner().invoke(main, ["compile", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_exported_program_loads_without_resdsl(tmp_path):
    out = tmp_path / "cifar.pt2"
    torch.manual_seed(0)
    r = compile_cli(CIFAR, "-o", out)
    assert r.exit_code == 0, r.output
    assert "269,722 parameters" in r.stdout and f"torch.export.load('{out}')" in r.stdout
    torch.manual_seed(0)
    model = resdsl.compile(CIFAR).eval()              # same seed, same weights as the exported one
    x = torch.randn(3, 3, 32, 32)                    # batch 3: the batch dimension is dynamic
    torch.save(x, tmp_path / "x.pt")
    (tmp_path / "load.py").write_text(LOADER)
    p = subprocess.run([sys.executable, "load.py", out.name, "x.pt", "y.pt"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    with torch.no_grad():
        torch.testing.assert_close(torch.load(tmp_path / "y.pt"), model(x), rtol=1e-5, atol=1e-6)


def test_compile_to_a_missing_folder_fails_before_work(tmp_path):
    r = compile_cli(CIFAR, "-o", tmp_path / "nope" / "x.pt2")
    assert r.exit_code == 1 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_write_is_atomic(tmp_path, monkeypatch):
    """A failure while saving leaves the previous file untouched and no temporary file behind."""
    out = tmp_path / "model.pt2"
    out.write_bytes(b"previous")

    def broken_save(program, path):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch.export, "save", broken_save)
    r = compile_cli(SPECS / "digits_resnet.res", "--set", "width=4", "-o", out)
    assert r.exit_code == 1 and "No space left on device" in r.stderr
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt2"]


def test_channels_last_gives_the_same_outputs():
    torch.manual_seed(0)
    model = resdsl.compile(SPECS / "resnet.res", depth=50, classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        y = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-5)


def test_channels_last_training_step_matches():
    torch.manual_seed(0)
    a = resdsl.compile(CIFAR, n=1).train()
    b = resdsl.compile(CIFAR, n=1).train()
    b.load_state_dict(a.state_dict())
    b = b.to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 32, 32)
    a(x).square().mean().backward()
    b(x.to(memory_format=torch.channels_last)).square().mean().backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
def test_torch_compile_works():
    """Inductor on CPU (about 15 s here: C++ compilation)."""
    torch.manual_seed(0)
    model = resdsl.compile(CIFAR, n=1).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model, fullgraph=True)(x), model(x), rtol=1e-4, atol=1e-5)
