"""Issue 22 items 1 and 4: a held-out validation split chooses best.pt (the test set is only
reported); --subset, --test-subset, --max-steps and --time-budget make a run short and are
recorded in its config."""
import csv
import json

import pytest
import torch
from click.testing import CliRunner

from resdsl.cli import main
from resdsl.train.config import TrainConfig
from resdsl.train.data import load_data
from resdsl.train.split import prepare, stratified
from tests.conftest import SPECS

DIGITS = str(SPECS / "digits_resnet.res")
TINY = ["--set", "width=4", "--set", "n=1", "--device", "cpu", "-j", "0"]


def _run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in r.output, r.output
    return r


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_validation_split_is_stratified_disjoint_and_seeded():
    data = load_data("digits")
    cut = prepare(data, TrainConfig(val_split=0.2, split_seed=3))
    again = prepare(data, TrainConfig(val_split=0.2, split_seed=3, seed=99))   # --seed does not move the split
    other = prepare(data, TrainConfig(val_split=0.2, split_seed=4))
    assert len(cut.train_x) + len(cut.val_x) == len(data.train_x)
    assert torch.equal(cut.val_x, again.val_x) and not torch.equal(cut.val_x, other.val_x)
    assert torch.equal(cut.test_x, data.test_x)                                 # the test set is untouched
    # disjoint: no training image is also a validation image (digits has few exact duplicates: compare indices)
    keep, held = stratified(data.train_y, 0.2, torch.Generator().manual_seed(3))
    assert not set(keep.tolist()) & set(held.tolist()) and len(keep) + len(held) == len(data.train_y)
    for c in range(10):                                                         # each class keeps its share
        n_c = int((data.train_y == c).sum())
        assert abs(int((cut.val_y == c).sum()) - 0.2 * n_c) <= 1
    assert cut.split["val_images"] == len(cut.val_x) and cut.split["selected_on"] == "val"


def test_best_checkpoint_is_chosen_on_validation_and_eval_can_score_it(tmp_path):
    r = _run("train", DIGITS, *TINY, "--epochs", "3", "--lr", "0.2", "--val-split", "0.25", "--output", tmp_path,
             "--experiment", "v")
    assert r.exit_code == 0, r.output
    assert "chosen on validation" in r.output
    run = tmp_path / "v"
    rows = _csv(run / "metrics.csv")
    val = [float(x["val_acc"]) for x in rows]
    summary = json.loads((run / "summary.json").read_text())
    best = max(range(len(val)), key=lambda i: (val[i], -i))     # the first epoch with the highest val accuracy
    assert summary["best_epoch"] == best + 1 and summary["selected_on"] == "val"
    assert summary["best_test_acc"] == pytest.approx(float(rows[best]["test_acc"]), abs=1e-6)
    assert summary["train_images"] + summary["val_images"] == 1437 and summary["test_images"] == 360
    args = json.loads((run / "args.json").read_text())
    assert args["val_split"] == 0.25 and args["split_seed"] == 0
    # eval draws the same split again from the run's config: the logged validation accuracy of best.pt
    r = _run("eval", "--checkpoint", run, "--split", "val", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["images"] == summary["val_images"]
    assert doc["test_acc"] == pytest.approx(float(rows[best]["val_acc"]), abs=1e-5)
    r = _run("eval", "--checkpoint", run, "--json")                     # the default stays the test set
    assert json.loads(r.output)["test_acc"] == pytest.approx(summary["best_test_acc"], abs=1e-5)


def test_without_a_split_the_run_says_its_best_is_optimistic(tmp_path):
    r = _run("train", DIGITS, *TINY, "--epochs", "1", "--val-split", "0", "--output", tmp_path, "--experiment", "n")
    assert r.exit_code == 0, r.output
    assert "chosen on the test set" in r.output
    summary = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert summary["selected_on"] == "test" and summary["best_val_acc"] is None
    assert _csv(tmp_path / "n" / "metrics.csv")[0]["val_acc"] == ""
    r = _run("eval", "--checkpoint", tmp_path / "n", "--split", "val")
    assert r.exit_code != 0 and "no validation split" in r.output


def test_subset_max_steps_and_time_budget_make_a_run_short(tmp_path):
    r = _run("train", DIGITS, *TINY, "--epochs", "50", "--subset", "300", "--test-subset", "100", "-b", "32",
             "--max-steps", "5", "--output", tmp_path, "--experiment", "s")
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert s["status"] == "completed" and s["stopped_by"] == "max_steps" and s["global_step"] == 5
    assert s["train_images"] + s["val_images"] == 300 and s["test_images"] == 100
    args = json.loads((tmp_path / "s" / "args.json").read_text())
    assert (args["subset"], args["test_subset"], args["max_steps"]) == (300, 100, 5)
    assert len(_csv(tmp_path / "s" / "metrics.csv")) == 1       # the cut epoch is scored and logged
    r = _run("train", DIGITS, *TINY, "--epochs", "1000", "--subset", "200", "--time-budget", "1.5s",
             "--output", tmp_path, "--experiment", "t")
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert s["stopped_by"] == "time_budget" and s["epochs_done"] < 1000 and s["train_s"] < 15
    assert json.loads((tmp_path / "t" / "args.json").read_text())["time_budget"] == 1.5


@pytest.mark.parametrize("args, message", [
    (["--subset", "100000"], "more than the 1,437 training images"),
    (["--time-budget", "soon"], "--time-budget expects seconds"),
    (["--val-split", "1.5"], "--val-split"),
    (["--subset", "4", "--val-split", "0.1"], "--val-split 0.1 of 4 training images"),
])
def test_bad_cuts_are_one_clear_error(tmp_path, args, message):
    r = _run("train", DIGITS, *TINY, "--epochs", "1", "--output", tmp_path, *args)
    assert r.exit_code != 0 and message in r.output, r.output


def test_an_old_run_without_validation_columns_keeps_its_rows(tmp_path):
    from resdsl.train.rundir import RunDir

    old = "epoch,lr,train_loss,train_acc,test_loss,test_acc,epoch_s,images_per_s\n1,0.1,2.0,0.3,2.1,0.25,1.0,100\n"
    (tmp_path / "metrics.csv").write_text(old)
    run = RunDir(tmp_path)
    run.log_epoch({"epoch": 2, "lr": 0.05, "train_loss": 1.5, "train_acc": 0.5, "val_loss": 1.6, "val_acc": 0.45,
                   "test_loss": 1.7, "test_acc": 0.4, "epoch_s": 1.0, "images_per_s": 100.0})
    rows = run.epochs()
    assert [r["test_acc"] for r in rows] == [0.25, 0.4] and "val_acc" not in rows[0] and rows[1]["val_acc"] == 0.45
