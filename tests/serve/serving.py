"""What the serve tests share: the spec they serve and the real `resdsl serve` in a subprocess.

A helper module rather than tests/serve/conftest.py: a second module named `conftest` would shadow
tests/conftest.py, which the test files import (`from conftest import ROOT`). pytest puts this folder
on sys.path (rootdir-less tests folders, the default `prepend` import mode), so `from serving import ...`.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SPEC = """network tiny(width = 16, classes = 10) {
  input 3x32x32
  stem { conv width k3; bn; relu }
  stage x 2 basic(width)
  stage x 2 basic(width * 2) stride 2
  head { avgpool; fc classes }
}
"""


@contextlib.contextmanager
def serve_process(root: Path):
    """`python -m resdsl serve ROOT --port 0` running; yields (process, URL) once it has printed its URL
    (which it does only once the socket accepts connections); stopped on exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "resdsl", "serve", str(root), "--port", "0"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
            if m:
                url = m.group(0)
                break
        if url is None:
            raise AssertionError("resdsl serve printed no URL: " + proc.stdout.read()[-2000:])
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
