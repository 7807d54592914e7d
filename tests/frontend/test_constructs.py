"""Language constructs against their definitions in the papers (formulas computed here by hand)."""
import pytest
import torch
from torch import nn

import resdsl

torch.manual_seed(0)


def net(body: str, blocks: str = "", inp: str = "3x16x16", head: str = "") -> str:
    return f"{blocks}\nnetwork t() {{\n  input {inp}\n{body}\n{head}\n}}\n"


def total(g):
    return sum(d["params"] for _, d in g.nodes(data=True)), sum(d["macs"] for _, d in g.nodes(data=True))


# ---- ResNeXt: aggregated paths (form a) == grouped convolution (form c) ----

C, W, OUT = 4, 3, 16
FORM_A = net("  stem { conv 16 k3 }\n  stage x 1 agg()", """
block agg() {
  residual { aggregate 4 { conv 3 k1; bn; relu; conv 3 k3; bn; relu; conv 16 k1 }; bn }
}""")
FORM_C = net("  stem { conv 16 k3 }\n  stage x 1 grp()", """
block grp() {
  residual { conv 12 k1; bn; relu; conv 12 k3 groups 4; bn; relu; conv 16 k1; bn }
}""")


class Path(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(OUT, W, 1, bias=False), nn.BatchNorm2d(W)
        self.c2, self.b2 = nn.Conv2d(W, W, 3, padding=1, bias=False), nn.BatchNorm2d(W)
        self.c3 = nn.Conv2d(W, OUT, 1, bias=False)

    def forward(self, x):
        return self.c3(torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))))


def test_aggregate_lowers_to_grouped_form_with_equal_cost():
    ga, gc = resdsl.graph(FORM_A), resdsl.graph(FORM_C)
    assert total(ga) == total(gc)
    # form (a) by hand: C paths of (1x1 16->3, 3x3 3->3, 1x1 3->16) on 16x16 maps, + BN params
    hw = 16 * 16
    path_macs = hw * (OUT * W + W * W * 9 + W * OUT)
    stem_macs = hw * 3 * 16 * 9
    assert total(ga)[1] == C * path_macs + stem_macs
    path_params = OUT * W + 2 * W + W * W * 9 + 2 * W + W * OUT
    assert total(ga)[0] == C * path_params + 2 * OUT + 3 * 16 * 9


@pytest.mark.parametrize("train", [False, True])
def test_aggregate_equals_explicit_sum_of_paths(train):
    ours = resdsl.compile(FORM_A)
    paths = nn.ModuleList([Path() for _ in range(C)])
    for p in paths:   # non-trivial BN statistics and affine parameters
        for bn in (p.b1, p.b2):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 1.5), bn.bias.data.uniform_(-0.5, 0.5)
    r = ours.stages[0].blocks[0].residual
    with torch.no_grad():
        r.conv1.weight.copy_(torch.cat([p.c1.weight for p in paths], 0))
        r.conv2.weight.copy_(torch.cat([p.c2.weight for p in paths], 0))
        r.conv3.weight.copy_(torch.cat([p.c3.weight for p in paths], 1))
        for ours_bn, name in ((r.bn1, "b1"), (r.bn2, "b2")):
            for t in ("weight", "bias", "running_mean", "running_var"):
                getattr(ours_bn, t).copy_(torch.cat([getattr(getattr(p, name), t) for p in paths]))
    ours.train(train), paths.train(train)
    x = torch.randn(2, OUT, 16, 16)
    block = ours.stages[0].blocks[0].residual
    got = block.conv3(block.relu2(block.bn2(block.conv2(block.relu1(block.bn1(block.conv1(x)))))))
    want = sum(p(x) for p in paths)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_aggregate_rejects_paths_it_cannot_stack():
    bad = net("  stage x 1 b()", "block b() { residual { aggregate 4 { conv 3 k1; bn } } }")
    with pytest.raises(resdsl.SpecError, match="must end with a conv"):
        resdsl.graph(bad)


# ---- Highway: y = H(x)·T(x) + x·(1 − T(x)), T(x) = σ(conv(x) + b) ----

HIGHWAY = net("  stem { conv 8 k3 }\n  stage x 2 hw(8)", """
block hw(width) {
  residual { conv width k3; bn; relu }
  merge gate k 3 bias -2.5
}""", inp="3x8x8")


