"""Trust, third pass (issue 21): one regression test per class of failure.

Security: no field of any file resdsl reads names a file for it to read. Schema: every checkpoint
field of the wrong type is one line. Bounds: a checkpoint's archive cannot expand past its size.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from resdsl import api
from resdsl.cli import main
from conftest import emitted_twin

NET = "network n() {\n  input 1x8x8\n  stem { conv 4 k3; bn; relu }\n  head { avgpool; fc 10 }\n}\n"
SECRET = "hunter2-token-do-not-print"


def cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


def checkpoint(tmp_path: Path, **fields) -> Path:
    model = api.compile(NET)
    ck = {"model": model.state_dict(), "spec_text": NET, "config": {"data": "digits", "params": {}},
          "mean": [0.5], "std": [0.25], "epoch": 0}
    ck.update(fields)
    path = tmp_path / "run" / "best.pt"
    path.parent.mkdir(exist_ok=True)
    torch.save(ck, path)
    return path


def test_a_valid_hand_made_checkpoint_evaluates(tmp_path):
    r = cli("eval", "--checkpoint", checkpoint(tmp_path), "--json")
    assert r.exit_code == 0, r.output


@pytest.fixture
def secret(tmp_path):
    p = tmp_path / "secret.txt"
    p.write_text(SECRET + "\n")
    return p


@pytest.mark.parametrize("field", ["spec_text", "spec_text_res", "bundle_main", "data"])
@pytest.mark.parametrize("command", ["eval", "analyze"])
def test_no_checkpoint_field_names_a_file_to_read(tmp_path, secret, field, command, monkeypatch):
    """Every string a checkpoint holds is data: spec text is text (never a path), a bundle's files are
    its own, a dataset naming a path must be named by the user. Reading is spied on, too."""
    spec = tmp_path / "elsewhere.res"
    spec.write_text(NET)
    fields = {"spec_text": {"spec_text": str(secret)},
              "spec_text_res": {"spec_text": str(spec)},
              "bundle_main": {"spec_bundle": {"main": str(secret), "files": {"x.res": NET}}},
              "data": {"config": {"data": f"npz:{secret}", "params": {}}}}[field]
    path = checkpoint(tmp_path, **fields)
    opened = []
    real_open = Path.read_bytes, Path.read_text

    def spy(original):
        def read(self, *a, **k):
            opened.append(str(self))
            return original(self, *a, **k)
        return read
    monkeypatch.setattr(Path, "read_bytes", spy(real_open[0]))
    monkeypatch.setattr(Path, "read_text", spy(real_open[1]))
    args = ["eval", "--checkpoint", path] if command == "eval" else ["analyze", "lesion", "--checkpoint", path]
    r = cli(*args)
    assert r.exit_code != 0, r.output
    assert SECRET not in r.output
    assert str(secret) not in opened and str(spec) not in opened, opened


BAD_FIELDS = [
    ("model", 3), ("model", [1, 2]), ("model", {"w": "x"}), ("mean", "0.5"), ("std", []), ("std", [0.0]),
    ("mean", [float("nan")]), ("config", 7), ("config", {"data": 3}), ("config", {"params": [1]}),
    ("config", {"network": ["n"]}), ("config", {"params": {"d": {"x": 1}}}), ("spec_text", 5),
    ("spec_bundle", {"main": 1, "files": {}}), ("spec_bundle", {"main": "a", "files": {"a": 3}}),
    ("grow", [1]), ("epoch", "1"), ("mean", [0.5, 0.5]),
]


@pytest.mark.parametrize("name,value", BAD_FIELDS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_FIELDS)])
def test_every_checkpoint_field_of_the_wrong_type_is_one_line(tmp_path, name, value):
    path = checkpoint(tmp_path, **{name: value})
    spec = tmp_path / "n.res"
    spec.write_text(NET)
    for args in (["eval", "--checkpoint", path], ["analyze", "lesion", "--checkpoint", path],
                 ["compile", spec, "--checkpoint", path, "-o", tmp_path / "m.safetensors"]):
        r = cli(*args)
        assert r.exit_code != 0, (args, r.output)
        lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and "error" in lines[0], r.output
        assert name in lines[0], r.output


def test_a_compressed_checkpoint_is_refused_before_it_expands(tmp_path):
    """torch.save stores its members; a deflated member (a zip bomb) is refused from its header."""
    good = checkpoint(tmp_path)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("run/data/999", b"\0" * (64 << 20))        # 64 MB of zeros in ~64 KB
    assert bomb.stat().st_size < 1 << 20
    r = cli("eval", "--checkpoint", bomb)
    assert r.exit_code != 0 and "compressed" in r.output, r.output


# -- the one safe writer (resdsl/atomic.py): fmt keeps mode and owner, never loses an edit ---------

UGLY = "network n() {\ninput 1x8x8\n    stem {conv 4 k3;bn;relu}\n head { avgpool; fc 10 }\n}\n"


def _ugly(tmp_path, mode=0o644) -> Path:
    p = tmp_path / "u.res"
    p.write_text(UGLY)
    p.chmod(mode)
    return p


@pytest.mark.parametrize("mode", [0o600, 0o444, 0o755, 0o640])
def test_fmt_keeps_the_files_mode(tmp_path, mode):
    p = _ugly(tmp_path, mode)
    r = cli("fmt", p)
    assert r.exit_code == 0, r.output
    assert p.read_text() != UGLY and oct(p.stat().st_mode & 0o7777) == oct(mode)
    assert [f.name for f in tmp_path.iterdir()] == ["u.res"]          # no temporary left behind


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root")
def test_fmt_keeps_the_files_owner(tmp_path):
    p = _ugly(tmp_path)
    os.chown(p, 1234, 4321)
    assert cli("fmt", p).exit_code == 0
    assert (p.stat().st_uid, p.stat().st_gid) == (1234, 4321)


def test_fmt_never_overwrites_an_edit_saved_while_it_runs(tmp_path, monkeypatch):
    import resdsl.source.fmt as fmt_mod

    p = _ugly(tmp_path)
    real = fmt_mod.format_text

    def slow_format(text, name):
        out = real(text, name)
        p.write_text(UGLY + "# the user's edit\n")                  # saved while fmt was formatting
        return out
    monkeypatch.setattr(fmt_mod, "format_text", slow_format)
    r = cli("fmt", p)
    assert r.exit_code == 1 and "changed since it was read" in r.output, r.output
    assert p.read_text().endswith("# the user's edit\n")
    assert len(r.output.strip().splitlines()) == 1


def test_fmt_on_a_symlink_is_refused_naming_the_target(tmp_path):
    p = _ugly(tmp_path)
    link = tmp_path / "link.res"
    link.symlink_to(p)
    r = cli("fmt", link)
    assert r.exit_code == 1 and "symbolic link" in r.output and str(p) in r.output, r.output
    assert link.is_symlink() and p.read_text() == UGLY


def test_a_full_disk_is_one_line_and_leaves_the_file(tmp_path, monkeypatch):
    """ENOSPC while writing the temporary (simulated): fmt, compile -o and render all say so, once."""
    import errno

    p = _ugly(tmp_path)
    real = Path.write_bytes

    def full(self, data):
        real(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", full)
    r = cli("fmt", p)
    assert r.exit_code == 1 and "no space left" in r.output.lower(), r.output
    assert len(r.output.strip().splitlines()) == 1
    assert p.read_text() == UGLY and [f.name for f in tmp_path.iterdir()] == ["u.res"]


# -- emitted Python: names collision-free by construction (backend/pynames.py) ---------------------

FLOW = """block b(w) {{
  residual {{
    {body}
  }}
}}
network n() {{
  input 4x6x6
  stage x 1 b(4)
  head {{ avgpool; fc 3 }}
}}
"""
BODIES = [
    # `h` given again becomes h%2; the user's own h_2 must stay a different variable
    "conv w k3 -> h; conv w k1 -> h; conv w k3 -> h_2; add h h_2; conv w k1 -> t_2; add t_2 h",
    # names that are Python: the module, `self`, keywords, builtins, the helpers' names
    "conv w k3 -> torch; conv w k1 -> self; conv w k3 -> class; add torch self class -> nn; relu -> F; "
    "conv w k1 -> len; add nn F len",
    "conv w k3 -> self_; conv w k3 -> self; conv w k1 -> class_; add self_ self class_ -> x_; "
    "conv w k1 -> class; add x_ class",
]


@pytest.mark.parametrize("body", BODIES, ids=["renamed", "python-names", "suffixed"])
def test_emitted_python_computes_the_same_network(body):
    spec = FLOW.format(body=body)
    torch.manual_seed(0)
    model = api.compile(spec).eval()
    twin = emitted_twin(model).eval()
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), twin(x), atol=1e-6, rtol=0)


def test_name_allocator_never_gives_one_name_twice():
    from resdsl.backend.pynames import RESERVED, Names

    keys = ["h", "h%2", "h_2", "%2", "t_2", "torch", "self", "class", "x", "x%2", "x_2", "self_", "len", "h%2"]
    names = Names(fixed={"x": "x"})
    got = {k: names(k) for k in keys}
    assert len(set(got.values())) == len(got)           # distinct keys, distinct names
    assert all(v.isidentifier() and v not in RESERVED for k, v in got.items() if k != "x")
    assert names("h%2") == got["h%2"]                    # stable


# -- non-finite numbers never enter the IR (values.finite, clauses.in_range) -----------------------

def _float_attrs():
    from resdsl.ir import ops

    return [(k, a.name) for k, o in ops.OPS.items() for a in o.attrs
            if a.type in (float, ops.NUM) and k in ("bn", "layernorm", "groupnorm", "layer_scale", "leaky_relu")]


@pytest.mark.parametrize("kind,attr", _float_attrs())
@pytest.mark.parametrize("value", ["1e999", "-1e999", "1e999 - 1e999", "sum([1e308, 1e308])", "1e300", "float(\"inf\")"])
def test_every_float_attribute_refuses_non_finite_numbers(kind, attr, value):
    from resdsl.errors import SpecError

    pre = "groupnorm 2 " if kind == "groupnorm" else f"{kind} "
    stem = f"conv 4 k3; {pre}{attr} ({value})"
    spec = f"network n() {{\n  input 4x8x8\n  stem {{ {stem} }}\n  head {{ avgpool; fc 3 }}\n}}\n"
    with pytest.raises(SpecError) as e:
        api.graph_of(api.load_spec(spec))
    assert e.value.span is not None and e.value.span.line == 3, e.value.render()


# -- data loss: a killed sweep setting runs again; one run per experiment directory ----------------

ROOT = Path(__file__).resolve().parents[1]


def _sweep(out, *extra):
    return CliRunner().invoke(main, ["sweep", str(ROOT / "specs/digits_resnet.res"), "--grid", "n=1",
                                     "--set", "width=4", "--epochs", "1", "--device", "cpu", "-j", "0",
                                     "--output", str(out), "--json", *extra])


def test_a_sweep_killed_before_its_first_checkpoint_runs_again(tmp_path, monkeypatch):
    import importlib
    import json

    fit = importlib.import_module("resdsl.train.fit")

    real = fit._train

    def killed(*a, **k):
        raise KeyboardInterrupt                 # after the inputs are written, before any checkpoint
    monkeypatch.setattr(fit, "_train", killed)
    out = tmp_path / "sw"
    r = _sweep(out)
    assert r.exit_code != 0
    run = out / "width=4_n=1"
    assert (run / "args.json").is_file() and not (run / "last.pt").exists()
    monkeypatch.setattr(fit, "_train", real)
    r = _sweep(out)
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)["settings"]
    assert row["status"] == "completed" and row["epochs_done"] == 1


def test_two_runs_claiming_one_experiment_at_once_get_it_exactly_once(tmp_path):
    import threading

    from resdsl.train.errors import TrainError
    from resdsl.train.rundir import claim_run_dir

    for attempt in range(5):                     # an empty folder made beforehand, and none
        if attempt % 2:
            (tmp_path / str(attempt) / "exp").mkdir(parents=True)
        barrier, won, lost = threading.Barrier(6), [], []

        def claim():
            barrier.wait()
            try:
                path, lock = claim_run_dir(str(tmp_path / str(attempt)), "exp")
                (path / "args.json").write_text("{}")     # the winner writes its inputs and may
                lock.release()                            # even finish before a slower one locks
                won.append(path)
            except TrainError as e:
                lost.append(str(e))
        threads = [threading.Thread(target=claim) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and len(lost) == 5, (won, lost)
        assert all("exists" in m or "in use" in m for m in lost), lost


def test_sweep_on_ray_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.exceptions", None)
    r = _sweep(tmp_path / "sw", "--backend", "ray")
    assert r.exit_code == 1 and "pip install" in r.output and "Traceback" not in r.output, r.output


def test_ctrl_c_during_start_up_exits_130_without_a_traceback(monkeypatch):
    """A KeyboardInterrupt while a lazy command is imported (torch loading) is 'interrupted', 130."""
    import importlib

    real = importlib.import_module

    def slow_import(name, *a):
        if name == "resdsl.train.cli":
            raise KeyboardInterrupt
        return real(name, *a)
    monkeypatch.setattr(importlib, "import_module", slow_import)
    from resdsl.cli import main as group

    group.commands.pop("eval", None)
    r = CliRunner().invoke(group, ["eval", "--checkpoint", "x"])
    assert r.exit_code == 130 and "interrupted" in r.output and "Traceback" not in r.output, r.output


def test_training_a_network_that_outputs_a_map_is_refused_at_the_head(tmp_path):
    spec = tmp_path / "nopool.res"
    spec.write_text("network n() {\n  input 1x8x8\n  stem { conv 4 k3; bn; relu }\n  head { conv 10 k1 }\n}\n")
    r = cli("train", spec, "--data", "digits", "--epochs", "1", "--output", tmp_path / "runs")
    assert r.exit_code == 1, r.output
    assert f"{spec}:4:10: error: training needs one score per class" in r.output and "avgpool" in r.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_hessian_reports_progress_and_still_matches_autograd():
    """`analyze hessian` calls progress once per Hessian-vector product; the row-by-row exact Hessian
    equals torch.autograd.functional.hessian's."""
    from resdsl.analyze.hessian import loss_fn, spectrum

    model = api.compile("network n() {\n  input 2x4x4\n  stem { conv 3 k1 }\n  head { avgpool; fc 2 }\n}\n")
    ticks = []
    s = spectrum(model, progress=lambda d, t: ticks.append((d, t)))
    n = sum(p.numel() for p in model.parameters())
    assert ticks[-1] == (n, n) and len(ticks) == n
    theta, loss = loss_fn(model)
    ev = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, theta)).abs()
    assert s.as_dict()["max_abs_eigenvalue"] == pytest.approx(ev.max().item(), rel=1e-9)
    assert s.as_dict()["min_abs_eigenvalue"] == pytest.approx(ev.min().item(), rel=1e-6, abs=1e-12)


