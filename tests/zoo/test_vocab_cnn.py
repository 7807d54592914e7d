"""Issue 24's CNN vocabulary, each construct against the timm module that implements it: equal
parameter counts, then equal outputs (and gradients) after transfer_weights with randomised norms."""
import pytest
import torch
from torch import nn

import resdsl
from conftest import assert_equal_after_transfer, emitted_twin, randomise_bn


def net(tmp_path, body: str, inp: str = "16x8x8", blocks: str = ""):
    (tmp_path / "n.res").write_text(f"{blocks}\nnetwork n() {{\n  input {inp}\n  stem {{ {body} }}\n}}\n")
    return resdsl.compile(tmp_path / "n.res")


def count(m):
    return sum(p.numel() for p in m.parameters())


def same(ref, ours, shape, atol=1e-5):
    ref, ours = randomise_bn(ref), ours.eval()
    assert count(ours) == count(ref)
    return assert_equal_after_transfer(ref, ours, torch.randn(2, *shape), atol=atol)


@pytest.mark.parametrize("c", [8, 16, 64, 100, 256, 512, 1024, 2048])
def test_eca_adaptive_kernel_is_timms(c):
    from timm.layers import EcaModule

    from resdsl.ir.ops.eca import eca_kernel

    assert eca_kernel(c, 2, 1) == EcaModule(channels=c).conv.kernel_size[0]


@pytest.mark.parametrize("body,kw", [("eca", {"channels": 64}), ("eca k5", {"kernel_size": 5})])
def test_eca_equals_timm(tmp_path, body, kw):
    from timm.layers import EcaModule

    ref = nn.Sequential(nn.Conv2d(16, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), EcaModule(**kw))
    same(ref, net(tmp_path, f"conv 64 k3; bn; {body}"), (16, 8, 8))


def test_std_conv_equals_timm(tmp_path):
    from timm.layers import ScaledStdConv2d, StdConv2d

    ref = nn.Sequential(StdConv2d(16, 32, 3, stride=2, eps=1e-6), nn.ReLU(),
                        ScaledStdConv2d(32, 32, 3, gamma=1.7139588594436646, bias=True))
    with torch.no_grad():
        ref[2].gain.uniform_(0.5, 1.5)
    ours = net(tmp_path, "std_conv 32 k3 s2; relu; std_conv 32 k3 bias gain gamma 1.7139588594436646")
    same(ref, ours, (16, 9, 9))


def test_std_conv_gamma_needs_gain(tmp_path):
    with pytest.raises(resdsl.SpecError, match="without 'gain'"):
        net(tmp_path, "std_conv 32 k3 gamma 2")


def test_affine_equals_learnable_affine_block(tmp_path):
    from timm.models.hgnet import LearnableAffineBlock

    ref = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), LearnableAffineBlock())
    with torch.no_grad():
        ref[3].scale.fill_(1.3), ref[3].bias.fill_(-0.2)
    same(ref, net(tmp_path, "conv 16 k3; bn; relu; affine"), (16, 8, 8))


@pytest.mark.parametrize("k,size", [(3, 8), (3, 9), (5, 10)])
def test_blurpool_equals_timm(tmp_path, k, size):
    from timm.layers import BlurPool2d

    ref = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), BlurPool2d(16, filt_size=k, stride=2))
    ours = net(tmp_path, f"conv 16 k3 bias; blurpool k{k} s2", inp=f"16x{size}x{size}")
    same(ref, ours, (16, size, size))
    assert ours.input_shape and tuple(ours(torch.zeros(1, 16, size, size)).shape) == tuple(ref(torch.zeros(1, 16, size, size)).shape)


