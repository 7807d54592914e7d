"""`resdsl train` / `resdsl eval` from the command line: options, run directory, clean errors."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, SPECS, run_cli

DIGITS = str(SPECS / "digits_resnet.res")
TINY = ["--set", "width=8", "--set", "n=1"]


@pytest.fixture(autouse=True)
def _nondeterministic_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


_run = run_cli


def test_train_then_eval(tmp_path):
    r = _run("train", DIGITS, *TINY, "--epochs", "2", "--output", tmp_path, "--experiment", "a",
             "--schedule", "onecycle", "--precision", "bf16", "--channels-last", "-b", "128", "--smoothing", "0.1",
             "--clip-grad", "5", "--opt", "nesterov", "--decay-milestones", "1")
    assert r.exit_code == 0, r.output
    assert "done: test accuracy" in r.output and not r.output.count("\x1b[")  # plain lines, not a tty
    args = json.loads((tmp_path / "a" / "args.json").read_text())
    assert args["sched"] == "onecycle" and args["precision"] == "bf16" and args["params"] == {"width": "8", "n": "1"}
    r = _run("eval", "--checkpoint", tmp_path / "a", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["images"] == 360 and doc["test_acc"] == pytest.approx(
        json.loads((tmp_path / "a" / "summary.json").read_text())["best_test_acc"])
    r = _run("train", "--resume", tmp_path / "a")  # nothing left to do: ends at once
    assert r.exit_code == 0 and "resuming" in r.output


@pytest.mark.parametrize("args, code, message", [
    (["--data", "npz:/nonexistent.npz"], 2, "error: no such file: /nonexistent.npz"),
    (["--data", "cifar10:/nonexistent"], 2, "error: no cifar10 data at /nonexistent"),
    (["--set", "classes=7"], 2, "error: the model predicts 7 classes but digits has 10"),
    (["--lr", "-1"], 2, "error: --lr: Input should be greater than 0"),
    (["--decay-milestones", "x"], 2, "error: --decay-milestones expects epochs"),
    (["--set", "nonsense"], 1, "error: --set expects NAME=VALUE"),
    (["--device", "cuda:0"] if not torch.cuda.is_available() else ["--data", "foo"], 2, "error: "),
])
def test_user_mistakes_end_with_one_message(tmp_path, args, code, message):
    r = _run("train", DIGITS, *TINY, "--epochs", "1", "--output", tmp_path, *args)
    assert r.exit_code == code and message in r.output, r.output


def test_spec_mistake_points_into_the_spec(tmp_path):
    bad = tmp_path / "bad.res"
    bad.write_text("network x() {\n  input 1x8x8\n  stem { conv 8 k3; frobnicate }\n}\n")
    r = _run("train", bad, "--output", tmp_path)
    assert r.exit_code == 1 and "bad.res:" in r.output and "error:" in r.output, r.output


def test_unwritable_output(tmp_path):
    (tmp_path / "f").write_text("")
    r = _run("train", DIGITS, *TINY, "--epochs", "1", "--output", tmp_path / "f" / "runs")
    assert r.exit_code == 2 and "cannot create run directory" in r.output


def test_ctrl_c_checkpoints_then_exits_130(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "resdsl", "train", DIGITS, "--epochs", "500", "--output", str(tmp_path),
           "--experiment", "c"]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("epoch 1/500"):
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted: stopped at epoch" in err and "Traceback" not in err
    ck = torch.load(tmp_path / "c" / "last.pt", weights_only=False)
    assert ck["epoch"] >= 1 and json.loads((tmp_path / "c" / "summary.json").read_text())["status"] == "interrupted"


def test_eval_of_a_checkpoint_that_does_not_fit_the_spec(tmp_path):
    assert _run("train", DIGITS, *TINY, "--epochs", "1", "--output", tmp_path, "--experiment", "a").exit_code == 0
    r = _run("eval", DIGITS, "--set", "width=16", "--checkpoint", tmp_path / "a" / "last.pt")
    assert r.exit_code == 2 and "does not fit this model" in r.output, r.output
    r = _run("eval", DIGITS, "--checkpoint", tmp_path / "nothing.pt")
    assert r.exit_code == 2 and "no checkpoint at" in r.output


def test_live_progress_bar_on_a_terminal(tmp_path):
    import io

    from resdsl.train import TrainConfig, fit, load_data, seed_everything
    from resdsl.train.progress import Reporter

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    seed_everything(0, False)
    import resdsl

    model = resdsl.compile(DIGITS, width=8, n=1)
    fit(model, load_data("digits"), TrainConfig(epochs=1, output=str(tmp_path)), reporter=Reporter(stream=out))
    text = out.getvalue()
    assert "img/s" in text and "loss" in text and "epoch 1/1" in text


@pytest.mark.slow
def test_compile_and_bf16_channels_last(tmp_path):
    r = _run("train", DIGITS, *TINY, "--epochs", "1", "--output", tmp_path, "--compile", "--precision", "bf16",
             "--channels-last")
    assert r.exit_code == 0, r.output
