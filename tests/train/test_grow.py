"""Multi-level training (`resdsl train --grow`, Chang et al. 2018): a grown net's blocks are copies of
their parents with the residual scale halved; on a smooth net the grown net is a finer Euler
discretisation of the same ODE, its output within the bound derived below; the CLI end to end;
resume across a level change; clear errors for bad --grow values."""
import json
from dataclasses import replace

import pytest
import torch

from resdsl.api import load_program
from resdsl.errors import SpecError
from resdsl.train import Interrupted, TrainConfig, fit, load_data, seed_everything
from resdsl.train.checkpoint import load_checkpoint
from resdsl.train.grow import Grower
from resdsl.train.progress import Reporter
from tests.conftest import SPECS, run_cli

DIGITS = str(SPECS / "digits_resnet.res")


@pytest.fixture(autouse=True)
def _nondeterministic_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


def _randomise(model, seed=0):
    """Random weights and BN statistics, so that equal tensors mean copied tensors."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)


def test_grown_blocks_are_copies_of_their_parents_with_the_scale_halved():
    grower = Grower(load_program(SPECS / "cifar_resnet.res"), None, {"n": "2"})
    old, new = grower.model(0), grower.model(1)
    _randomise(old)
    grower.interpolate(old, new, 0)
    a, b = old.state_dict(), new.state_dict()
    # written out by hand: stage 0 (all identity shortcuts) doubles each block; stages 1 and 2 begin
    # with a downsampling block (zeropad shortcut) kept as it is, whose inserted copy takes the
    # adjacent old block after it (the only one of the right shape)
    parent = {0: [0, 0, 1, 1], 1: [0, 1, 1, 1], 2: [0, 1, 1, 1]}
    for s, parents in parent.items():
        for j, p in enumerate(parents):
            new_blk, old_blk = new.get_submodule(f"stages.{s}.blocks.{j}"), old.get_submodule(f"stages.{s}.blocks.{p}")
            keys = new_blk.state_dict().keys()
            assert keys and keys == old_blk.state_dict().keys()
            for k in keys:    # conv weights, BN γ β and running statistics
                assert torch.equal(b[f"stages.{s}.blocks.{j}.{k}"], a[f"stages.{s}.blocks.{p}.{k}"]), (s, j, k)
            transition = s > 0 and j == 0
            assert new_blk.unit.scale == (1.0 if transition else 0.5) and old_blk.unit.scale == 1.0
    for k in a:
        if not k.startswith("stages."):
            assert torch.equal(a[k], b[k])            # stem and head as they were
    assert grower.model(2).get_submodule("stages.0.blocks.7").unit.scale == 0.25


ODE_SPEC = """
block step(w, h) {
  residual { conv w k3 bias; tanh; conv w k3 bias }
  shortcut identity
  scale h
}
network ode(n = 2, w = 3, h = 0.5) {
  input 3x4x4
  stage x n step(w, h)
  head { avgpool; fc 5 }
}
"""


def _operator_norm(conv: torch.nn.Conv2d, shape) -> float:
    """‖W‖₂ of the convolution (no bias) as the linear map it is on this input size, computed exactly."""
    n = int(torch.tensor(shape).prod())
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    cols = torch.nn.functional.conv2d(basis, conv.weight, None, conv.stride, conv.padding)
    return torch.linalg.matrix_norm(cols.reshape(n, -1), 2).item()


def test_grown_net_is_a_finer_euler_step_of_the_same_ode():
    """Shallow net: x_{k+1} = x_k + h·f_k(x_k). Grown: the same f_k applied twice with h/2:
    G_k(x) = u + (h/2)·f_k(u), u = x + (h/2)·f_k(x). With L_k a Lipschitz constant of f_k,
        |G_k(x) − S_k(x)| = (h/2)·|f_k(u) − f_k(x)| ≤ (h/2)·L_k·(h/2)·|f_k(x)| = h²·L_k·|f_k(x)|/4,
        Lip(G_k) ≤ (1 + h·L_k/2)²,
    so the gap e_k = |z_k − x_k| between the two trajectories obeys
        e_{k+1} ≤ (1 + h·L_k/2)²·e_k + h²·L_k·|f_k(x_k)|/4,   e_0 = 0,
    and the logits differ by at most ‖W_fc‖₂·e_n/√(H·W) (average pooling: |mean v| ≤ |v|/√m).
    For a fixed depth of time T = n·h the sum is n·O(h²) = O(h): the grown net is the same ODE
    on a finer grid, and Euler's global error is first order. Both are checked."""
    seed_everything(0, deterministic=False)
    grower = Grower(load_program(ODE_SPEC), None, {})
    nets = [grower.model(0).double().eval()]
    with torch.no_grad():
        for p in nets[0].parameters():
            p.mul_(0.6)                                   # an ODE regime: h·L_k well below 1
    for level in (1, 2):
        nets.append(grower.model(level).double().eval())
        grower.interpolate(nets[-2], nets[-1], level - 1)
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    h, shape = 0.5, (3, 4, 4)
    e = torch.zeros(8, dtype=torch.float64)
    z = x
    for blk in nets[0].stages[0].blocks:
        conv1, conv2 = blk.residual[0], blk.residual[2]
        lip = _operator_norm(conv1, shape) * _operator_norm(conv2, shape)    # tanh is 1-Lipschitz
        f = blk.residual(z)
        e = (1 + h * lip / 2) ** 2 * e + h * h * lip * f.flatten(1).norm(dim=1) / 4
        z = z + h * f
    fc = nets[0].head[-1].weight
    with torch.no_grad():
        (f0, f1, f2), (y0, y1, y2) = ([net.forward_features(x) for net in nets], [net(x) for net in nets])
    gap = (f1 - f0).flatten(1).norm(dim=1)                # after the blocks, the ODE's state
    assert torch.all(gap <= e) and torch.all(gap > 0)
    assert torch.all((y1 - y0).norm(dim=1) <= torch.linalg.matrix_norm(fc, 2) * e / 4.0)   # √(H·W) = 4
    # first order: halving h again halves the change (Euler's error ∝ h)
    ratio = (gap / (f2 - f1).flatten(1).norm(dim=1)).median().item()
    assert 1.7 < ratio < 2.3, ratio
    # and the bound is tight enough to catch a grown net whose step size was not halved
    for blk in nets[1].stages[0].blocks:
        blk.unit = replace(blk.unit, scale=h)
    with torch.no_grad():
        assert torch.all((nets[1].forward_features(x) - f0).flatten(1).norm(dim=1) > e)


