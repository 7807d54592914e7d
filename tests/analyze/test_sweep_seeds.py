"""Issue 22 item 2: `resdsl sweep` over training options and seeds, with mean ± std (n) per
setting in the table, the JSON and the figure; --match still works."""
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from resdsl.analyze.compare import mean_std
from resdsl.analyze.sweep import parse_grid, settings
from resdsl.cli import main
from tests.conftest import SPECS

DIGITS = str(SPECS / "digits_resnet.res")


def _sweep(*args):
    r = CliRunner().invoke(main, ["sweep", DIGITS, *map(str, args)])
    assert "Traceback" not in r.output, r.output
    return r


def test_grid_names_split_into_network_parameters_and_training_options():
    todo = settings(parse_grid(("n=1,2", "lr=0.1,0.05", "batch-size=32", "seed=1,2")), {"width": "4"})
    assert len(todo) == 8
    s = todo[0]
    assert s.params == {"width": "4", "n": "1"} and s.recipe == {"lr": "0.1", "batch_size": "32", "seed": "1"}
    assert s.name == "width=4_n=1_lr=0.1_batch_size=32_seed=1" and s.group == "width=4_n=1_lr=0.1_batch_size=32"
    assert len({t.group for t in todo}) == 4 and len({t.name for t in todo}) == 8


def test_mean_std_is_numpy_sample_statistics():
    xs = [0.91, 0.93, 0.90, 0.95]
    st = mean_std(xs + [None])
    assert st["n"] == 4 and st["mean"] == pytest.approx(np.mean(xs)) and st["std"] == pytest.approx(np.std(xs, ddof=1))
    assert mean_std([0.5]) == {"mean": 0.5, "std": None, "n": 1}


def test_sweep_over_lr_and_seed_reports_mean_std_per_setting(tmp_path):
    out = tmp_path / "sw"
    r = _sweep("--set", "width=4", "--grid", "n=1", "--grid", "lr=0.2,0.05", "--grid", "seed=1,2", "--epochs", "2",
               "--subset", "300", "--device", "cpu", "-j", "0", "--output", out, "--json", "-o", tmp_path / "f.png")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert len(doc["settings"]) == 4 and len(doc["groups"]) == 2
    for s in doc["settings"]:                                   # each run trained with its own lr and seed
        args = json.loads((Path(s["run_dir"]) / "args.json").read_text())
        assert args["lr"] == float(s["values"]["lr"]) and args["seed"] == int(s["values"]["seed"])
        assert args["subset"] == 300 and s["status"] == "completed" and len(s["curve"]) == 2
    a, b = (json.loads((out / f"width=4_n=1_lr=0.2_seed={k}" / "summary.json").read_text()) for k in (1, 2))
    assert a["final_test_acc"] != b["final_test_acc"] or a["best_val_acc"] != b["best_val_acc"]  # seeds differ
    g = doc["groups"][0]
    accs = [a["best_test_acc"], b["best_test_acc"]]
    assert g["group"] == "width=4_n=1_lr=0.2" and g["seeds"] == ["1", "2"] and g["completed"] == 2
    assert g["best_test_acc"]["mean"] == pytest.approx(np.mean(accs))
    assert g["best_test_acc"]["std"] == pytest.approx(np.std(accs, ddof=1)) and g["best_test_acc"]["n"] == 2
    assert len(g["curve"]) == 2 and g["curve"][0]["val_err"]["n"] == 2
    assert (tmp_path / "f.png").stat().st_size > 5000
    # the table shows mean ± std (n) per setting; a finished sweep is read back without training
    r = _sweep("--set", "width=4", "--grid", "n=1", "--grid", "lr=0.2,0.05", "--grid", "seed=1,2", "--epochs", "2",
               "--subset", "300", "--device", "cpu", "-j", "0", "--output", out)
    assert r.exit_code == 0 and "done, skipped" in r.output and "training" not in r.output
    mean, sd = 100 * np.mean(accs), 100 * np.std(accs, ddof=1)
    assert f"{mean:.2f} ± {sd:.2f} (2)" in r.output


def test_match_still_adjusts_network_parameters_beside_a_training_grid():
    r = _sweep("--grid", "n=1,2", "--set", "width=16", "--grid", "lr=0.1,0.05", "--match", "params", "--adjust", "width",
               "--dry-run", "--json", "--output", "/nonexistent/never")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["settings"]
    assert [r["values"]["lr"] for r in rows] == ["0.1", "0.05", "0.1", "0.05"]
    assert rows[0]["params"] == rows[1]["params"] and rows[2]["values"]["width"] != "16"
    assert abs(rows[2]["params"] - rows[0]["params"]) < 0.1 * rows[0]["params"]


@pytest.mark.parametrize("grid, message", [(("lr=-1",), "--lr"), (("epochs=x",), "--epochs")])
def test_a_bad_training_value_in_the_grid_fails_before_training(tmp_path, grid, message):
    r = _sweep("--grid", "n=1", "--set", "width=4", *[a for g in grid for a in ("--grid", g)], "--output", tmp_path)
    assert r.exit_code != 0 and message in r.output and not any(tmp_path.iterdir())
