"""Issue 22 item 7: a run records its data so that eval works from any folder and after the runs
and data move together; data that is gone is one error naming the option to give."""
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
    assert json.loads((proj / "runs/a/args.json").read_text())["data"] == f"npz:{proj / 'data' / 'd.npz'}"
    monkeypatch.chdir(tmp_path)                                   # another folder
    r = _run("eval", "--checkpoint", proj / "runs/a", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["images"] == 30, r.output
    shutil.move(proj, tmp_path / "moved")                         # runs and data moved together
    r = _run("eval", "--checkpoint", tmp_path / "moved/runs/a", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["images"] == 30, r.output
    r = _run("analyze", "norms", "--checkpoint", tmp_path / "moved/runs/a", "--json")
    assert r.exit_code == 0, r.output
    (tmp_path / "moved/data/d.npz").unlink()
    r = _run("eval", "--checkpoint", tmp_path / "moved/runs/a")
    assert r.exit_code != 0 and "is not there" in r.output and "give it with --data npz:PATH" in r.output
