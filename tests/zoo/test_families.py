"""Every residual family of the zoo against its reference: exact parameter counts (issue 3's table),
outputs and gradients equal to torchvision/timm after transfer_weights, and the behaviour the
family is about (gate bias, drop statistics, weight sharing, linearity at initialisation)."""
import pytest
import torch
import torchvision

import resdsl
from conftest import SPECS, assert_equal_after_transfer
from resdsl.ir.shapes import totals

timm = pytest.importorskip("timm")

# (spec, network, parameters, exact count from the reference)
COUNTS = [
    ("resnet", None, dict(depth=18, skip="projection_all"), 12_043_816),     # He et al. Table 3, option C
    ("resnet", None, dict(depth=18, skip="none"), 11_515_688),               # plain-18
    ("resnet", None, dict(stride_1x1=True), 25_557_032),                     # MSRA Caffe ResNet-50
    ("resnet", "resnet_d", {}, 25_576_264),                                  # timm resnet50d
    ("resnet", None, dict(output_stride=8), 25_557_032),
    ("preact_resnet", None, {}, 1_703_258),                                  # ResNet-164
    ("preact_resnet", None, dict(depth=1001), 10_327_706),
    ("resnetv2", None, {}, 25_549_352),
    ("wide_resnet", None, {}, 36_479_194),                                   # WRN-28-10
    ("wide_resnet", None, dict(depth=16, k=8), 10_961_370),
    ("resnext_cifar", None, {}, 34_426_698),                                 # ResNeXt-29 8×64d
    ("seresnet", None, {}, 28_088_024),
    ("densenet", None, {}, 7_978_856),
    ("densenet_cifar", None, {}, 769_162),                                   # DenseNet-BC-100 k=12
    ("multi_resnet", None, {}, 10_187_354),                                  # Multi-ResNet-200 k=5
    ("resnet28_small", None, {}, 273_258),
    ("stochastic_depth", None, {}, 1_727_962),
]


def params_of(spec, network=None, **kw):
    return totals(resdsl.graph(SPECS / f"{spec}.res", network, **kw))[0]


@pytest.mark.parametrize("spec,network,kw,expected", COUNTS,
                         ids=[f"{c[0]}-{c[1] or ''}-{'-'.join(f'{k}={v}' for k, v in c[2].items())}" for c in COUNTS])
def test_parameter_count(spec, network, kw, expected):
    assert params_of(spec, network, **kw) == expected


def test_msra_layout_macs():
    g = resdsl.graph(SPECS / "resnet.res", stride_1x1=True)
    assert round(totals(g)[1] / 1e9, 3) == 3.858                             # paper: 3.8 GFLOPs


def test_densenet_depths_equal_torchvision():
    for depth in (161, 169, 201):
        ref = getattr(torchvision.models, f"densenet{depth}")()
        assert params_of("densenet", depth=depth) == sum(p.numel() for p in ref.parameters())


def test_seresnext_count_equals_timm():
    ref = timm.create_model("seresnext50_32x4d", pretrained=False)
    assert params_of("seresnet", cardinality=32, base_width=4) == sum(p.numel() for p in ref.parameters())


REFERENCES = [
    ("resnet50_os8", lambda: torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True]),
     "resnet", None, dict(output_stride=8), 0.0),
    ("resnet50d", lambda: timm.create_model("resnet50d", pretrained=False), "resnet", "resnet_d", {}, 0.0),
    ("resnetv2_50", lambda: timm.create_model("resnetv2_50", pretrained=False), "resnetv2", None, {}, 1e-4),
    ("seresnet50", lambda: timm.create_model("seresnet50", pretrained=False), "seresnet", None, {}, 0.0),
    ("densenet121", lambda: torchvision.models.densenet121(), "densenet", None, {}, 0.0),
]


@pytest.mark.parametrize("name,make,spec,network,kw,atol", REFERENCES, ids=[r[0] for r in REFERENCES])
def test_outputs_and_gradients_equal_after_transfer(name, make, spec, network, kw, atol):
    torch.manual_seed(0)
    ref, ours = make(), resdsl.compile(SPECS / f"{spec}.res", network, **kw)
    # atol: resnetv2's timm head is a 1×1 conv, ours an fc (same weights, other summation order)
    assert_equal_after_transfer(ref, ours, torch.randn(2, 3, 64, 64), atol)


def test_highway_gate_bias_is_honoured():
    model = resdsl.compile(SPECS / "highway.res", n=1, gate_bias=-3)
    gates = [m for name, m in model.named_modules() if name.endswith("gate.conv1")]
    assert len(gates) == 3 and all(torch.all(g.bias == -3.0) for g in gates)


def test_highway_formula():
    """y = H(x)·T(x) + x·(1 − T(x)) with T(x) = σ(conv(x) + b) for one highway layer."""
    model = resdsl.compile(SPECS / "highway.res", n=1).eval()
    block = model.stages[0].blocks[0]
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        h, t = block.residual(x), torch.sigmoid(block.gate[0](x))
        torch.testing.assert_close(block(x), h * t + x * (1 - t))


def test_stochastic_depth_schedule_and_drop_statistics():
    model = resdsl.compile(SPECS / "stochastic_depth.res", n=3)
    blocks = [b for st in model.stages for b in st.blocks]
    L = len(blocks)
    assert [round(b.drop_prob, 6) for b in blocks] == [round(0.5 * l / L, 6) for l in range(1, L + 1)]
    last, x = blocks[-1], torch.randn(4, 64, 8, 8)
    last.train()
    torch.manual_seed(0)
    with torch.no_grad():
        skipped = sum(torch.equal(last(x), torch.relu(x)) for _ in range(400))
    assert 160 <= skipped <= 240                      # p = 0.5: one gate per mini-batch


def test_recurrent_stage_shares_one_blocks_weights():
    counts = {t: params_of("recurrent_resnet", steps=t) for t in (1, 4, 8)}
    assert len(set(counts.values())) == 1
    model = resdsl.compile(SPECS / "recurrent_resnet.res", steps=4)
    assert sum(p.numel() for p in model.parameters()) == counts[4]


def test_looks_linear_network_is_linear_at_init():
    torch.manual_seed(0)
    model = resdsl.compile(SPECS / "plain_looks_linear.res", n=2).double().eval()
    x, y = torch.randn(2, 3, 32, 32, dtype=torch.float64), torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        fx, fy, fxy = model(x), model(y), model(x - 2 * y)
    torch.testing.assert_close(fxy, fx - 2 * fy, rtol=0, atol=1e-12)   # biases are zero: linear, not affine
