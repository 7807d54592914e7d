"""A normal install works: the wheel holds the zoo specs, the grammar and the prelude, so from any
folder `resdsl list --names`, `resdsl check resnet50` and `resdsl train digits_resnet` run.

The wheel is built with `pip wheel . --no-deps` and installed with --no-deps into a fresh venv
that sees this interpreter's packages (torch and the rest) through a .pth line placed after its
own site-packages, so the `resdsl` it imports is the wheel's, never this checkout.
"""
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import ROOT


def _run(cmd, cwd, env=None, timeout=300):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder of a fresh venv holding the built wheel, a clean environment, an empty folder)."""
    pytest.importorskip("hatchling")          # the build backend (pyproject.toml), used without isolation
    tmp = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist"],
         cwd=tmp)
    (wheel,) = (tmp / "dist").glob("resdsl-*.whl")
    venv.create(tmp / "venv", with_pip=False)
    bin_dir = tmp / "venv" / ("Scripts" if os.name == "nt" else "bin")
    py = bin_dir / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).strip())
    (site / "zz_host_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "-q", wheel], cwd=tmp, env=env)
    work = tmp / "elsewhere"
    work.mkdir()
    where = _run([py, "-c", "import resdsl; print(resdsl.__file__)"], cwd=work, env=env)
    assert str(site) in where, where                # the wheel's copy, not this checkout
    return bin_dir, env, work


def test_wheel_lists_the_zoo(installed):
    bin_dir, env, work = installed
    names = _run([bin_dir / "resdsl", "list", "--names"], cwd=work, env=env).split()
    assert {"resnet50", "digits_resnet", "densenet121", "regnet_y_400mf"} <= set(names)


def test_wheel_checks_a_zoo_name(installed):
    bin_dir, env, work = installed
    out = _run([bin_dir / "resdsl", "check", "resnet50", "--json"], cwd=work, env=env)
    assert '"total_params": 25557032' in out            # torchvision's resnet50


def test_wheel_trains(installed):
    bin_dir, env, work = installed
    _run([bin_dir / "resdsl", "train", "digits_resnet", "--set", "width=8", "--set", "n=1", "--epochs", "1",
          "--output", work / "runs"], cwd=work, env=env, timeout=600)
    assert any((work / "runs").glob("*/metrics.jsonl")) or any((work / "runs").iterdir())


def test_wheel_registers_the_pygments_lexer(installed):
    """pyproject's entry point names the lexer where it lives (resdsl/source/highlight.py)."""
    bin_dir, env, work = installed
    code = "from pygments.lexers import get_lexer_by_name as g; print(type(g('resdsl')).__module__)"
    assert _run([bin_dir / "python", "-c", code], cwd=work, env=env).strip() == "resdsl.source.highlight"
