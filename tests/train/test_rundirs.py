"""Run directories: one writer, atomic creation, torn logs, runs killed before a checkpoint, self-contained specs."""
from __future__ import annotations

import json
import os
import shutil
import threading

import pytest
import torch

from resdsl.train import TrainError, run
from resdsl.train.rundir import RunLock, new_run_dir
from tests.conftest import SPECS, run_cli

TINY = {"width": "8", "n": "1"}
FAST = {"epochs": 1, "batch_size": 128, "log_interval": 2, "deterministic": True}


@pytest.fixture(autouse=True)
def _nondeterministic_afterwards():
    yield
    torch.use_deterministic_algorithms(False)


cli = run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished tiny run, trained from a copy of the spec that is then deleted."""
    root = tmp_path_factory.mktemp("runs")
    src = root / "src"
    src.mkdir()
    shutil.copy(SPECS / "digits_resnet.res", src / "d.res")
    summary = run(src / "d.res", {**FAST, "experiment": "r"}, root / "out", args=TINY)
    shutil.rmtree(src)
    return root / "out" / "r", summary


def test_run_dir_holds_the_resolved_spec(trained):
    path, summary = trained
    assert summary["status"] == "completed"
    doc = json.loads((path / "spec.json").read_text())
    assert doc["main"] == "d.res" and "network digits_resnet" in doc["files"]["d.res"]
    r = cli("eval", "--checkpoint", path, "--json")       # the source folder is gone
    assert r.exit_code == 0, r.output


def test_second_writer_is_refused_with_the_holder_pid(trained, tmp_path):
    path, _ = trained
    lock = RunLock(path).acquire()
    try:
        r = cli("train", "--resume", path, "--epochs", "2")
        assert r.exit_code == 2 and f"in use by process {os.getpid()}" in r.output
    finally:
        lock.release()
    assert not (path / "last.pt").stat().st_size == 0


def test_concurrent_starts_get_distinct_directories(tmp_path):
    got, barrier = [], threading.Barrier(16)

    def start():
        barrier.wait()
        got.append(new_run_dir(str(tmp_path), None))

    threads = [threading.Thread(target=start) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 16


def test_same_experiment_twice_is_refused(tmp_path):
    new_run_dir(str(tmp_path), "x")
    (tmp_path / "x" / "args.json").write_text("{}")
    with pytest.raises(TrainError, match="--resume"):
        new_run_dir(str(tmp_path), "x")


def test_torn_last_metrics_lines_do_not_break_resume(tmp_path):
    run(SPECS / "digits_resnet.res", {**FAST, "experiment": "t"}, tmp_path, args=TINY)
    d = tmp_path / "t"
    with (d / "metrics.jsonl").open("a") as f:
        f.write('{"step": 99, "lo')
    with (d / "metrics.csv").open("a") as f:
        f.write("2,0.1,0.")
    summary = run(None, {"epochs": 2}, resume=d)
    assert summary["epochs_done"] == 2
    lines = (d / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(ln) for ln in lines)
    assert len((d / "metrics.csv").read_text().splitlines()) == 3          # header + 2 epochs


def test_run_killed_before_its_first_checkpoint_restarts(tmp_path):
    """What kill -9 during epoch 1 leaves: inputs and some step logs, no last.pt."""
    run(SPECS / "digits_resnet.res", {**FAST, "experiment": "k"}, tmp_path, args=TINY)
    d = tmp_path / "k"
    for name in ("last.pt", "best.pt", "metrics.csv", "summary.json"):
        (d / name).unlink()
    r = cli("train", "--resume", d)
    assert r.exit_code == 0, r.output
    assert "starting it again from epoch 1" in r.output and (d / "last.pt").is_file()


def test_resume_from_best_pt_is_refused_honestly(trained):
    path, _ = trained
    r = cli("train", "--resume", path / "best.pt")
    assert r.exit_code == 2 and "--init" in r.output


def test_corrupt_args_json_is_a_clean_error(tmp_path):
    (tmp_path / "args.json").write_text('{"epochs": 3, ')
    r = cli("train", "--resume", tmp_path)
    assert r.exit_code == 2 and "corrupt" in r.output


def test_resume_of_a_missing_directory(tmp_path):
    r = cli("train", "--resume", tmp_path / "nope")
    assert r.exit_code == 2 and "no such run directory" in r.output


def test_init_from_a_run_reports_matches(trained, tmp_path):
    path, _ = trained
    r = cli("train", SPECS / "digits_resnet.res", "--set", "width=8", "--set", "n=1", "--set", "classes=10",
            "--init", path / "best.pt", "--epochs", "1", "--output", tmp_path, "--experiment", "i")
    assert r.exit_code == 0, r.output
    assert "--init: copied" in r.output and "0 shape-mismatched" in r.output


def test_init_from_safetensors_with_another_head(tmp_path):
    """timm-style: the same body under a prefix, another classifier -> body copied, head reported."""
    import resdsl
    from safetensors.torch import save_file

    from resdsl.train.warmstart import init_from_file

    src = resdsl.compile(SPECS / "digits_resnet.res", width=8, n=1, classes=5)
    save_file({f"backbone.{k}": v.contiguous() for k, v in src.state_dict().items()}, tmp_path / "w.safetensors")
    dst = resdsl.compile(SPECS / "digits_resnet.res", width=8, n=1)
    report = init_from_file(dst, tmp_path / "w.safetensors")
    assert {k for k, _, _ in report.mismatched} == {"head.fc1.weight", "head.fc1.bias"}
    assert torch.equal(dst.stem.conv1.weight, src.stem.conv1.weight)


def test_init_by_module_order_from_a_foreign_state_dict(tmp_path):
    """torchvision-style names that share nothing with resdsl's: matched module by module in order."""
    import resdsl

    from resdsl.train.warmstart import init_from_file

    src = resdsl.compile(SPECS / "digits_resnet.res", width=8, n=1)
    groups, out = {}, {}
    for k, v in src.state_dict().items():
        mod, _, t = k.rpartition(".")
        groups.setdefault(mod, len(groups))
        out[f"layer{groups[mod]}.{t}"] = v
    torch.save(out, tmp_path / "tv.pth")
    dst = resdsl.compile(SPECS / "digits_resnet.res", width=8, n=1)
    report = init_from_file(dst, tmp_path / "tv.pth")
    assert report.by == "order" and not report.mismatched and len(report.copied) == len(out)
    assert all(torch.equal(a, b) for a, b in zip(dst.state_dict().values(), src.state_dict().values()))
