"""Block bodies as dataflow graphs: named tensors (`-> h`, `from h`), split, add/concat/mul of
named tensors, softmax across branches — against hand-written formulas and timm (Res2Net, SK-Net)."""
import pytest
import timm
import torch

import resdsl
from conftest import emitted_twin, randomise_bn, tiny_spec as spec
from resdsl.ir.shapes import totals

FLOW = "stages.0.blocks.0.residual.flow"


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / a.norm()).item()


def test_se_written_with_named_tensors_equals_the_se_layer():
    """x · σ(W2 relu(W1 mean(x)) + b) by hand equals the built-in `se` (same parameters, same outputs)."""
    by_hand = spec("block unit(w) { residual { conv w k3; bn -> h; avgpool; conv 4 k1 bias; relu; "
                   "conv w k1 bias; sigmoid; mul h }\n post relu }")
    builtin = spec("block unit(w) { residual { conv w k3; bn; se channels 4 }\n post relu }")
    assert totals(resdsl.graph(by_hand)) == totals(resdsl.graph(builtin))
    a, b = randomise_bn(resdsl.compile(by_hand)), resdsl.compile(builtin).eval()
    resdsl.transfer_weights(a, b)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=1e-6, atol=1e-6)


def test_split_from_concat_is_a_dag_in_the_graph():
    g = resdsl.graph(spec("block unit(w) { residual { split 2 -> a b; from b; conv w // 2 k3; bn; relu -> c; "
                          "concat a c }\n shortcut none }"))
    merge = f"{FLOW}.concat1"
    ins = sorted(g.predecessors(merge), key=lambda p: g.edges[p, merge]["port"])
    assert ins == [f"{FLOW}.slice1", f"{FLOW}.relu1"]           # a first, then c
    assert list(g.predecessors(f"{FLOW}.conv1")) == [f"{FLOW}.slice2"]
    assert g.nodes[f"{FLOW}.slice1"]["attrs"] == {"start": 0, "stop": 8}
    assert g.nodes[merge]["out_shape"] == (16, 16, 16)
    assert g.graph["containers"][FLOW]["type"] == "dataflow"


def test_split_by_sizes_and_concat_order_follow_the_spec():
    """y = [relu(x[:, 12:]), x[:, :12]]: sizes and the order of the concat are the spec's."""
    text = spec("block unit(w) { residual { split [12, 4] -> a b; from b; relu -> c; concat c a }\n"
                " shortcut none }")
    model = resdsl.compile(text).eval()
    flow = model.stages[0].blocks[0].residual.flow
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(flow(x), torch.cat([x[:, 12:].relu(), x[:, :12]], 1), rtol=0, atol=0)


def test_a_tensor_can_be_read_by_several_layers_and_names_are_local_to_the_body():
    """h feeds two layers (h is not overwritten by an in-place ReLU) and each unit has its own h."""
    text = spec("block unit(w) { residual { conv w k3; bn -> h; relu -> r; from h; sigmoid; add r }\n"
                " shortcut none }")
    model = resdsl.compile(text).eval()
    flow = model.stages[0].blocks[0].residual.flow
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        h = flow.bn1(flow.conv1(x))
        torch.testing.assert_close(flow(x), h.sigmoid() + h.relu(), rtol=0, atol=0)
        assert torch.isfinite(model(torch.randn(1, 3, 16, 16))).all()


def test_a_name_given_again_in_a_repeat_names_the_newest_tensor():
    """`repeat 3 { conv; bn -> h; add h? }`: a name rebound in a loop; y = x + b3(c3(x + b2(c2(x + b1(c1(x))))))."""
    text = spec("block unit(w) { residual { -> acc; repeat 3 { conv w k3; bn -> h; add acc h -> acc } }\n"
                " shortcut none }")
    model = resdsl.compile(text).eval()
    flow = model.stages[0].blocks[0].residual.flow
    x = torch.randn(1, 16, 5, 5)
    with torch.no_grad():
        acc = x
        for k in (1, 2, 3):
            acc = acc + getattr(flow, f"bn{k}")(getattr(flow, f"conv{k}")(acc))
        torch.testing.assert_close(flow(x), acc, rtol=0, atol=0)


@pytest.mark.parametrize("body,message", [
    ("conv w k3 -> h; relu; add h h", "reads the tensor 'h' twice"),
    ("conv w k3 -> h; from x; relu", "tensor 'h' is computed but never used"),
    ("conv w k3; bn -> h; from hh", "unknown tensor 'hh'"),
    ("split 2 -> a b; add a 3", "add takes names of tensors"),
    ("split [4, 4] -> a b; concat a b", "must be positive and add up to the 16 channels"),
    ("conv w k3 -> a b; add a", "conv makes one tensor, not 2"),
])
def test_mistakes_in_a_dataflow_body_are_located_errors(body, message):
    with pytest.raises(resdsl.SpecError, match=message.replace("[", r"\[").replace("`", ".")) as e:
        resdsl.graph(spec(f"block unit(w) {{ residual {{ {body} }}\n shortcut none }}"))
    assert e.value.span is not None and e.value.span.line == 2


