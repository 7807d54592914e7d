"""The zoo: every network of every spec in specs/ is checked, compiled, run, and costed against a golden table."""
import pytest
import torch
from click.testing import CliRunner

import resdsl
from conftest import ROOT, SPECS
from resdsl.zoo.catalog import zoo

GOLDEN = ROOT / "tests" / "golden" / "zoo.tsv"
ENTRIES = zoo(SPECS)
MAX_COMPILED = 30_000_000          # bigger nets are graph-checked only (CI time and memory)


def test_every_spec_is_in_the_zoo():
    assert {e.family for e in ENTRIES} == {p.stem for p in SPECS.glob("*.res")}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_compiles_and_runs(entry):
    """A finite forward pass with the output shape and parameter count the graph predicted."""
    if entry.params > MAX_COMPILED:
        pytest.skip(f"{entry.params:,} parameters: graph-checked only")
    g = resdsl.graph(entry.spec, entry.name)
    model = resdsl.compile(entry.spec, entry.name).eval()
    assert sum(p.numel() for p in model.parameters()) == entry.params
    torch.manual_seed(0)
    with torch.no_grad():
        y = model(torch.randn(1, *entry.input_shape))
    assert tuple(y.shape[1:]) == tuple(g.nodes[g.graph["output"]]["out_shape"])
    assert torch.isfinite(y).all()


def _table() -> str:
    rows = ["name\tfamily\tparams\tmacs\tinput"]
    rows += [f"{e.name}\t{e.family}\t{e.params}\t{e.macs}\t{'x'.join(map(str, e.input_shape))}" for e in ENTRIES]
    return "\n".join(rows) + "\n"


def test_golden_cost_table(update_golden):
    """Parameters and MACs of every zoo network (regenerate with --update-golden, review the diff)."""
    table = _table()
    if update_golden:
        GOLDEN.write_text(table)
    assert GOLDEN.exists(), f"{GOLDEN} is missing: write it with --update-golden and review it"
    assert table == GOLDEN.read_text()


def test_every_family_names_its_paper_and_reference():
    for e in ENTRIES:
        if e.family in ("cifar_resnet", "digits_resnet"):
            continue                       # the tutorial specs predate the header convention
        assert e.title and e.reference, f"{e.spec}: header comment or '# reference:' line missing"
        assert "Known difference" in (SPECS / f"{e.family}.res").read_text(), e.spec


def test_list_command():
    from resdsl.cli import main

    result = CliRunner().invoke(main, ["list", "--json"])
    assert result.exit_code == 0, result.output
    import json
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["densenet"]["params"] == 7_978_856 and rows["densenet"]["input_shape"] == [3, 224, 224]
    assert rows["resnet_d"]["reference"].startswith("timm resnet50d")
    table = CliRunner().invoke(main, ["list"])
    assert table.exit_code == 0 and "preact_resnet" in table.output
    densenet = next(line for line in table.output.splitlines() if "│ densenet " in line)
    assert "7,978,856" in densenet and "3×224×224" in densenet