def test_highway_formula_and_gate_bias():
    m = resdsl.compile(HIGHWAY).eval()
    blk = m.stages[0].blocks[0]
    assert torch.all(blk.gate.conv1.bias == -2.5)
    x = torch.randn(2, 8, 8, 8)
    h = blk.residual(x)
    t = torch.sigmoid(nn.functional.conv2d(x, blk.gate.conv1.weight, blk.gate.conv1.bias, padding=1))
    torch.testing.assert_close(blk(x), h * t + x * (1 - t))
    edges = [e for e in resdsl.graph(HIGHWAY).edges(data=True) if e[2]["kind"] == "shortcut"]
    assert {e[2]["shortcut"] for e in edges} == {"gated"}


# ---- Dense: y = concat(x, F(x)) ----

def test_dense_concatenates_input_first():
    spec = net("  stage x 3 d(4)", "block d(g) { residual { bn; relu; conv g k3 }; merge concat }", inp="5x6x6")
    g = resdsl.graph(spec)
    assert g.nodes[g.graph["output"]]["out_shape"] == (5 + 3 * 4, 6, 6)
    m = resdsl.compile(spec).eval()
    x = torch.randn(1, 5, 6, 6)
    y = m.stages[0].blocks[0](x)
    torch.testing.assert_close(y[:, :5], x)


# ---- Stochastic depth (Huang et al. 2016) ----

SD = net("  stem { conv 4 k3 }\n  stage x 4 basic(4, skip = identity)", inp="3x4x4",
         head="  drop_path 0.5")


def test_stochastic_depth_linear_survival_rule():
    probs = [b.drop_prob for b in resdsl.load_spec(SD).stages[0].blocks]
    L = 4
    assert probs == pytest.approx([(l / L) * (1 - 0.5) for l in range(1, L + 1)])  # p_l = 1 - (l/L)(1 - p_L)


def test_stochastic_depth_drops_whole_residual_per_batch_at_its_rate():
    m = resdsl.compile(SD).train()
    blk = m.stages[0].blocks[3]          # drop probability 0.5
    calls = []
    blk.residual.register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(2, 4, 4, 4)
    torch.manual_seed(1)
    n = 400
    for _ in range(n):
        blk(x)
    rate = 1 - len(calls) / n
    assert abs(rate - 0.5) < 0.08       # binomial(400, .5): sd 0.025


def test_stochastic_depth_scales_residual_by_survival_at_test_time():
    m = resdsl.compile(SD).eval()
    blk = m.stages[0].blocks[1]          # drop probability 0.25
    x = torch.randn(2, 4, 4, 4)
    want = torch.relu(x + 0.75 * blk.residual(x))
    torch.testing.assert_close(blk(x), want)


def test_drop_path_sample_mode_is_inverted_and_identity_at_test():
    spec = SD.replace("drop_path 0.5", "drop_path 0.5 constant mode sample")
    m = resdsl.compile(spec)
    blk = m.stages[0].blocks[0]
    x = torch.randn(512, 4, 4, 4)
    m.eval()
    torch.testing.assert_close(blk(x), torch.relu(x + blk.residual(x)))
    m.train()
    torch.manual_seed(0)
    with torch.no_grad():
        blk.post = None                # y = x + mask·r/keep: a dropped sample has y − x = 0
        out = blk(x) - x
    kept = (out.flatten(1).abs().sum(1) > 0).float().mean().item()
    assert abs(kept - 0.5) < 0.1


# ---- Weight sharing (Liao & Poggio) ----

REC = net("  stem { conv 8 k3 }\n  stage x 4 basic(8) share\n  stage x 3 basic(16) stride 2 share per_step_bn",
          inp="3x8x8")


def test_shared_stage_has_one_blocks_weights():
    m = resdsl.compile(REC)
    s0, s1 = m.stages
    assert all(b.residual.conv1 is s0.blocks[0].residual.conv1 for b in s0.blocks)
    assert all(b.residual.bn1 is s0.blocks[0].residual.bn1 for b in s0.blocks)
    # first block of stage 1 changes shape: blocks 1 and 2 share block 1's convs, one BN per step
    assert s1.blocks[2].residual.conv1 is s1.blocks[1].residual.conv1
    assert s1.blocks[2].residual.bn1 is not s1.blocks[1].residual.bn1
    block_params = 2 * (8 * 8 * 9 + 2 * 8)
    stage1 = (8 * 16 * 9 + 16 * 16 * 9 + 4 * 16 + 8 * 16 + 2 * 16) + (2 * 16 * 16 * 9) + 2 * (2 * 2 * 16)
    stem = 3 * 8 * 9
    n = sum(p.numel() for p in m.parameters())
    assert n == stem + block_params + stage1
    assert total(resdsl.graph(REC))[0] == n