def test_compile_checkpoint_to_python_carries_the_trained_weights_and_normalisation(tmp_path):
    """model.py (+ the model.safetensors it loads) computes what the trained run computes from raw
    input; the .safetensors of `compile --checkpoint -o X.safetensors` loads into it too."""
    import importlib.util

    from resdsl.exporters import Normalized
    from resdsl.train.restore import load_run

    torch.manual_seed(1)
    model = api.compile(NET)
    for p in model.parameters():
        p.data.normal_()
    path = checkpoint(tmp_path, model=model.state_dict(), mean=[0.3], std=[0.2])
    spec = tmp_path / "n.res"
    spec.write_text(NET)
    r = cli("compile", spec, "--checkpoint", path, "-o", tmp_path / "m.py")
    assert r.exit_code == 0 and "m.safetensors, which build() loads" in r.output, r.output
    r = cli("compile", spec, "--checkpoint", path, "-o", tmp_path / "other.safetensors")
    assert r.exit_code == 0, r.output
    mod_spec = importlib.util.spec_from_file_location("m_trained", tmp_path / "m.py")
    m = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(m)
    twin = m.build()
    from safetensors.torch import load_file

    twin.load_state_dict(load_file(tmp_path / "other.safetensors"))      # the same keys
    trained, _ = load_run(path)
    ref = Normalized(trained, [0.3], [0.2]).eval()
    x = torch.rand(3, 1, 8, 8) * 255
    with torch.no_grad():
        assert torch.allclose(twin(x), ref(x), atol=1e-5) and not torch.allclose(twin(x), trained(x), atol=1e-3)


