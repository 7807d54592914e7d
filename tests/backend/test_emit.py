"""`resdsl compile -o model.py`: standalone PyTorch source, same state_dict keys, bit-equal outputs.

Every zoo spec (small settings) is emitted here; one subprocess without resdsl importable loads
them all, checks the keys, loads the weights and compares outputs with resdsl.compile's.
"""
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, SPECS, emitted_twin, randomise_zero_weights
import resdsl
from resdsl.frontend.load import load

SMALL = {"cifar_resnet": dict(n=1), "stochastic_depth": dict(n=1), "densenet_cifar": dict(depth=16),
         "resnext_cifar": dict(cardinality=2, base_width=4), "wide_resnet": dict(depth=10, k=1),
         "multi_resnet": dict(depth=20), "preact_resnet": dict(depth=20), "highway": dict(n=1),
         "inception_resnet_v2": dict(size=75), "recurrent_resnet": dict(steps=2), "resnet_d": dict(depth=18),
         "dilated_mixed": dict(width=8), "vgg": dict(hidden=64), "alexnet": dict(hidden=64),
         "vit": dict(size=64), "deit": dict(size=64), "mixer": dict(size=64)}   # a learned length: built for 64×64
# every network of every zoo spec (resnet.res holds two); ImageNet nets run on 75×75 inputs
ZOO = [(spec, name) for spec in sorted(SPECS.glob("*.res")) for name in load(spec).main_networks]

CHECK = """
import sys, torch
sys.modules["resdsl"] = None                     # importing resdsl now fails
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2:]:
    mod = __import__(name)
    sd, x, y = torch.load(f"{sys.argv[1]}/{name}.pt")
    m = mod.build().eval()
    assert list(m.state_dict()) == list(sd), (name, set(m.state_dict()) ^ set(sd))
    m.load_state_dict(sd)
    with torch.no_grad():
        assert torch.equal(m(x), y), name
    assert "resdsl" not in open(mod.__file__).read().split('\"\"\"', 2)[2], name
    print("ok", name)
"""


@pytest.mark.slow
@pytest.mark.parametrize("part", range(3))
def test_every_zoo_spec_runs_standalone_bit_equal(tmp_path, part):
    """A third of the zoo per test (xdist runs them side by side); every network once."""
    names = []
    for spec, name in ZOO[part::3]:
        net = resdsl.load_spec(spec, name, **SMALL.get(name, {}))
        model = randomise_zero_weights(resdsl.compile(spec, name, **SMALL.get(name, {}))).eval()
        (tmp_path / f"{name}.py").write_text(resdsl.emit_source(model, net))
        c, *spatial = model.input_shape           # C×H×W, or C×L for a sequence
        x = torch.randn(2, c, *(min(n, 75) for n in spatial))
        with torch.no_grad():
            y = model(x)
        torch.save((model.state_dict(), x, y), tmp_path / f"{name}.pt")
        names.append(name)
    r = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path), *names], capture_output=True, text=True,
                       cwd=tmp_path, env={"PATH": "", "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == [w for n in names for w in ("ok", n)]


def test_block_forward_reads_like_a_resnet_block():
    src = resdsl.emit_source(resdsl.compile(SPECS / "resnet.res", depth=50), resdsl.load_spec(SPECS / "resnet.res"))
    assert "import resdsl" not in src and "from resdsl" not in src
    assert src.count("class Bottleneck") == 8           # first and other blocks of four stages
    assert "class Bottleneck(nn.Module)" in src and "class Bottleneck8(nn.Module)" in src
    assert ("    def forward(self, x):\n        s = self.shortcut(x)\n        out = self.residual(x)\n"
            "        out = out.add_(s)\n        return self.post(out)\n") in src
    assert "nn.Conv2d(64, 64, kernel_size=3, padding=1, bias=False)" in src
    assert "def build() -> Network:" in src


def test_train_mode_stochastic_depth_is_the_same_computation(tmp_path):
    """In training the emitted block draws the same random numbers in the same order."""
    model = resdsl.compile(SPECS / "stochastic_depth.res", n=2).train()
    twin = emitted_twin(model).train()
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(0)
    y = model(x)
    torch.manual_seed(0)
    assert torch.equal(twin(x), y)


@pytest.mark.parametrize("suffix", [".py"])
def test_compile_cli_writes_python(tmp_path, suffix):
    from click.testing import CliRunner

    from resdsl.cli import main

    out = tmp_path / f"m{suffix}"
    r = CliRunner().invoke(main, ["compile", str(SPECS / "digits_resnet.res"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "class Network(nn.Module)" in out.read_text()


def test_every_merge_mode_has_its_runtime_code():
    """A merge mode of ir/kinds.py runs (and is printed) by its MERGE_CODE entry."""
    from resdsl.backend.unit import MERGE_CODE
    from resdsl.ir.kinds import MERGE_MODES

    assert set(MERGE_CODE) == set(MERGE_MODES)
