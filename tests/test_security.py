"""Security: no code from checkpoints, no file the user did not name, no file text echoed."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import resdsl
from resdsl.errors import SpecError
from resdsl.train.checkpoint import load_checkpoint, rng_states, set_rng_states
from resdsl.train.errors import TrainError
from tests.conftest import SPECS, run_cli

NET = "network n() {\n  input 1x8x8\n  stem { conv 4 k3; bn; relu }\n  head { avgpool; fc 2 }\n}\n"


cli = run_cli


class Boom:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def hostile_pt(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "last.pt"
    torch.save({"model": {}, "payload": Boom(marker)}, path)
    return path, marker


def test_hostile_checkpoint_is_refused_without_running_code(hostile_pt):
    path, marker = hostile_pt
    with pytest.raises(TrainError, match="refusing to load"):
        load_checkpoint(path)
    assert not marker.exists()


def test_hostile_checkpoint_on_eval_and_resume_is_one_clean_message(tmp_path, hostile_pt):
    path, marker = hostile_pt
    (tmp_path / "args.json").write_text(json.dumps({"epochs": 1}))
    r = cli("eval", SPECS / "digits_resnet.res", "--checkpoint", path)
    assert r.exit_code != 0 and "refusing to load" in r.output
    r = cli("train", SPECS / "digits_resnet.res", "--resume", tmp_path)
    assert r.exit_code != 0 and "refusing to load" in r.output
    r = cli("train", SPECS / "digits_resnet.res", "--init", path, "--epochs", "1", "--output", tmp_path / "o")
    assert r.exit_code != 0 and "refusing to load" in r.output
    assert not marker.exists()


def test_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(pickle.dumps({"model": {}, "f": print}))
    with pytest.raises(TrainError):
        load_checkpoint(path)


def test_old_checkpoint_with_numpy_rng_state_still_loads(tmp_path):
    """Checkpoints written before weights_only: NumPy's state as an ndarray (allow-listed, no code)."""
    old = rng_states()
    old["numpy"] = np.random.get_state()
    path = tmp_path / "old.pt"
    torch.save({"model": {"w": torch.ones(2)}, "rng": old, "epoch": 1}, path)
    ck = load_checkpoint(path)
    set_rng_states(ck["rng"])
    assert ck["epoch"] == 1 and isinstance(ck["rng"]["numpy"][1], np.ndarray)


def test_new_rng_state_round_trips():
    np.random.seed(3)
    states = rng_states()
    a = np.random.rand(3)
    set_rng_states(states)
    assert np.array_equal(a, np.random.rand(3))


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../../etc/passwd", "/proc/self/environ"])
def test_import_of_a_non_spec_file_never_echoes_it(tmp_path, target):
    spec = tmp_path / "a.res"
    spec.write_text(f'import "{target}"\n' + NET)
    with pytest.raises(SpecError) as e:
        resdsl.load_spec(spec)
    text = e.value.render()
    assert "root:" not in text and "PATH=" not in text and ".res" in text


def test_import_outside_the_project_folder_is_refused(tmp_path):
    (tmp_path / "outside.res").write_text("block b() {\n  residual { relu }\n  shortcut identity\n}\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "a.res").write_text('import "../outside.res"\n' + NET)
    with pytest.raises(SpecError, match="outside the project folder"):
        resdsl.load_spec(project / "a.res")
    assert resdsl.load_spec(project / "a.res", allow_imports=[tmp_path]).name == "n"
    r = cli("check", project / "a.res", "--allow-import", tmp_path)
    assert r.exit_code == 0, r.output


def test_symlink_escaping_the_project_is_refused(tmp_path):
    (tmp_path / "secret.res").write_text("block b() {\n  residual { relu }\n  shortcut identity\n}\n")
    project = tmp_path / "p"
    project.mkdir()
    (project / "lib.res").symlink_to(tmp_path / "secret.res")
    (project / "a.res").write_text('import "lib.res"\n' + NET)
    with pytest.raises(SpecError, match="outside the project folder"):
        resdsl.load_spec(project / "a.res")


def test_import_symlink_loop_and_nul_are_clean_errors(tmp_path):
    (tmp_path / "x.res").symlink_to(tmp_path / "y.res")
    (tmp_path / "y.res").symlink_to(tmp_path / "x.res")
    (tmp_path / "a.res").write_text('import "x.res"\n' + NET)
    with pytest.raises(SpecError, match="cannot import"):
        resdsl.load_spec(tmp_path / "a.res")
    (tmp_path / "b.res").write_bytes(b'import "a\x00.res"\n' + NET.encode())
    r = cli("check", tmp_path / "b.res")
    assert r.exit_code == 1 and "NUL" in r.output


@pytest.mark.parametrize("name", ["/abs/path", "../x", "a/b", "..", "."])
def test_experiment_cannot_leave_output(tmp_path, name):
    r = cli("train", SPECS / "digits_resnet.res", "--epochs", "1", "--output", tmp_path / "runs", "--experiment", name)
    assert r.exit_code == 2 and "--experiment" in r.output
    assert not (tmp_path / "x").exists() and not Path("/abs/path").exists()


def test_output_symlink_is_not_replaced(tmp_path):
    target = tmp_path / "real.svg"
    target.write_text("keep")
    (tmp_path / "link.dot").symlink_to(target)
    r = cli("render", SPECS / "digits_resnet.res", "-o", tmp_path / "link.dot")
    assert r.exit_code == 1 and "symbolic link" in r.output
    assert (tmp_path / "link.dot").is_symlink() and target.read_text() == "keep"
    r = cli("compile", SPECS / "digits_resnet.res", "-o", tmp_path / "link.pt2")
    assert r.exit_code != 0 or not (tmp_path / "link.pt2").is_symlink()


def test_render_without_dot_keeps_an_existing_dot_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    (tmp_path / "x.dot").write_text("mine")
    r = cli("render", SPECS / "digits_resnet.res", "-o", tmp_path / "x.svg")
    assert r.exit_code == 1
    assert (tmp_path / "x.dot").read_text() == "mine"


def test_run_directory_holds_every_spec_file(tmp_path):
    """A run whose spec imports another file is evaluated after that file moves away."""
    src = tmp_path / "src"
    src.mkdir()
    text = (SPECS / "stochastic_depth.res").read_text()
    (src / "cifar_resnet.res").write_text((SPECS / "cifar_resnet.res").read_text())
    (src / "sd.res").write_text(text)
    prog = resdsl.load_program(src / "sd.res")
    from resdsl.frontend.load import bundle
    from resdsl.train.restore import program_from_bundle

    doc = json.loads(json.dumps(bundle(prog)))
    (src / "cifar_resnet.res").unlink()
    again = program_from_bundle(doc)
    assert resdsl.load_spec(again, n=1).name == "stochastic_depth"