_run = run_cli


def test_train_grow_on_digits_then_eval(tmp_path):
    r = _run("train", DIGITS, "--set", "width=8", "--epochs", "3", "--grow", "1,2",
             "--output", tmp_path, "--experiment", "g", "-b", "256")
    assert r.exit_code == 0, r.output
    assert "grew to level 1: n = 4, depth 18" in r.output and "grew to level 2: n = 8, depth 34" in r.output
    run = tmp_path / "g"
    levels = json.loads((run / "levels.json").read_text())
    assert [(lv["level"], lv["epoch"], lv["n"], lv["depth"], lv["step_scale"]) for lv in levels] == [
        (0, 0, 2, 10, 1.0), (1, 1, 4, 18, 0.5), (2, 2, 8, 34, 0.25)]
    assert levels[0]["params"] < levels[1]["params"] < levels[2]["params"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["levels"] == levels and summary["params"] == levels[2]["params"]
    ck = load_checkpoint(run / "last.pt")
    assert ck["grow"]["level"] == 2 and ck["grow"]["args"] == {"n": 8}
    assert json.loads((run / "args.json").read_text())["grow"] == [1, 2]
    r = _run("eval", "--checkpoint", run / "last.pt", "--json")     # the level-2 net, scale 0.25
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["test_acc"] == pytest.approx(summary["final_test_acc"])


def _cfg(tmp_path, name):
    return TrainConfig(epochs=3, batch_size=128, lr=0.05, deterministic=True, output=str(tmp_path), experiment=name,
                       log_interval=4, grow=(1,), params={"width": "8"})


def _fit(tmp_path, name, digits, **kw):
    from resdsl.train.session import run

    seed_everything(0, deterministic=True)
    return run(DIGITS, _cfg(tmp_path, name), data=digits, reporter=Reporter(quiet=True), **kw)


def test_resume_across_a_level_change_equals_an_unstopped_run(tmp_path):
    """Grows from n = 2 to 4 after epoch 1; stopped in epoch 2 (level 1), resumed as the deep net."""
    digits = load_data("digits")                  # 1437 images; the 10% validation split held out: 11 steps of 128
    _fit(tmp_path, "straight", digits)
    with pytest.raises(Interrupted):              # stopped in epoch 2, after growing at the end of epoch 1
        _fit(tmp_path, "stopped", digits, stop_after_steps=11 + 5)
    ck = load_checkpoint(tmp_path / "stopped" / "last.pt")
    assert (ck["epoch"], ck["step_in_epoch"], ck["grow"]["level"]) == (1, 5, 1)
    from resdsl.train.session import run

    summary = run(None, {}, resume=tmp_path / "stopped", data=digits, reporter=Reporter(quiet=True))
    assert summary["status"] == "completed" and [lv["level"] for lv in summary["levels"]] == [0, 1]
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "stopped" / "last.pt")
    assert a["model"].keys() == b["model"].keys() and "stages.1.blocks.3.residual.conv1.weight" in b["model"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert json.loads((tmp_path / "stopped" / "levels.json").read_text()) == summary["levels"]


@pytest.mark.parametrize("args, message", [
    (["--grow", "2,1"], "error: --grow: Value error, grow epochs must increase strictly, like 10,20; got [2, 1]"),
    (["--grow", "3"], "error: --grow: Value error, grow epoch 3 is not before the last epoch (3)"),
    (["--grow", "0"], "grow epochs must be 1 or more"),
    (["--grow", "one"], "error: --grow expects epochs like 10,20; got 'one'"),
])
def test_bad_grow_values_end_with_one_message(tmp_path, args, message):
    r = _run("train", DIGITS, "--epochs", "3", "--output", tmp_path, *args)
    assert r.exit_code != 0 and message in r.output, r.output
    assert not list(tmp_path.iterdir())          # refused before a run directory was made


def test_spec_without_the_depth_parameter_is_a_located_error(tmp_path):
    r = _run("train", DIGITS, "--epochs", "3", "--grow", "1", "--grow-param", "layers", "--output", tmp_path)
    assert r.exit_code == 1, r.output
    lines = r.output.splitlines()
    assert lines[0].endswith("digits_resnet.res:5:9: error: unknown parameter 'layers' of network digits_resnet")
    assert lines[2].strip().startswith("|") and "^^^^" in lines[2]
    assert "note: expected one of: classes, n, width" in r.output and "--grow-param NAME" in r.output


def test_depth_parameter_whose_doubling_does_not_double_the_stages(tmp_path):
    spec = tmp_path / "odd.res"
    spec.write_text("network odd(n = 1) {\n  input 1x8x8\n  stem { conv 8 k3; bn; relu }\n"
                    "  stage x n + 1 basic(8)\n  head { avgpool; fc 10 }\n}\n")
    with pytest.raises(SpecError) as e:
        Grower(load_program(spec), None, {}).block_map(0)
    text = e.value.render()
    assert "odd.res:4:3: error: doubling 'n' (1 -> 2) takes stages.0 from 2 to 3 blocks, not 4" in text
    r = _run("train", spec, "--epochs", "2", "--grow", "1", "--output", tmp_path / "runs")
    assert r.exit_code == 1 and "takes stages.0 from 2 to 3 blocks" in r.output, r.output
