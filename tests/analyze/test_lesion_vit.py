"""`resdsl analyze lesion RUN` on a trained ViT (Veit et al.'s question asked of a transformer):
a tiny ViT is trained on scikit-learn's 8×8 digits through `resdsl train`, then lesioned with one
command. The intact accuracy and loss are the run's own test evaluation (summary.json,
metrics.csv); a deletion is checked against the network with that unit's last layer zeroed by
hand, outside the lesion code."""
import csv
import json

import pytest
import torch

from conftest import run_cli

TINY_VIT = """
block attention_unit(heads) {
  residual { layernorm eps 1e-6; attention heads }
}
block mlp_unit(hidden) {
  residual { layernorm eps 1e-6; fc hidden; gelu; fc in }
}
network tiny_vit(depth = 2, width = 32, heads = 2, classes = 10) {
  input 1x8x8
  stem { conv width k2 s2 p0 bias; tokens; class_token; pos_embed }
  stage x depth [attention_unit(heads), mlp_unit(2 * width)]
  head { layernorm eps 1e-6; token 0; fc classes }
  init fc xavier_uniform bias normal 1e-6
  init attention qkv xavier_uniform bias zeros
  init head fc zeros bias zeros
}
"""
UNITS = [f"stages.0.blocks.{i}" for i in range(4)]


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    """A tiny ViT trained for 30 AdamW steps on digits (a few seconds)."""
    pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("vit")
    spec = out / "tiny_vit.res"
    spec.write_text(TINY_VIT)
    r = run_cli("train", spec, "--data", "digits", "--epochs", "1", "--max-steps", "30", "-b", "32", "--opt", "adamw",
                "--lr", "3e-3", "--wd", "0.05", "--output", out, "--experiment", "vit", "-q", "--device", "cpu", "-j", "0")
    assert r.exit_code == 0, r.output
    return out / "vit"


def test_lesion_of_a_trained_vit_is_one_command(vit_run):
    r = run_cli("analyze", "lesion", vit_run, "--max-k", "2", "--draws", "2", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    summary = json.loads((vit_run / "summary.json").read_text())
    # every unit present: the run's own test evaluation of best.pt
    assert doc["baseline_acc"] == summary["best_test_acc"]
    with open(vit_run / "metrics.csv") as f:
        best = next(row for row in csv.DictReader(f) if int(row["epoch"]) == summary["best_epoch"])
    assert doc["baseline_loss"] == pytest.approx(float(best["test_loss"]), abs=1e-4)
    # one row per attention and MLP unit, named by its definition
    assert list(doc["single_deletion_acc"]) == UNITS
    assert [doc["units"][u] for u in UNITS] == ["attention_unit", "mlp_unit"] * 2
    assert doc["not_lesioned"] == {}
    for u in UNITS:
        assert abs(doc["single_deletion_loss"][u] - doc["baseline_loss"]) > 1e-6, u
        assert 0 <= doc["single_deletion_acc"][u] <= 1
    assert {k: len(v["draws"]) for k, v in doc["random_deletion_acc"].items()} == {"1": 2, "2": 2}
    assert list(doc["adjacent_swap_acc"]) == [f"{a}<->{b}" for a, b in zip(UNITS, UNITS[1:])]


def test_deleting_a_vit_unit_is_zeroing_its_branch(vit_run):
    """Deleting an attention unit gives the loss of the network whose attention projects to zero:
    y = x + 0 (the unit's shortcut alone)."""
    from resdsl.analyze.common import load_run

    r = run_cli("analyze", "lesion", vit_run, "--max-k", "1", "--draws", "1", "--json")
    doc = json.loads(r.output)
    tr = load_run(str(vit_run), 1000)
    with torch.no_grad():
        proj = tr.model.get_submodule("stages.0.blocks.2.residual.attention1.proj")
        proj.weight.zero_()
        proj.bias.zero_()
        one = torch.nn.functional.cross_entropy(tr.model(tr.x), tr.y).item()
    assert doc["single_deletion_loss"]["stages.0.blocks.2"] == pytest.approx(one, abs=1e-5)
    assert one != pytest.approx(doc["baseline_loss"], abs=1e-6)


def test_lesion_table_names_the_units(vit_run):
    r = run_cli("analyze", "lesion", vit_run, "--max-k", "1", "--draws", "1")
    assert r.exit_code == 0, r.output
    assert "delete stages.0.blocks.0 (attention_unit)" in r.output
    assert "delete stages.0.blocks.1 (mlp_unit)" in r.output and "test loss" in r.output
    r = run_cli("analyze", "lesion")
    assert r.exit_code != 0 and "needs a trained run" in r.output
