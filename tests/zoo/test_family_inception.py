"""Inception-ResNet-v2 (specs/inception_resnet_v2.res) against timm's inception_resnet_v2: the exact
parameter count, then outputs and gradients equal after transfer_weights at the smallest input the
stem and the two reductions allow (75×75 → 1×1 after Mixed_7a)."""
import pytest
import torch

import resdsl
from conftest import SPECS, assert_equal_after_transfer
from resdsl.ir.shapes import totals

timm = pytest.importorskip("timm")

SPEC = SPECS / "inception_resnet_v2.res"
PARAMS = 55_843_464                                    # timm inception_resnet_v2, 299×299
SMALLEST = 75


def test_parameter_count_from_the_graph():
    g = resdsl.graph(SPEC)
    assert totals(g)[0] == PARAMS
    assert tuple(g.nodes[g.graph["output"]]["out_shape"]) == (1000,)


def test_smallest_input_size():
    assert totals(resdsl.graph(SPEC, size=SMALLEST))[0] == PARAMS
    with pytest.raises(resdsl.SpecError, match="shrinks below 1×1"):
        resdsl.graph(SPEC, size=SMALLEST - 1)


def test_outputs_and_gradients_equal_timm():
    torch.manual_seed(0)
    ref = timm.create_model("inception_resnet_v2", pretrained=False)
    ours = resdsl.compile(SPEC, size=SMALLEST)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == PARAMS
    bns = [m for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 for m in bns)
    assert_equal_after_transfer(ref, ours, torch.randn(2, 3, SMALLEST, SMALLEST), atol=1e-5)


def test_block_scales_and_last_block_has_no_relu():
    model = resdsl.compile(SPEC, size=SMALLEST)
    assert [len(st.blocks) for st in model.stages] == [10, 20, 9, 1]
    scales = [{b.scale for b in st.blocks} for st in model.stages]
    assert scales == [{0.17}, {0.10}, {0.20}, {1.0}]
    assert all(len(b.post) == 1 for st in model.stages[:3] for b in st.blocks)
    assert not model.stages[3].blocks[0].post                 # None or empty: no ReLU after the addition
