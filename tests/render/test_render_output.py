"""resdsl render for real: SVG, PNG and PDF from Graphviz `dot`, and the path without `dot`."""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from resdsl.cli import main
from resdsl.render.styles import SHORTCUT_STYLES

from conftest import ROOT, SPECS

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
SVG = "{http://www.w3.org/2000/svg}"


def draw(tmp_path, name, *args):
    out = tmp_path / name
    res = CliRunner().invoke(main, ["render", *args, "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


@needs_dot
def test_svg_has_styled_shortcut_edges(tmp_path):
    out = draw(tmp_path, "c.svg", str(SPECS / "cifar_resnet.res"), "--level", "block")
    root = ET.parse(out).getroot()
    edges = [g for g in root.iter(f"{SVG}g") if "shortcut" in g.get("class", "").split()]
    drawn = {}
    for g in edges:
        if "legend" in g.get("class").split():
            continue
        kind = g.get("class").split()[-1]
        path = g.find(f"{SVG}path")
        drawn.setdefault(kind, []).append((path.get("stroke"), path.get("stroke-dasharray")))
    assert sorted(drawn) == ["identity", "zeropad"] and len(drawn["zeropad"]) == 2 and len(drawn["identity"]) == 7
    assert set(drawn["zeropad"]) == {(SHORTCUT_STYLES["zeropad"].color, "5,2")}        # dashed blue
    assert set(drawn["identity"]) == {(SHORTCUT_STYLES["identity"].color, None)}       # solid
    texts = [(t.text or "").strip() for t in root.iter(f"{SVG}text")]
    assert "zero-pad to 32 ch, s2" in texts and "32×16×16" in texts


@needs_dot
@pytest.mark.parametrize("ext,magic", [("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF-")])
def test_png_and_pdf(tmp_path, ext, magic):
    out = draw(tmp_path, f"r.{ext}", str(SPECS / "resnet.res"), "--set", "depth=152", "--rankdir", "LR")
    data = out.read_bytes()
    assert data.startswith(magic) and 10_000 < len(data) < 5_000_000


@needs_dot
def test_png_size_is_sensible(tmp_path):
    """ResNet-1202 at the default level stays a poster, not a 16,000-pixel strip."""
    data = draw(tmp_path, "r.png", str(SPECS / "cifar_resnet.res"), "--set", "n=200").read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 300 < width < 4000 and 300 < height < 4000


def test_without_dot_writes_dot_text_and_fails(tmp_path):
    """`dot` hidden from PATH: the DOT text is kept, the exit is non-zero, the hint says how to install."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "PYTHONPATH": str(ROOT)}
    out = tmp_path / "r.svg"
    script = ("import sys; from resdsl.cli import main\n"
              "try: main(sys.argv[1:])\n"
              "finally: print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)")
    res = subprocess.run([sys.executable, "-c", script, "render", str(SPECS / "resnet.res"), "-o", str(out)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr
    assert "`dot` was not found" in res.stderr
    assert "apt-get install graphviz" in res.stderr and "brew install graphviz" in res.stderr
    assert "no torch" in res.stderr                           # rendering is pure Python
    assert not out.exists() and (tmp_path / "r.dot").read_text().startswith("digraph resdsl {")
