"""`sub` of named tensors, `neg`, `upsample`, adaptive `avgpool size` and `flatten`, against the
torch modules they stand for (timm's PoolFormer token mixer, F.interpolate, AdaptiveAvgPool2d)."""
import pytest
import torch
import torch.nn.functional as F

import resdsl
from resdsl.ir.shapes import totals
from conftest import emitted_twin


def net(body: str, inp: str = "8x15x15", block: str = "") -> str:
    return f"{block}\nnetwork t() {{\n  input {inp}\n  {body}\n}}\n"


def test_poolformer_token_mixer_is_timms():
    """PoolFormer (Yu et al. 2022): y = x + (pool(norm(x)) − norm(x)), timm's `Pooling` module."""
    from timm.models.metaformer import Pooling

    spec = net("stage x 1 mixer()", block="block mixer() {\n  residual { groupnorm 1 -> n; "
               "avgpool k3 s1 p1 count_pad false; sub n }\n}")
    model = resdsl.compile(spec).eval()
    torch.manual_seed(0)
    x = torch.randn(2, 8, 15, 15)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
        gn = model.stages[0].blocks[0].residual.flow.groupnorm1
        assert torch.equal(model(x), x + Pooling(3)(gn(x)))


def test_sub_with_two_names_and_neg():
    spec = net("stage x 1 b()", block="block b() {\n  residual { conv 8 k1 -> a; from x; neg -> m; sub a m }\n"
               "  shortcut none\n}")
    model = resdsl.compile(spec).eval()
    x = torch.randn(2, 8, 15, 15)
    conv = model.stages[0].blocks[0].residual.flow.conv1
    with torch.no_grad():
        assert torch.equal(model(x), conv(x) - (-x))


@pytest.mark.parametrize("layer,kwargs", [
    ("upsample 2", dict(scale_factor=2.0, mode="nearest")),
    ("upsample 1.5", dict(scale_factor=1.5, mode="nearest")),
    ("upsample 2.5 bilinear", dict(scale_factor=2.5, mode="bilinear", align_corners=False)),
    ("upsample 2 bilinear align_corners", dict(scale_factor=2.0, mode="bilinear", align_corners=True)),
    ("upsample size 31x20 bilinear", dict(size=(31, 20), mode="bilinear", align_corners=False)),
    ("upsample size 7", dict(size=(7, 7), mode="nearest")),
])
def test_upsample_is_interpolate(layer, kwargs):
    g = resdsl.graph(net(f"stem {{ {layer} }}"))
    model = resdsl.compile(net(f"stem {{ {layer} }}")).eval()
    x = torch.randn(2, 8, 15, 15)
    ref = F.interpolate(x, **kwargs)
    assert g.nodes[g.graph["output"]]["out_shape"] == tuple(ref.shape[1:])      # the shape rule is torch's
    with torch.no_grad():
        assert torch.equal(model(x), ref)
    assert totals(g) == (0, 0)


def test_upsample_on_a_sequence_is_nearest_only():
    model = resdsl.compile(net("stem { upsample 3 }", "4x10")).eval()
    x = torch.randn(2, 4, 10)
    assert torch.equal(model(x), F.interpolate(x, scale_factor=3.0, mode="nearest"))
    with pytest.raises(resdsl.SpecError, match="bilinear upsampling needs a C×H×W map"):
        resdsl.graph(net("stem { upsample 3 bilinear }", "4x10"))


@pytest.mark.parametrize("size", [6, 7, 15, 20])
def test_adaptive_avgpool_and_flatten(size):
    """AlexNet's and VGG's head: any input size gives S×S, flattened to C·S·S values."""
    spec = net(f"stem {{ avgpool size {size}; flatten; fc 3 }}")
    g = resdsl.graph(spec)
    model = resdsl.compile(spec).eval()
    x = torch.randn(2, 8, 15, 15)
    fc = model.stem.fc1
    with torch.no_grad():
        assert torch.equal(model(x), fc(torch.flatten(F.adaptive_avg_pool2d(x, size), 1)))
    assert totals(g) == (8 * size * size * 3 + 3, 8 * size * size * 3)


def test_standalone_source_is_bit_equal():
    spec = net("stage x 1 b()\n  head { avgpool size 4; neg; flatten; fc 3 }",
               block="block b() {\n  residual { upsample 2 bilinear; avgpool k2 s2; sub x }\n}", inp="8x14x14")
    model = resdsl.compile(spec).eval()
    other = emitted_twin(model).eval()
    x = torch.randn(2, 8, 14, 14)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))
