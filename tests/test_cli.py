"""`resdsl check`: the per-stage table, --json, --set, --network; errors exit non-zero."""
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import ROOT
from resdsl.cli import main

CIFAR = "specs/cifar_resnet.res"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(*args):
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_check_prints_a_table_per_stage_with_totals():
    r = run("check", CIFAR)
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") >= 5}
    assert list(rows) == ["stem", "stages.0", "stages.1", "stages.2", "head", "total"]
    assert "basic ×3" in rows["stages.0"] and "16×32×32" in rows["stages.0"]
    assert "64×8×8" in rows["stages.2"]
    assert "269,722" in rows["total"] and "40.55M" in rows["total"]
    assert "cifar_resnet(n=3, classes=10, skip=zeropad)" in r.stdout


def test_check_json_is_one_document():
    r = run("check", CIFAR, "--json", "--set", "n=5")
    doc = json.loads(r.stdout)
    assert doc["network"] == "cifar_resnet" and doc["args"]["n"] == 5
    assert doc["total_params"] == 464_154                      # He et al. Table 6: ResNet-32
    assert doc["input_shape"] == [3, 32, 32] and doc["output_shape"] == [10]
    assert [s["name"] for s in doc["sections"]] == ["stem", "stages.0", "stages.1", "stages.2", "head"]
    assert sum(s["params"] for s in doc["sections"]) == doc["total_params"]
    assert sum(s["macs"] for s in doc["sections"]) == doc["total_macs"]
    assert doc["sections"][2]["out_shape"] == [32, 16, 16]


@pytest.mark.parametrize("sets,params", [
    (["depth=18"], 11_689_512), (["depth=101"], 44_549_160),
    (["depth=50", "cardinality=32", "base_width=4"], 25_028_904), (["depth=50", "base_width=128"], 68_883_240),
    (["depth=18", "skip=projection_all"], 12_043_816), (["depth=18", "skip=none"], 11_515_688),
])
def test_check_set_overrides_parameters(sets, params):
    args = [a for s in sets for a in ("--set", s)]
    assert json.loads(run("check", "specs/resnet.res", "--json", *args).stdout)["total_params"] == params


def test_check_network_picks_one_of_several(tmp_path):
    spec = tmp_path / "two.res"
    body = "  input 1x8x8\n  stem { conv 4 k3 }\n  head { avgpool; fc 2 }\n}\n"
    spec.write_text("network a() {\n" + body + "network b() {\n" + body.replace("conv 4", "conv 8"))
    assert json.loads(run("check", str(spec), "--json").stdout)["network"] == "a"
    assert json.loads(run("check", str(spec), "--json", "--network", "b").stdout)["network"] == "b"
    r = run("check", str(spec), "--network", "c")
    assert r.exit_code == 1 and "unknown network 'c'" in r.stderr


@pytest.mark.parametrize("bad", ["depth", "=3", "2x=3"])
def test_set_needs_name_equals_value(bad):
    r = run("check", CIFAR, "--set", bad)
    assert r.exit_code == 1 and r.stderr.startswith("error: --set expects NAME=VALUE")


def test_errors_exit_1_without_a_traceback_in_a_real_process():
    r = subprocess.run([sys.executable, "-m", "resdsl", "check", "tests/cases/err/unknown_block.res"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (ROOT / "tests/cases/err/unknown_block.expected").read_text()


def test_front_end_does_not_import_torch():
    """Torch is a backend: parsing, checking and costing stay pure Python."""
    code = ("import sys, resdsl.api as a; a.graph('specs/resnet.res'); "
            "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "[]", r.stderr
