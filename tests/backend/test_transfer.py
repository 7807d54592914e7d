import pytest
import torch
from torch import nn

import resdsl
from resdsl.backend.transfer import TransferError
from conftest import SPECS


def test_mismatch_is_reported_with_module_names():
    a = resdsl.compile(SPECS / "cifar_resnet.res", n=3)
    b = resdsl.compile(SPECS / "cifar_resnet.res", n=3, classes=100)
    with pytest.raises(TransferError, match="head.fc1"):
        resdsl.transfer_weights(a, b)


def test_execution_order_fallback():
    class Src(nn.Module):       # registers b before a, runs a first
        def __init__(self):
            super().__init__()
            self.b = nn.Linear(3, 5)
            self.a = nn.Linear(4, 3)

        def forward(self, x):
            return self.b(self.a(x))

    class Dst(nn.Module):
        input_shape = (4,)

        def __init__(self):
            super().__init__()
            self.first = nn.Linear(4, 3)
            self.second = nn.Linear(3, 5)

        def forward(self, x):
            return self.second(self.first(x))

    s, d = Src(), Dst()
    rep = resdsl.transfer_weights(s, d)
    assert rep.order == "structure"
    x = torch.randn(2, 4)
    torch.testing.assert_close(d(x), s(x))


# --- issue 24, items 7-9: matching by structure, norm subclasses, a reference that cannot run

MBCONV = """
block mbconv(out, stride = 1) {
  residual {
    bn; conv 4 * out k1; bn; gelu
    conv 4 * out k3 s stride groups 4 * out; bn; gelu
    se channels out // 4 act silu
    conv out k1 bias
  }
  shortcut { avgpool k2 s2; conv out k1 bias }
}
network t() { input 16x8x8; stage x 1 mbconv(32, stride = 2) }
"""


def test_shortcut_registered_first_matches_by_structure(tmp_path):
    """timm's CoAtNet/MaxViT MbConvBlock registers (and runs) its shortcut before the residual
    layers; registration and forward order both disagree with resdsl's, the dataflow does not."""
    from timm.models.maxxvit import MaxxVitConvCfg, MbConvBlock

    from conftest import assert_equal_after_transfer, randomise_bn

    ref = randomise_bn(MbConvBlock(16, 32, stride=2, cfg=MaxxVitConvCfg()))
    (tmp_path / "m.res").write_text(MBCONV)
    ours = resdsl.compile(tmp_path / "m.res")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    report = assert_equal_after_transfer(ref, ours, torch.randn(2, 16, 8, 8), atol=1e-5)
    assert report.order == "structure"
    assert ("shortcut.expand", "stages.0.blocks.0.shortcut.conv1") in report.pairs
    assert "matched by structure" in str(report)


def test_ties_are_reported():
    """Two parallel branches equal in kind and shapes cannot be told apart by structure."""
    class Two(nn.Module):
        input_shape = (3, 4, 4)

        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return self.a(x) + self.b(x)

    rep = resdsl.transfer_weights(Two(), Two())
    assert rep.ties == [("a", "b")] and "matched in forward order: a = b" in str(rep)


def test_groupnorm_subclass_is_a_groupnorm(tmp_path):
    """timm's GroupNorm1 is an nn.GroupNorm with one group: its weights mean the same."""
    from timm.layers import GroupNorm1

    ref = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), GroupNorm1(8), nn.ReLU())
    with torch.no_grad():
        ref[1].weight.uniform_(0.5, 1.5), ref[1].bias.normal_()
    (tmp_path / "g.res").write_text("network g() { input 3x8x8; stem { conv 8 k3; groupnorm 1; relu } }\n")
    ours = resdsl.compile(tmp_path / "g.res")
    resdsl.transfer_weights(ref, ours)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(ours.eval()(x), ref.eval()(x))


def test_reference_that_cannot_run_at_the_size():
    small = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 5))       # needs at least 7×7
    with pytest.raises(TransferError, match=r"source model cannot run on an input of 3×4×4 .*input_shape="):
        resdsl.transfer_weights(small, nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 5)), input_shape=(3, 4, 4))


def test_strict_false_copies_what_fits():
    a = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5))
    b = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 6))
    rep = resdsl.transfer_weights(a, b, strict=False)
    assert rep.pairs == [("0", "0")] and rep.skipped == [("1", "1", "kind or shapes differ")]
    torch.testing.assert_close(b[0].weight, a[0].weight)


# --- merge of tokens into vocab's structural matcher: packed attention and free learned tensors

class _PackedRef(nn.Module):
    """torchvision's layout: the class token on the model, the position embedding on a child, one
    nn.MultiheadAttention (packed in_proj_weight, registered after out_proj)."""
    input_shape = (5, 32)

    def __init__(self, d=32):
        super().__init__()
        self.head = nn.Linear(d, 3)
        self.enc = nn.Module()
        self.enc.pos_embedding = nn.Parameter(torch.randn(1, 6, d))
        self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
        self.class_token = nn.Parameter(torch.randn(1, 1, d))

    def forward(self, x):
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], 1) + self.enc.pos_embedding
        x = self.attn(x, x, x, need_weights=False)[0]
        return self.head(x[:, 0])


class _Mine(nn.Module):
    """resdsl's layout: a qkv Linear then proj, tokens named otherwise and registered elsewhere."""
    input_shape = (5, 32)

    def __init__(self, d=32, heads=4):
        super().__init__()
        self.heads = heads
        self.pos = nn.Module()
        self.pos.pos_embed = nn.Parameter(torch.zeros(1, 6, d))
        self.cls = nn.Module()
        self.cls.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.qkv, self.proj, self.fc = nn.Linear(d, 3 * d), nn.Linear(d, d), nn.Linear(d, 3)

    def forward(self, x):
        x = torch.cat([self.cls.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos.pos_embed
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        return self.fc(self.proj(x)[:, 0])


def test_packed_attention_and_free_tensors_match_by_structure():
    """d = 32: in_proj (96×32) sorts after out_proj (32×32) by shape, and both are used in one
    F.multi_head_attention_forward call; argument order puts in_proj first. The class token and
    the position embedding are leaves of their own, placed where they meet the data."""
    torch.manual_seed(0)
    ref, mine = _PackedRef().eval(), _Mine().eval()
    rep = resdsl.transfer_weights(ref, mine)
    assert rep.order == "structure", rep
    assert ("attn.in_proj", "qkv") in rep.pairs and ("attn.out_proj", "proj") in rep.pairs
    assert ("class_token", "cls.cls_token") in rep.pairs and ("enc.pos_embedding", "pos.pos_embed") in rep.pairs
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), ref(x), atol=1e-5, rtol=1e-5)


def test_derived_window_buffers_are_not_transferred():
    from torchvision.models.swin_transformer import ShiftedWindowAttentionV2
    from resdsl.backend.transfer import leaves_of_module

    names = {n for lf in leaves_of_module(ShiftedWindowAttentionV2(32, [4, 4], [2, 2], 4)) for n, _ in lf.tensors}
    assert "relative_position_index" not in names and "relative_coords_table" not in names
    assert "logit_scale" in names
