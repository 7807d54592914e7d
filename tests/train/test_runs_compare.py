"""Issue 22 item 3: runs write TensorBoard event files (read back here with TensorBoard's own
reader) and `resdsl runs` tabulates and plots any set of run directories."""
import csv
import json

import pytest
from click.testing import CliRunner

from resdsl.cli import main
from tests.conftest import SPECS

DIGITS = str(SPECS / "digits_resnet.res")
TINY = ["--set", "width=4", "--set", "n=1", "--device", "cpu", "-j", "0", "--subset", "300"]


def _run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in r.output, r.output
    return r


def _scalars(run, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for name, lr, seed in (("a", "0.1", "1"), ("b", "0.05", "2")):
        r = _run("train", DIGITS, *TINY, "--epochs", "2", "--lr", lr, "--seed", seed, "--output", out,
                 "--experiment", name)
        assert r.exit_code == 0, r.output
    return out


def test_tensorboard_events_hold_the_logged_metrics(two_runs):
    pytest.importorskip("tensorboard")
    run = two_runs / "a"
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for key in ("test_acc", "val_acc", "train_loss"):
        got = _scalars(run, f"epoch/{key}")
        assert [s for s, _ in got] == [1, 2]
        assert [v for _, v in got] == pytest.approx([float(r[key]) for r in rows], abs=1e-5)
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    got = _scalars(run, "step/train_loss")
    assert [s for s, _ in got] == [r["step"] for r in steps]
    assert [v for _, v in got] == pytest.approx([r["loss"] for r in steps], rel=1e-5)


def test_runs_tabulates_the_options_that_differ_and_plots(two_runs, tmp_path):
    r = _run("runs", two_runs, "--json", "-o", tmp_path / "runs.png")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert [x["name"] for x in doc["runs"]] == ["a", "b"] and doc["differing"] == ["lr", "seed"]
    for x in doc["runs"]:
        summary = json.loads((two_runs / x["name"] / "summary.json").read_text())
        assert x["best_test_acc"] == summary["best_test_acc"] and x["best_val_acc"] == summary["best_val_acc"]
    assert (tmp_path / "runs.png").stat().st_size > 5000
    r = _run("runs", two_runs / "a", two_runs / "b", "--sort", "val")
    assert r.exit_code == 0 and "lr" in r.output and "seed" in r.output and "0.05" in r.output
    rows = [line for line in r.output.splitlines() if line.startswith(("│ a ", "│ b "))]
    assert len(rows) == 2 and all(line.count("%") == 3 for line in rows)          # one line per run: not wrapped


def test_runs_of_a_folder_without_runs_is_one_error(tmp_path):
    r = _run("runs", tmp_path)
    assert r.exit_code != 0 and "holds no run directory" in r.output