# timm's models not in torchvision, written as resdsl specs with named tensors: timm's parameter counts
TIMM = {"res2net50_26w_4s": 25_699_120, "res2net101_26w_4s": 45_206_688, "res2net50_26w_6s": 37_051_448,
        "res2net50_26w_8s": 48_403_776, "res2net50_48w_2s": 25_287_304, "res2net50_14w_8s": 25_059_816,
        "res2next50": 24_671_464,
        "resnest14d": 10_611_688, "resnest26d": 17_069_448, "resnest50d": 27_483_240, "resnest101e": 48_275_016}


@pytest.mark.parametrize("name", TIMM)
def test_parameters_equal_timm(name):
    ref = timm.create_model(name)
    assert totals(resdsl.graph(name))[0] == sum(p.numel() for p in ref.parameters()) == TIMM[name]


@pytest.mark.parametrize("name", ["res2net50_26w_4s", "res2next50", "resnest14d", "resnest50d"])
def test_outputs_equal_timm(name):
    """Res2Net (its scale a loop over named tensors) and ResNeSt (split attention = split, sum,
    squeeze, softmax across the radix, mul, sum): after transfer from timm's model (BN
    randomised), the same outputs."""
    torch.manual_seed(0)
    ref = randomise_bn(timm.create_model(name))
    ours = resdsl.compile(name).eval()
    resdsl.transfer_weights(ref, ours)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert relative(ref(x), ours(x)) < 1e-5


def test_res2net_hierarchy_matches_the_paper_formula():
    """One non-first unit: y1 = K1(x1), y2 = K2(x2 + y1), y3 = K3(x3 + y2), y4 = x4 (Gao et al. §3.1)."""
    model = randomise_bn(resdsl.compile("res2net50_26w_4s"))
    flow = model.stages[0].blocks[1].residual.flow
    x = torch.randn(1, 256, 8, 8)
    def k(i, t):
        return getattr(flow, f"relu{i + 1}")(getattr(flow, f"bn{i + 1}")(getattr(flow, f"conv{i + 1}")(t)))

    with torch.no_grad():
        x1, x2, x3, x4 = k(0, x).split(26, 1)
        y1 = k(1, x1)
        y2 = k(2, x2 + y1)
        y3 = k(3, x3 + y2)
        expected = flow.bn5(flow.conv5(torch.cat([y1, y2, y3, x4], 1)))
        torch.testing.assert_close(flow(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["skresnet18", "skresnet34", "skresnext50_32x4d"])
def test_sknet_equals_timm(name):
    """SK-Net (not in torchvision): timm's skresnet18/34 and SKNet-50 (skresnext50_32x4d, grouped
    paths on the same input), parameters and outputs equal."""
    torch.manual_seed(0)
    ref = randomise_bn(timm.create_model(name))
    ours = resdsl.compile(name).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    resdsl.transfer_weights(ref, ours)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert relative(ref(x), ours(x)) < 1e-5


def test_selective_kernel_unit_softmax_across_branches():
    """SK-Net's unit (Li et al. 2019, Eqs. 1-6): y = s_a·A + s_b·B with (s_a, s_b) = softmax over
    the two paths of fc(δ(fc(mean(A + B)))), written out here with torch."""
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
    assert g.nodes[f"{FLOW}.softmax1"]["out_shape"] == (32, 1, 1)
    model = randomise_bn(resdsl.compile(text))
    flow = model.stages[0].blocks[0].residual.flow
    x = torch.randn(2, 16, 16, 16)
    with torch.no_grad():
        a = flow.relu1(flow.bn1(flow.conv1(x)))
        b = flow.relu2(flow.bn2(flow.conv2(x)))
        z = flow.conv4(flow.relu3(flow.bn3(flow.conv3((a + b).mean((2, 3), keepdim=True)))))
        s = z.view(2, 2, 16, 1, 1).softmax(1)
        torch.testing.assert_close(flow(x), s[:, 0] * a + s[:, 1] * b)


def test_dataflow_bodies_compile_with_torch_export_and_agree_with_flop_counter():
    from resdsl.cost.crosscheck import cross_check

    text = spec("block unit(w) { residual { split 2 -> a b; from b; conv w // 2 k3; bn; relu -> c; "
                "concat a c; conv w k1; bn -> h; avgpool; conv 4 k1; relu; conv w k1; sigmoid; mul h }\n"
                " post relu }")
    g = resdsl.graph(text)
    model = resdsl.compile(text).eval()
    assert cross_check(model, g)["ok"]
    x = torch.randn(2, 3, 16, 16)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_weights_of_a_dataflow_body_are_shared():
    text = spec("block unit(w) { residual { conv w k3; bn -> h; relu; conv w k3; add h }\n"
                " shortcut none }").replace("stage x n unit(16)", "stage x n unit(16) share")
    g = resdsl.graph(text)
    model = resdsl.compile(text)
    other = "stages.0.blocks.1.residual.flow.conv1"
    assert g.nodes[other]["shared_from"] == f"{FLOW}.conv1"
    assert model.get_submodule(other) is model.get_submodule(f"{FLOW}.conv1")


REBOUND = spec("block unit(w) { residual { -> acc; repeat 2 { conv w k3; bn -> h; add acc h -> acc }; "
               "split 2 -> a b; from b; relu; concat a } }")


def test_emitted_source_of_a_dataflow_body_is_bit_equal():
    """`compile -o model.py`: a dataflow body is a class with one line per step (names rebound in a
    loop become new variables); the standalone module gives the same outputs bit for bit."""
    net = resdsl.load_spec(REBOUND)
    model = randomise_bn(resdsl.compile(REBOUND))
    src = resdsl.emit_source(model, net)
    assert "acc_5 = acc_2 + h_4" in src and "torch.cat([t_6, a], 1)" in src     # `concat a`: current first
    other = emitted_twin(model, src).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(other(x), model(x))


def test_show_writes_a_dataflow_body_back():
    from resdsl import api
    from resdsl.source.show import show_net

    net = api.load_spec(REBOUND)
    text = show_net(net, "rebound")
    assert "add acc h -> acc" in text                    # a name given again is written again
    assert "relu -> t1" in text and "concat t1 a" in text  # an unnamed tensor read by name gets one
    g, g2 = api.graph_of(net), api.graph_of(api.load_spec(text))
    key = lambda g: sorted((n, d["kind"], d["out_shape"]) for n, d in g.nodes(data=True))  # noqa: E731
    assert key(g2) == key(g)


def test_render_names_tensors_and_draws_the_split():
    from resdsl.render import render

    g = resdsl.graph("skresnet18")
    dot = render(g, "layer", focus="stages.1.blocks.1").source
    for text in ("channels 0:64", "→ x1", "→ sa", "softmax across 2", "×"):
        assert text in dot, text


def test_fuse_folds_bn_into_convs_inside_a_dataflow_body():
    """resdsl.fuse: a BN that alone reads a conv's output is folded into it, outputs unchanged."""
    model = randomise_bn(resdsl.compile("skresnet18"))
    fused, report = resdsl.fuse(model, report=True)
    assert f"{FLOW.replace('stages.0', 'stages.1')}.conv1" in [n for n, _ in report.folded]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for n, m in fused.named_modules() if ".flow." in n)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert relative(model(x), fused(x)) < 1e-5


