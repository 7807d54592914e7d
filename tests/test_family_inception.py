"""Inception-ResNet-v2 (specs/inception_resnet_v2.res) against timm's inception_resnet_v2: the exact
parameter count, then outputs and gradients equal after transfer_weights at the smallest input the
stem and the two reductions allow (75×75 → 1×1 after Mixed_7a)."""
import pytest
import torch

import resdsl
from conftest import SPECS
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
    report = resdsl.transfer_weights(ref, ours)
    assert report.tensors == len(ref.state_dict())
    bns = [m for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 for m in bns)
    x = torch.randn(2, 3, SMALLEST, SMALLEST)
    ref.eval(), ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)
    ref.train(), ours.train()
    ref(x).square().mean().backward()
    ours(x).square().mean().backward()
    src, dst = dict(ref.named_modules()), dict(ours.named_modules())
    for sn, dn in report.pairs:
        for (n, p1), (_, p2) in zip(src[sn].named_parameters(recurse=False), dst[dn].named_parameters(recurse=False)):
            torch.testing.assert_close(p2.grad, p1.grad.reshape(p2.shape), rtol=1e-4, atol=1e-6, msg=f"{sn}.{n}")


def test_block_scales_and_last_block_has_no_relu():
    model = resdsl.compile(SPEC, size=SMALLEST)
    assert [len(st.blocks) for st in model.stages] == [10, 20, 9, 1]
    scales = [{b.scale for b in st.blocks} for st in model.stages]
    assert scales == [{0.17}, {0.10}, {0.20}, {1.0}]
    assert all(len(b.post) == 1 for st in model.stages[:3] for b in st.blocks)
    assert not model.stages[3].blocks[0].post                 # None or empty: no ReLU after the addition
