"""`resdsl profile`: tables, --json schema, --check, --run (values sane, not timed), --vs."""
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import ROOT, SPECS
from resdsl.cli import main

CIFAR = str(SPECS / "cifar_resnet.res")
RESNET = str(SPECS / "resnet.res")
ROW_KEYS = {"name", "what", "out_shape", "params", "params_pct", "macs", "flops", "activation_bytes", "rf", "stride"}


def profile(*args, ok=True):
    result = CliRunner().invoke(main, ["profile", *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_stage_table_by_default():
    out = profile(RESNET).output
    for word in ("stages.3", "bottleneck ×3", "4.089G", "8.178G", "25,557,032", "427", "global", "MACs", "FLOPs"):
        assert word in out


def test_json_schema():
    d = json.loads(profile(CIFAR, "--set", "n=1", "--json", "--level", "block", "--batch-size", "4").output)
    assert d["schema"] == "resdsl.profile/1"
    assert {"network", "args", "input_shape", "output_shape", "level", "batch_size", "precision",
            "conventions", "totals", "stages", "rows", "spec"} <= set(d)
    assert d["args"] == {"n": 1, "classes": 10, "skip": "zeropad"}
    assert d["level"] == "block" and d["batch_size"] == 4
    assert [r["name"] for r in d["rows"]] == ["stem", "stages.0.blocks.0", "stages.1.blocks.0",
                                              "stages.2.blocks.0", "head"]
    assert all(set(r) == ROW_KEYS for r in d["rows"])
    assert set(d["totals"]) == ROW_KEYS - {"name", "what"} | {"param_bytes"}
    assert d["totals"]["params"] == 75_290 and d["output_shape"] == [10]
    assert [(s["name"], s["rf"], s["stride"]) for s in d["stages"]] == [
        ("stages.0", 7, 1), ("stages.1", 13, 2), ("stages.2", 25, 4)]


@pytest.mark.parametrize("spec,sets", [(CIFAR, ["--set", "n=1"]), (RESNET, ["--set", "depth=18"])],
                         ids=["cifar_resnet", "resnet18"])
def test_check_agrees_with_flop_counter(spec, sets):
    out = profile(spec, *sets, "--check", "--json").output
    c = json.loads(out)["check"]
    assert c["ok"] and c["layers"] == []
    kinds = {k["kind"]: k for k in c["by_kind"]}
    assert set(kinds) == {"conv", "fc"} and all(k["diff"] == 0 and k["graph"] > 0 for k in kinds.values())
    assert "MACs agree" in profile(spec, *sets, "--check").output


def test_check_reports_a_difference_per_kind_and_layer():
    import resdsl
    from resdsl.cost.crosscheck import cross_check

    net = resdsl.load_spec(CIFAR, n=1)
    g = resdsl.graph_of(net)
    g.nodes["stem.conv1"]["macs"] += 5        # as if ops.py had a wrong formula
    c = cross_check(resdsl.compile(CIFAR, n=1), g)
    assert not c["ok"]
    assert [k["diff"] for k in c["by_kind"] if k["kind"] == "conv"] == [-5]
    assert c["layers"] == [{"layer": "stem.conv1", "graph": 442_373, "counted": 442_368, "diff": -5}]


def test_run_on_cpu_gives_sane_values():
    d = json.loads(profile(CIFAR, "--set", "n=1", "--run", "--json", "--batch-size", "2",
                           "--repeats", "2", "--warmup", "1").output)
    m = d["measured"]
    assert m["settings"] == {"device": "cpu", "batch_size": 2, "precision": "fp32", "channels_last": False,
                             "compile": False, "repeats": 2, "warmup": 1}
    for mode in ("forward", "forward_backward"):
        assert len(m[mode]["times_ms"]) == 2 and m[mode]["latency_ms"] > 0
        assert m[mode]["throughput"] == pytest.approx(2 / (m[mode]["latency_ms"] / 1e3))
    assert m["peak_memory"]["bytes"] > 10 << 20                       # a process with torch loaded


def test_run_options_bf16_channels_last_table():
    out = profile(CIFAR, "--set", "n=1", "--run", "--batch-size", "2", "--repeats", "1", "--warmup", "0",
                  "--precision", "bf16", "--channels-last").output
    assert "bf16, channels-last" in out and "forward+backward" in out and "peak memory" in out


def test_vs_side_by_side_with_ratios():
    out = profile(CIFAR, "--set", "n=1", "--vs", CIFAR, "--vs-set", "n=2", "--level", "block").output
    assert "stages.0.blocks.1" in out and "B / A" in out
    d = json.loads(profile(CIFAR, "--set", "n=1", "--vs", CIFAR, "--vs-set", "n=2", "--json").output)
    assert d["schema"] == "resdsl.profile/1+vs"
    assert d["a"]["args"]["n"] == 1 and d["b"]["args"]["n"] == 2
    assert d["ratios_b_over_a"]["params"] == pytest.approx(172_506 / 75_290)


def test_vs_run_measures_both_interleaved():
    d = json.loads(profile(CIFAR, "--set", "n=1", "--vs", CIFAR, "--run", "--json", "--batch-size", "2",
                           "--repeats", "2", "--warmup", "0").output)
    assert "measured" in d["a"] and "measured" in d["b"]
    assert "fwd+bwd throughput /s" in d["ratios_b_over_a"]


def test_usage_errors():
    r = profile(CIFAR, "--vs-set", "n=2", ok=False)
    assert r.exit_code == 2 and "--vs-set and --vs-network need --vs" in r.output
    r = profile(CIFAR, "--set", "n=-1", ok=False)
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_static_profile_does_not_import_torch():
    code = ("import sys; from resdsl.cli import main\n"
            f"main(['profile', {RESNET!r}, '--json', '--level', 'layer'], standalone_mode=False)\n"
            "assert 'torch' not in sys.modules, 'static profiling imported torch'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