def test_receptive_field_through_an_attention_body_is_global_and_strides_still_count():
    """SK's softmax weights see the whole map, so every unit's output does; the jump still doubles
    at each strided stage (4, 8, 16, 32 input pixels)."""
    from resdsl.cost.receptive import receptive_fields

    g = resdsl.graph("skresnet18")
    rf = receptive_fields(g)
    last = [g.graph["stages"][i]["blocks"][-1] + ".post.relu1" for i in range(4)]
    assert [rf[n].stride for n in last] == [4, 8, 16, 32]
    assert all(rf[n].rf is None for n in last)


def test_a_gate_broadcasts_over_the_map_only_with_its_channels():
    from resdsl.ir import ops

    assert ops.infer("mul", {}, [(8, 1, 1), (8, 5, 5)]) == (8, 5, 5)
    assert ops.infer("mul", {}, [(8, 32), (8, 1)]) == (8, 32)          # C×L sequences (1-D nets)
    # issue 24: every axis broadcasts where one side is 1 — a 1×H×W spatial gate (FocalNet, CBAM),
    # a C×H×1 gate (coordinate attention)
    assert ops.infer("mul", {}, [(8, 5, 5), (1, 5, 5)]) == (8, 5, 5)
    assert ops.infer("mul", {}, [(8, 5, 1), (8, 5, 5)]) == (8, 5, 5)
    for bad in ([(4, 1, 1), (8, 5, 5)], [(8, 5, 3), (8, 5, 5)], [(8,), (8, 5, 5)]):
        with pytest.raises(ops.OpError, match="cannot multiply"):
            ops.infer("mul", {}, bad)


@pytest.mark.parametrize("name", ["skresnet18", "res2net50_26w_4s"])
def test_gradients_equal_timm(name):
    """Backward through a dataflow body (in-place ReLUs only on tensors nobody else reads): every
    transferred parameter gets timm's gradient; outputs equal bit for bit."""
    from conftest import assert_equal_after_transfer

    torch.manual_seed(0)
    ref = randomise_bn(timm.create_model(name))
    ours = resdsl.compile(name)
    assert_equal_after_transfer(ref, ours, torch.randn(2, 3, 64, 64))
