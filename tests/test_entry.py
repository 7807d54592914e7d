"""Ctrl-C at any moment after start-up, the CLI's own imports included, exits 130 with one line.

The launchers are the console script as pip writes it for `[project.scripts]` in pyproject.toml
and `python -m resdsl`, each in a real process that gets a real SIGINT. A stall hook on sys.meta_path
holds the import of one module (a dependency the CLI imports, or torch in a lazy command) until the
signal comes, so it lands inside that import on any machine; the timed cases send it a few moments
after the CLI's import begins.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

HOOK = """\
import sys, time
class _Stall:
    def find_spec(self, name, path=None, target=None):
        if name == {name!r}:
            sys.stdout.write("importing " + name + "\\n")
            sys.stdout.flush()
            if {stall!r}:
                time.sleep(60)              # the SIGINT arrives here, inside the import
        return None
sys.meta_path.insert(0, _Stall())
"""


def console_script() -> str:
    """The script pip writes for the `resdsl` entry of [project.scripts] (pip's template)."""
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r'^\[project\.scripts\]\s*\nresdsl\s*=\s*"([\w.]+):(\w+)"', text, re.M)
    assert m, "no `resdsl = \"module:function\"` under [project.scripts]"
    module, func = m.groups()
    return f"import sys\nfrom {module} import {func}\nif __name__ == '__main__':\n    sys.exit({func}())\n"


LAUNCHERS = {
    "console script": console_script,
    "python -m resdsl": lambda: "import runpy\nrunpy.run_module('resdsl', run_name='__main__', alter_sys=True)\n",
}


def interrupt(launcher: str, args: list[str], module: str, stall: bool, delay: float = 0.0):
    """Run LAUNCHER ARGS; when `module` starts importing (and `delay` s later), send SIGINT. (rc, stderr)"""
    code = HOOK.format(name=module, stall=stall) + LAUNCHERS[launcher]()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert line == f"importing {module}\n", (line, proc.stderr.read() if proc.poll() is not None else "")
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


@pytest.mark.parametrize("launcher", LAUNCHERS)
@pytest.mark.parametrize("module, args", [
    ("click", ["fmt", "-"]),              # the CLI's first dependency
    ("networkx", ["fmt", "-"]),           # deep in resdsl.api's imports (the package's own API)
    ("torch", ["train", "--help"]),       # a lazy command importing torch
])
def test_ctrl_c_inside_an_import_is_one_line_and_130(launcher, module, args):
    rc, err = interrupt(launcher, args, module, stall=True)
    assert rc == 130 and "Traceback" not in err and err.strip() == "interrupted", (rc, err)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.6])
def test_ctrl_c_moments_after_the_cli_starts_importing(delay):
    """Wherever the signal lands (an import, click's start, `fmt -` waiting on stdin): 130, one line."""
    rc, err = interrupt("console script", ["fmt", "-"], "resdsl.cli", stall=False, delay=delay)
    assert rc == 130 and "Traceback" not in err and err.strip() == "interrupted", (rc, err)