DEEP = {"pow": "1 ** " * 3000 + "1", "conditional": "true ? 1 : " * 3000 + "2", "neg": "- " * 3000 + "1",
        "not": "not " * 3000 + "true ? 1 : 2", "sum": "1 + " * 20000 + "1", "brackets": "(" * 100 + "1" + ")" * 100}


@pytest.mark.parametrize("form", DEEP)
def test_deeply_nested_expressions_are_located_errors_never_recursion(form):
    from resdsl.errors import SpecError

    spec = "network n() {\n  input 4x8x8\n  let a = " + DEEP[form] + "\n  stem { conv 4 k3 }\n  head { avgpool; fc 3 }\n}\n"
    with pytest.raises(SpecError) as e:
        api.graph_of(api.load_spec(spec))
    assert e.value.span is not None and e.value.span.line == 3 and "nesting" in e.value.render()


@pytest.mark.parametrize("doc", ["{not json", "[1, 2]", '{"status": 3}', '{"epochs_done": "1"}'])
def test_a_corrupt_run_summary_is_one_line(tmp_path, doc):
    from resdsl.train.errors import TrainError
    from resdsl.train.rundir import read_summary

    (tmp_path / "summary.json").write_text(doc)
    with pytest.raises(TrainError, match="summary.json is corrupt"):
        read_summary(tmp_path)
