"""Issue 24 item 6: `resdsl show` writes every zoo network back as text that parses to the same
network — the same module names, parameter counts and MACs (stages whose blocks differ in their
layers are written block by block with `if i == ...`)."""
import pytest
import torch

import resdsl
from conftest import SPECS
from resdsl.ir.shapes import totals
from resdsl.source.show import show_net
from resdsl.zoo.catalog import zoo

ENTRIES = zoo(SPECS)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_show_parses_back_to_the_same_network(entry):
    text = show_net(resdsl.load_spec(entry.spec, entry.name), str(entry.spec))
    g0, g1 = resdsl.graph(entry.spec, entry.name), resdsl.graph(text)
    assert set(g1.nodes) == set(g0.nodes)
    assert totals(g1)[:2] == totals(g0)[:2] == (entry.params, entry.macs)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "nf_resnet50"])
def test_show_block_by_block_computes_the_same(name, tmp_path):
    """Stages written block by block: the state dict loads by name and the outputs are equal."""
    (tmp_path / "s.res").write_text(show_net(resdsl.load_spec(name), name))
    a, b = resdsl.compile(name).eval(), resdsl.compile(tmp_path / "s.res").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x))
