"""A stopped and resumed run ends exactly where an unstopped one does; faults keep what was saved."""
import csv
import json

import pytest
import torch
from torch import nn

import resdsl
from resdsl.train import DivergedError, Interrupted, TrainConfig, TrainError, fit, load_data, seed_everything
from resdsl.train.checkpoint import load_checkpoint
from resdsl.train.progress import Reporter
from tests.conftest import SPECS

TIMING = {"epoch_s", "images_per_s"}


@pytest.fixture(autouse=True)
def _nondeterministic_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def _model(seed=0):
    seed_everything(seed, deterministic=True)
    return resdsl.compile(SPECS / "digits_resnet.res", width=8, n=1)


def _cfg(tmp_path, name, **kw):
    base = dict(epochs=3, batch_size=64, lr=0.05, deterministic=True, output=str(tmp_path), experiment=name,
                log_interval=4, warmup_epochs=1)
    return TrainConfig(**{**base, **kw})


def _metrics(run):
    rows = [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader((run / "metrics.csv").open())]
    steps = [{k: v for k, v in json.loads(ln).items()} for ln in (run / "metrics.jsonl").read_text().splitlines()]
    return rows, steps


def test_stopped_and_resumed_run_equals_unstopped_run(tmp_path, digits):
    quiet = Reporter(quiet=True)
    fit(_model(), digits, _cfg(tmp_path, "straight"), reporter=quiet)
    with pytest.raises(Interrupted):  # as if Ctrl-C came in the middle of epoch 2 (23 steps per epoch)
        fit(_model(), digits, _cfg(tmp_path, "stopped"), reporter=quiet, stop_after_steps=30)
    ck = load_checkpoint(tmp_path / "stopped" / "last.pt")
    assert (ck["epoch"], ck["step_in_epoch"]) == (1, 7)
    summary = fit(_model(seed=123), digits, _cfg(tmp_path, "stopped"), resume=tmp_path / "stopped", reporter=quiet)
    assert summary["status"] == "completed" and summary["epochs_done"] == 3
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "stopped" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert _metrics(tmp_path / "straight") == _metrics(tmp_path / "stopped")
    assert not list((tmp_path / "stopped").glob("*.tmp")) and not list((tmp_path / "stopped").glob(".*.tmp"))


def test_run_directory_contents(tmp_path, digits):
    fit(_model(), digits, _cfg(tmp_path, "r", epochs=2), spec_text="network x() {}", spec_name="x",
        reporter=Reporter(quiet=True))
    run = tmp_path / "r"
    names = {p.name for p in run.iterdir()}
    assert {"x.res", "args.json", "metrics.csv", "metrics.jsonl", "last.pt", "best.pt", "summary.json",
            "loss.png", "accuracy.png", "lr.png"} <= names
    ck = load_checkpoint(run / "last.pt")
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "epoch"} <= ck.keys()
    assert {"python", "numpy", "torch", "cuda"} <= ck["rng"].keys()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == 2
    assert json.loads((run / "args.json").read_text())["lr"] == 0.05


class PoisonAfter(nn.Module):
    """The wrapped model, except that training step `k` onwards returns NaN logits."""

    def __init__(self, inner, k):
        super().__init__()
        self.inner, self.k, self.calls = inner, k, 0
        self.input_shape, self.num_classes = inner.input_shape, inner.num_classes

    def forward(self, x):
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.k:
                return out * float("nan")
        return out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, digits):
    with pytest.raises(DivergedError, match="loss became nan at step 30"):
        fit(PoisonAfter(_model(), 30), digits, _cfg(tmp_path, "nan"), reporter=Reporter(quiet=True))
    ck = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert json.loads((tmp_path / "nan" / "summary.json").read_text())["status"] == "diverged"


def test_unwritable_output_is_a_clear_error(tmp_path, digits):
    (tmp_path / "file").write_text("")
    with pytest.raises(TrainError, match="cannot create run directory"):
        fit(_model(), digits, _cfg(tmp_path / "file", None), reporter=Reporter(quiet=True))


def test_existing_experiment_is_not_overwritten(tmp_path, digits):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "metrics.csv").write_text("epoch\n")
    with pytest.raises(TrainError, match="exists; use --resume"):
        fit(_model(), digits, _cfg(tmp_path, "taken"), reporter=Reporter(quiet=True))