def test_space_to_depth_equals_timm(tmp_path):
    from timm.layers import SpaceToDepth

    ref = nn.Sequential(SpaceToDepth(4), nn.Conv2d(48, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
    same(ref, net(tmp_path, "space_to_depth 4; conv 16 k3; bn", inp="3x16x16"), (3, 16, 16))


@pytest.mark.parametrize("size,k,s", [(8, 3, 2), (9, 3, 2), (9, 4, 2), (7, 5, 1)])
def test_pad_same_equals_conv2d_same(tmp_path, size, k, s):
    from timm.layers import Conv2dSame

    ref = nn.Sequential(Conv2dSame(16, 8, k, stride=s))
    ours = net(tmp_path, f"pad same k{k} s{s}; conv 8 k{k} s{s} p 0 bias", inp=f"16x{size}x{size}")
    same(ref, ours, (16, size, size))


def test_asymmetric_pad(tmp_path):
    ours = net(tmp_path, "pad [1, 0, 2, 3]", inp="2x4x5")
    x = torch.randn(1, 2, 4, 5)
    torch.testing.assert_close(ours(x), nn.functional.pad(x, (1, 0, 2, 3)))
    assert tuple(ours(x).shape) == (1, 2, 9, 6)


def test_spatial_gate_broadcasts_over_channels(tmp_path):
    """A 1×H×W gate (FocalNet's modulator, CBAM's spatial attention) multiplies every channel."""
    blocks = """
block sgate(c) {
  residual { conv c k3; bn; relu -> h; conv 1 k1 bias; sigmoid -> g; from h; mul g }
  shortcut identity
}"""
    (tmp_path / "n.res").write_text(blocks + "\nnetwork n() {\n  input 8x6x6\n  stage x 1 sgate(8)\n}\n")
    ours = resdsl.compile(tmp_path / "n.res").eval()
    flow = ours.stages[0].blocks[0].residual.flow
    x = torch.randn(2, 8, 6, 6)
    h = flow.relu1(flow.bn1(flow.conv1(x)))
    want = x + h * torch.sigmoid(flow.conv2(h))
    torch.testing.assert_close(ours(x), want)


def test_rescale_is_constant(tmp_path):
    ours = net(tmp_path, "rescale 0.25", inp="3x4x4")
    x = torch.randn(1, 3, 4, 4)
    assert count(ours) == 0
    torch.testing.assert_close(ours(x), x * 0.25)


# --- the two zoo specs written with the new vocabulary (reference counts from timm)

@pytest.mark.parametrize("name,params", [("ecaresnet50d", 25_576_350), ("nf_resnet50", 25_557_032)])
def test_zoo_spec_equals_timm(name, params):
    import timm

    torch.manual_seed(0)
    ref = timm.create_model(name, pretrained=False)
    with torch.no_grad():                      # nf_resnet50 starts each unit's last gain at 0: randomise all
        for n, p in ref.named_parameters():
            if n.endswith("gain"):
                p.uniform_(0.5, 1.5)
    ours = resdsl.compile(name)
    assert count(ref) == count(ours) == params
    report = same(ref, ours, (3, 64, 64), atol=1e-4)
    assert report.order == "structure"


ALL_NEW = """network n() {
  input 16x8x8
  stem { std_conv 16 k3 gain gamma 1.7; rescale 0.5; affine; eca; blurpool; pad same k3 s2; conv 16 k3 s2 p 0; pad [1, 1, 0, 2]; space_to_depth 2 }
}
"""


def test_new_layers_emit_standalone_source(tmp_path):
    """`compile -o model.py`: each new layer writes its constructor; the source runs bit-equal."""
    (tmp_path / "n.res").write_text(ALL_NEW)
    model = resdsl.compile(tmp_path / "n.res").eval()
    src = resdsl.emit_source(model, resdsl.load_spec(tmp_path / "n.res"))
    assert "resdsl" not in src.split('"""', 2)[2]
    other = emitted_twin(model, src).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        assert torch.equal(other(x), model(x))


def test_fuse_leaves_std_conv_alone():
    """A scale or BN folded into a standardised conv's weights would be standardised away."""
    model = resdsl.compile("nf_resnet50").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(resdsl.fuse(model)(x), model(x), rtol=1e-4, atol=1e-4)