# ---- Initialisation ----

def test_zero_last_bn_makes_every_block_its_shortcut():
    spec = net("  init zero_last_bn\n  stem { conv 8 k3 }\n  stage x 3 basic(8)", inp="3x8x8")
    m = resdsl.compile(spec).eval()
    x = torch.randn(2, 8, 8, 8).relu()
    torch.testing.assert_close(m.stages[0](x), x)


def test_residual_std_zero_init():
    spec = net("  init residual_std 0\n  stage x 2 basic(3)", inp="3x8x8")
    m = resdsl.compile(spec)
    assert all(not c.weight.detach().any() for c in m.modules() if isinstance(c, nn.Conv2d))


LOOKS_LINEAR = net("""  init looks_linear
  stem { conv 8 k3 }
  stage x 3 ll(8)
  head { avgpool; fc 5 }""", "block ll(w) { residual { crelu; conv w k3; crelu; conv w k3 } }")


def test_looks_linear_network_is_linear_at_init():
    m = resdsl.compile(LOOKS_LINEAR).eval()
    x, y = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(m(2 * x - 3 * y), 2 * m(x) - 3 * m(y), rtol=1e-4, atol=1e-4)
    plain = resdsl.compile(LOOKS_LINEAR.replace("init looks_linear", "")).eval()
    assert not torch.allclose(plain(2 * x - 3 * y), 2 * plain(x) - 3 * plain(y), atol=1e-3)


# ---- Squeeze-and-excitation ----

def test_se_formula():
    spec = net("  stage x 1 b()", "block b() { residual { conv 32 k3; se r 4 } ; shortcut projection }", inp="3x8x8")
    m = resdsl.compile(spec).eval()
    se = m.stages[0].blocks[0].residual.se1
    assert se.fc1.out_channels == 8
    x = torch.randn(2, 32, 8, 8)
    s = x.mean((2, 3))
    w = torch.sigmoid(torch.relu(s @ se.fc1.weight[:, :, 0, 0].T + se.fc1.bias) @ se.fc2.weight[:, :, 0, 0].T + se.fc2.bias)
    torch.testing.assert_close(se(x), x * w[:, :, None, None])


# ---- Residual scaling and multi-residual ----

def test_scale_and_multiple_residuals():
    spec = net("  stage x 1 m()", """
block m() {
  residual { conv 3 k3 }
  residual { conv 3 k1 }
  scale 0.2
}""", inp="3x6x6")
    m = resdsl.compile(spec).eval()
    b = m.stages[0].blocks[0]
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(b(x), x + 0.2 * (b.residuals[0](x) + b.residuals[1](x)))


def test_avgdown_shortcut_layout():
    spec = net("  stage x 1 basic(8, skip = avgdown) stride 2", inp="4x8x8")
    m = resdsl.compile(spec)
    sc = m.stages[0].blocks[0].shortcut
    assert isinstance(sc.avgpool1, nn.AvgPool2d) and sc.avgpool1.ceil_mode and not sc.avgpool1.count_include_pad
    assert sc.conv1.stride == (1, 1) and sc.conv1.kernel_size == (1, 1)


# ---- Non-square kernels (Inception's 1×7 / 7×1 factorisation) ----

@pytest.mark.parametrize("spelling", ["conv 8 k 1x7 p 0x3", "conv 8 k1x7 p0x3", "conv 8 kernel [1, 7] padding 0x3",
                                      "conv 8 k1x7"])
def test_rectangular_kernel(spelling):
    spec = net(f"  stem {{ {spelling} }}", inp="3x9x11")
    g = resdsl.graph(spec)
    d = g.nodes["stem.conv1"]
    assert d["out_shape"] == (8, 9, 11)
    assert d["params"] == 8 * 3 * 1 * 7
    assert d["macs"] == 8 * 9 * 11 * 3 * 7
    conv = resdsl.compile(spec).stem.conv1
    assert conv.kernel_size == (1, 7) and conv.padding == (0, 3)


def test_square_kernel_written_as_pair_is_an_int():
    a = resdsl.load_spec(net("  stem { conv 8 k 3x3 }", inp="3x8x8")).body[0].items[0].attrs
    assert a["kernel"] == 3
