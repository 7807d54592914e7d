"""`check` and `profile` show stochastic depth where a spec sets it: per stage the range of drop
probabilities of its units, against torchvision's EfficientNet-B0 (its MBConv blocks' StochasticDepth p,
counted only where the block has a residual connection: a block without one never drops)."""
import json

import pytest
from click.testing import CliRunner

from resdsl.cli import main

torchvision = pytest.importorskip("torchvision")


def _torchvision_ranges() -> dict[str, list[float]]:
    m = torchvision.models.efficientnet_b0()
    out = {}
    for i, stage in enumerate(m.features[1:-1]):
        probs = [b.stochastic_depth.p if b.use_res_connect else 0.0 for b in stage]
        if max(probs) > 0:
            out[f"stages.{i}"] = [min(probs), max(probs)]
    return out


def test_check_json_gives_each_stage_its_drop_path_range():
    r = CliRunner().invoke(main, ["check", "efficientnet_b0", "--json"])
    assert r.exit_code == 0, r.output
    got = {s["name"]: s["drop_path"] for s in json.loads(r.output)["sections"] if "drop_path" in s}
    want = _torchvision_ranges()
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k


def test_tables_show_a_drop_path_column_only_where_a_unit_drops():
    r = CliRunner().invoke(main, ["check", "efficientnet_b0"])
    assert r.exit_code == 0 and "drop path" in r.output and "0–0.025" in r.output
    r = CliRunner().invoke(main, ["profile", "efficientnet_b0", "--level", "block", "--json"])
    rows = {x["name"]: x for x in json.loads(r.output)["rows"]}
    assert rows["stages.5.blocks.3"]["drop_path"] == pytest.approx([0.175, 0.175])
    assert "drop_path" not in rows["stages.5.blocks.0"]            # no residual connection: never dropped
    r = CliRunner().invoke(main, ["check", "resnet18"])
    assert r.exit_code == 0 and "drop path" not in r.output
