"""Issue 22 item 8: `resdsl train --config run.toml`; every run writes the config.toml it used,
and `--config RUN/config.toml` trains the same run again (same metrics)."""
import csv
import json
import tomllib

from click.testing import CliRunner

from resdsl.cli import main
from tests.conftest import SPECS

TIMING = {"epoch_s", "images_per_s"}


def _run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in r.output, r.output
    return r


def _metrics(run):
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def test_a_config_file_sets_options_and_the_run_writes_what_it_used(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "d.res").write_text((SPECS / "digits_resnet.res").read_text())
    (tmp_path / "run.toml").write_text(
        'spec = "specs/d.res"\nepochs = 2\nbatch-size = 64\nlr = 0.05\nsubset = 400\ndevice = "cpu"\nworkers = 0\n'
        f'output = "{tmp_path / "runs"}"\nsched = "step"\ndecay_milestones = [1]\n\n[set]\nwidth = 4\nn = "1"\n')
    r = _run("train", "--config", tmp_path / "run.toml", "--seed", "7", "--experiment", "a")   # the command line wins
    assert r.exit_code == 0, r.output
    a = tmp_path / "runs" / "a"
    args = json.loads((a / "args.json").read_text())
    assert (args["epochs"], args["batch_size"], args["lr"], args["subset"], args["seed"]) == (2, 64, 0.05, 400, 7)
    assert args["params"] == {"width": "4", "n": "1"} and args["decay_milestones"] == [1]
    used = tomllib.loads((a / "config.toml").read_text())
    assert used["seed"] == 7 and used["val_split"] == 0.1 and used["set"] == {"width": "4", "n": "1"}
    assert used["spec"] == str((tmp_path / "specs" / "d.res").resolve()) and "experiment" not in used
    # the run's own config.toml trains it again: the same numbers, in a new run directory
    r = _run("train", "--config", a / "config.toml", "--experiment", "b")
    assert r.exit_code == 0, r.output
    assert _metrics(a) == _metrics(tmp_path / "runs" / "b")


def test_a_bad_config_file_is_one_clear_error(tmp_path):
    (tmp_path / "x.toml").write_text("epochz = 3\n")
    r = _run("train", "--config", tmp_path / "x.toml")
    assert r.exit_code != 0 and "unknown option 'epochz'; did you mean 'epochs'?" in r.output
    (tmp_path / "y.toml").write_text("epochs = \n")
    r = _run("train", "--config", tmp_path / "y.toml")
    assert r.exit_code != 0 and "not valid TOML" in r.output
    r = _run("train", "--config", tmp_path / "missing.toml")
    assert r.exit_code != 0 and "no such file" in r.output
