"""Issue 22 item 7: eval works from any folder and after the runs and data move together. A
checkpoint never chooses a file to read (trust): the user names it with --data, and without it the
error names the option, the recorded dataset and, where the run recorded it relative to itself, that
path resolved against where the run is now."""
import json
import shutil

import numpy as np
from click.testing import CliRunner

from resdsl.cli import main
from tests.conftest import SPECS


def _run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in r.output, r.output
    return r


def test_runs_find_their_data_from_anywhere(tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(proj / "data" / "d.npz", x_train=rng.integers(0, 256, (80, 8, 8), dtype=np.uint8), y_train=np.arange(80) % 10,
             x_test=rng.integers(0, 256, (30, 8, 8), dtype=np.uint8), y_test=np.arange(30) % 10)
    monkeypatch.chdir(proj)
    r = _run("train", SPECS / "digits_resnet.res", "--set", "width=4", "--set", "n=1", "--data", "npz:data/d.npz",
             "--epochs", "1", "--device", "cpu", "-j", "0", "--output", "runs", "--experiment", "a")
    assert r.exit_code == 0, r.output
    recorded = f"npz:{proj / 'data' / 'd.npz'}"
    assert json.loads((proj / "runs/a/args.json").read_text())["data"] == recorded
    monkeypatch.chdir(tmp_path)                                   # another folder
    # a checkpoint never chooses a file to read: without --data, one error naming the option and the dataset
    r = _run("eval", "--checkpoint", proj / "runs/a", "--json")
    assert r.exit_code != 0 and f"was trained on --data {recorded}" in r.output, r.output
    assert f"pass --data {recorded} (or another dataset)" in r.output, r.output
    r = _run("eval", "--checkpoint", proj / "runs/a", "--json", "--data", recorded)
    assert r.exit_code == 0 and json.loads(r.output)["images"] == 30, r.output
    shutil.move(proj, tmp_path / "moved")                         # runs and data moved together
    moved = f"npz:{tmp_path / 'moved' / 'data' / 'd.npz'}"
    r = _run("eval", "--checkpoint", tmp_path / "moved/runs/a", "--json")
    assert r.exit_code != 0 and f"was trained on --data {recorded}" in r.output, r.output
    assert f"pass --data {moved} (the recorded data, found relative to the run directory" in r.output, r.output
    r = _run("eval", "--checkpoint", tmp_path / "moved/runs/a", "--json", "--data", moved)
    assert r.exit_code == 0 and json.loads(r.output)["images"] == 30, r.output
    r = _run("analyze", "norms", "--checkpoint", tmp_path / "moved/runs/a", "--json")
    assert r.exit_code != 0 and f"pass --data {moved}" in r.output, r.output
    r = _run("analyze", "norms", "--checkpoint", tmp_path / "moved/runs/a", "--json", "--data", moved)
    assert r.exit_code == 0, r.output
    (tmp_path / "moved/data/d.npz").unlink()
    r = _run("eval", "--checkpoint", tmp_path / "moved/runs/a")     # neither path is there: both named
    assert r.exit_code != 0 and f"pass --data {recorded} (or another dataset)" in r.output, r.output
    assert f"relative to the run directory it is --data {moved}" in r.output, r.output
    r = _run("eval", "--checkpoint", tmp_path / "moved/runs/a", "--data", moved)
    assert r.exit_code != 0 and f"no such file: {tmp_path / 'moved' / 'data' / 'd.npz'}" in r.output, r.output


def test_a_digits_run_needs_no_data_from_any_folder(tmp_path, monkeypatch):
    """`digits` names no file: it is the one dataset a checkpoint may choose."""
    monkeypatch.chdir(tmp_path)
    r = _run("train", SPECS / "digits_resnet.res", "--set", "width=4", "--set", "n=1", "--max-steps", "2",
             "--device", "cpu", "-j", "0", "--output", "runs", "--experiment", "d")
    assert r.exit_code == 0, r.output
    shutil.move(tmp_path / "runs", tmp_path / "elsewhere")
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    r = _run("eval", "--checkpoint", tmp_path / "elsewhere/d", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["images"] == 360, r.output     # sklearn's digits: 1797, 20% test
