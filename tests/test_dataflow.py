"""Block bodies as dataflow graphs, per-block variation, conditionals and repeats."""
import pytest
import timm
import torch

import resdsl
from resdsl.ir.shapes import totals
from test_torchvision_zoo import randomise

NET = """
{blocks}
network t(n = 2) {{
  input 3x16x16
  stem {{ conv 16 k3; bn; relu }}
  stage x n unit(16)
  head {{ avgpool; fc 10 }}
}}
"""


def spec(blocks: str) -> str:
    return NET.format(blocks=blocks)


def test_se_written_with_named_tensors_equals_the_se_layer():
    by_hand = spec("block unit(w) { residual { conv w k3; bn -> h; avgpool; conv 4 k1 bias; relu; "
                   "conv w k1 bias; sigmoid; mul h }\n post relu }")
    builtin = spec("block unit(w) { residual { conv w k3; bn; se channels 4 }\n post relu }")
    assert totals(resdsl.graph(by_hand)) == totals(resdsl.graph(builtin))
    a, b = resdsl.compile(by_hand).eval(), resdsl.compile(builtin).eval()
    resdsl.transfer_weights(randomise(a), b)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=1e-6, atol=1e-6)


def test_split_from_concat_is_a_dag_in_the_graph():
    g = resdsl.graph(spec("block unit(w) { residual { split 2 -> a b; from b; conv w // 2 k3; bn; relu -> c; "
                          "concat a c }\n shortcut none }"))
    merge = "stages.0.blocks.0.residual.flow.concat1"
    assert [g.nodes[p]["kind"] for p in g.predecessors(merge)] == ["slice", "relu"] or \
        sorted(g.nodes[p]["kind"] for p in g.predecessors(merge)) == ["relu", "slice"]
    assert g.nodes[merge]["out_shape"] == (16, 16, 16)


def test_a_named_tensor_may_be_read_twice_and_names_are_local_to_the_body():
    two_reads = spec("block unit(w) { residual { conv w k3 -> h; add h h }\n shortcut none }")
    y = resdsl.compile(two_reads).eval()(torch.randn(1, 3, 16, 16))
    assert torch.isfinite(y).all()
    dangling = spec("block unit(w) { residual { conv w k3 -> h; relu; add h h }\n shortcut none }")
    with pytest.raises(resdsl.SpecError, match="computed but never used"):
        resdsl.graph(dangling)


def test_res2net_equals_timm():
    """Res2Net (not in torchvision) written with split, add and concat of named tensors."""
    torch.manual_seed(0)
    ref = randomise(timm.create_model("res2net50_26w_4s"))
    ours = resdsl.compile("res2net50_26w_4s").eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == 25_699_120
    resdsl.transfer_weights(ref, ours)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = ref(x), ours(x)
    assert ((a - b).norm() / a.norm()).item() < 1e-5


def test_block_index_varies_widths_and_stage_x_0_adds_nothing():
    text = """
network t() {
  input 3x16x16
  stem { conv 8 k3 }
  stage x 3 basic(8 + 4 * net_index, skip = projection)
  stage x 0 basic(99)
  stage x 2 basic(block_index == 0 ? 40 : 44, skip = projection) stride 2
  head { avgpool; fc 2 }
}"""
    g = resdsl.graph(text)
    adds = [d["out_shape"][0] for n, d in g.nodes(data=True) if n.endswith(".add")]
    assert adds == [8, 12, 16, 40, 44]
    assert not any(n.startswith("stages.2") for n in g)


@pytest.mark.parametrize("flag,expected", [("true", 3), ("false", 1)])
def test_if_and_repeat_in_a_sequence(flag, expected):
    g = resdsl.graph(f"""
network t(deep = {flag}) {{
  input 3x8x8
  stem {{ conv 4 k3; if deep {{ repeat 2 as r {{ conv 4 + r k3 }} }} }}
  head {{ avgpool; fc 2 }}
}}""")
    assert sum(d["kind"] == "conv" for _, d in g.nodes(data=True)) == expected


def test_selective_kernel_unit_softmax_across_branches():
    """SK-Net's unit (Li et al. 2019): two branches, attention by a softmax across them (not in
    torchvision): y = s_a·a + s_b·b with (s_a, s_b) = softmax over branches of fc(mean(a + b))."""
    text = spec("""block unit(w) {
  residual {
    conv w k3; bn; relu -> a
    from x; conv w k3 d2; bn; relu -> b
    add a b; avgpool; conv 8 k1; bn; relu; conv 2 * w k1; softmax g 2; split 2 -> sa sb
    from a; mul sa -> pa; from b; mul sb; add pa
  }
  post relu
}""")
    g = resdsl.graph(text)
    sm = "stages.0.blocks.0.residual.flow.softmax1"
    assert g.nodes[sm]["out_shape"] == (32, 1, 1)
    model = resdsl.compile(text).eval()
    flow = model.stages[0].blocks[0].residual.flow
    x = torch.randn(2, 16, 16, 16)
    with torch.no_grad():
        a = flow.relu1(flow.bn1(flow.conv1(x)))
        b = flow.relu2(flow.bn2(flow.conv2(x)))
        z = flow.conv4(flow.relu3(flow.bn3(flow.conv3((a + b).mean((2, 3), keepdim=True)))))
        s = z.view(2, 2, 16, 1, 1).softmax(1)
        torch.testing.assert_close(flow(x), s[:, 0] * a + s[:, 1] * b)
