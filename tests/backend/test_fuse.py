"""resdsl.fuse: BN folded, linear branches merged; eval outputs equal the unfused model's on every zoo spec."""
import pytest
import torch
from torch import nn

import resdsl
from conftest import SPECS, run_cli
from conftest import randomise_bn as conftest_randomise_bn
from conftest import randomise_zero_weights
from resdsl.backend import fold
from resdsl.zoo.catalog import zoo

ENTRIES = zoo(SPECS)
BIG = 30_000_000                  # compiled and fused too, but marked slow
SMALL_INPUT = {"inception_resnet_v2": 75, "inception_v3": 75,      # their stems need at least 75×75
               "vit": 224, "deit": 224, "mixer": 224}    # a position embedding / token MLP of a fixed length


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Running statistics and affine parameters far from (0, 1): folding must get them right."""
    return conftest_randomise_bn(model, seed, spread=0.3)


def assert_close_rel(got, want, rel=1e-5):
    err = ((got - want).abs().max() / want.abs().max()).item()
    assert err <= rel, f"relative error {err:.2e} > {rel:.0e}"


def _params(m):
    return sum(p.numel() for p in m.parameters())


def _small_input(entry):
    if len(entry.input_shape) == 2:                    # a C×L sequence (causal convs: any length)
        return torch.randn(2, entry.input_shape[0], min(entry.input_shape[1], 512))
    c, h = entry.input_shape[0], entry.input_shape[1]
    size = SMALL_INPUT.get(entry.name, min(h, 64))
    return torch.randn(2, c, size, size)


@pytest.mark.parametrize("entry", [pytest.param(e, marks=pytest.mark.slow) if e.params > BIG else e
                                   for e in ENTRIES], ids=[e.name for e in ENTRIES])
def test_fused_zoo_equals_unfused(entry):
    torch.manual_seed(0)
    model = randomise_bn(randomise_zero_weights(resdsl.compile(entry.spec, entry.name)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused, report = resdsl.fuse(model, report=True)
    x = _small_input(entry)
    with torch.no_grad():
        assert_close_rel(fused(x), model(x))
    assert not fused.training
    assert report.params_before == entry.params and report.params_after == _params(fused) <= entry.params
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items()), "the original changed"
    if any(isinstance(m, nn.BatchNorm2d) for m in fused.modules()):
        assert report.left, "a BN survived without a reason in the report"


TIMM = {"repvgg_a0": (9_108_968, 8_309_384), "repvgg_a1": (14_092_264, 12_789_864),
        "repvgg_b0": (15_817_960, 14_339_048)}     # timm's parameter counts, training / reparameterised


@pytest.mark.parametrize("name", list(TIMM))
def test_repvgg_equals_timm_in_training_and_fused_form(name):
    timm = pytest.importorskip("timm")
    from timm.utils import reparameterize_model

    train_params, fused_params = TIMM[name]
    ours = resdsl.compile(SPECS / "repvgg.res", name)
    ref = randomise_bn(timm.create_model(name, pretrained=False), seed=1)
    assert _params(ours) == _params(ref) == train_params
    resdsl.transfer_weights(ref, ours)
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
        fused, ref_fused = resdsl.fuse(ours), reparameterize_model(ref)
        assert _params(fused) == _params(ref_fused) == fused_params
        assert_close_rel(fused(x), ref_fused(x))
    convs = [m for m in fused.modules() if isinstance(m, nn.Conv2d)]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert all(c.kernel_size == (3, 3) for c in convs)       # a plain VGG: one 3×3 conv per block


def _spec(tmp_path, body: str, input_shape="8x12x12") -> nn.Module:
    path = tmp_path / "t.res"
    path.write_text(f"network t() {{\n  input {input_shape}\n{body}\n  head {{ avgpool; fc 5 }}\n}}\n")
    return resdsl.compile(path)


def test_bn_before_padded_conv_is_left_with_its_reason(tmp_path):
    model = randomise_bn(_spec(tmp_path, "  stem { bn; conv 16 k3; bn; relu; bn; conv 16 k1 }"))
    fused, report = resdsl.fuse(model, report=True)
    left = dict(report.left)
    assert "zero-padded conv" in left["stem.bn1"] and "nonzero shift" in left["stem.bn1"]
    folded = dict(report.folded)
    assert "stem.conv1" in folded and "stem.conv2" in folded       # conv1+bn2; bn3 into the 1×1 conv2
    assert [type(m).__name__ for m in fused.stem] == ["BatchNorm2d", "Conv2d", "ReLU", "Conv2d"]
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        assert_close_rel(fused(x), model(x))
    assert "stem.bn1" in str(report)


def test_bn_before_padded_conv_folds_when_its_shift_is_zero(tmp_path):
    model = randomise_bn(_spec(tmp_path, "  stem { bn; conv 16 k3; relu }"))
    with torch.no_grad():
        bn = model.stem.bn1
        bn.bias.copy_(bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps))   # β = μ·γ/σ
    fused = resdsl.fuse(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        assert_close_rel(fused(x), model(x))


def test_acnet_branches_merge_into_one_grouped_conv(tmp_path):
    """ACNet (Ding et al. 2019): 3×3 + 1×3 + 3×1, grouped, summed = one 3×3 conv, still grouped."""
    body = """  stem { parallel sum {
      branch { conv 16 k3 groups 4; bn }
      branch { conv 16 k1x3 groups 4; bn }
      branch { conv 16 k3x1 groups 2; bn }
    } }"""
    model = randomise_bn(_spec(tmp_path, body, "16x10x10"))
    fused, report = resdsl.fuse(model, report=True)
    conv = fused.stem.parallel1
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.groups == 2
    x = torch.randn(2, 16, 10, 10)
    with torch.no_grad():
        assert_close_rel(fused(x), model(x))


def test_grouped_block_with_identity_stays_grouped(tmp_path):
    body = """  stage x 2 g()"""
    path = tmp_path / "g.res"
    path.write_text("block g() {\n residual { conv in k3 groups 4; bn }\n residual { conv in k1 groups 4; bn }\n"
                    " scale 0.5\n post relu\n}\n"
                    f"network t() {{\n input 16x8x8\n{body}\n head {{ avgpool; fc 5 }}\n}}\n")
    model = randomise_bn(resdsl.compile(path))
    fused, report = resdsl.fuse(model, report=True)
    convs = [m for m in fused.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(c.groups == 4 and c.kernel_size == (3, 3) for c in convs)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        assert_close_rel(fused(x), model(x))


def test_merge_refuses_a_non_centred_conv():
    a = nn.Conv2d(4, 4, 3, padding=1)
    b = nn.Conv2d(4, 4, 3, padding=0)
    conv, why = fold.merge([a, b], 4)
    assert conv is None and "not centred" in why


def test_scale_and_eval_drop_path_fold_into_the_last_conv(tmp_path):
    """y = x + 0.2·(1 − p)·F(x) at test time (stochastic depth, batch mode): the factor goes into F's conv."""
    path = tmp_path / "s.res"
    path.write_text("block s() {\n residual { conv in k3; bn; relu; conv in k1; bn }\n scale 0.2\n post relu\n}\n"
                    "network t() {\n input 8x8x8\n stage x 2 s()\n drop_path 0.5\n head { avgpool; fc 5 }\n}\n")
    model = randomise_bn(resdsl.compile(path))
    fused, report = resdsl.fuse(model, report=True)
    blocks = list(fused.stages[0].blocks)
    assert all(b.unit.scale == 1.0 and b.unit.drop_prob == 0.0 for b in blocks)
    assert any("scale" in what for _, what in report.folded)
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        assert_close_rel(fused(x), model(x))


def test_fused_model_exports(tmp_path):
    model = randomise_bn(resdsl.compile(SPECS / "repvgg.res", "repvgg_a0", classes=10))
    fused = resdsl.fuse(model)
    x = torch.randn(1, 3, 32, 32)
    program = torch.export.export(fused, (x,))
    with torch.no_grad():
        assert_close_rel(program.module()(x), fused(x))
    onnx = pytest.importorskip("onnxruntime")
    path = tmp_path / "a0.onnx"
    torch.onnx.export(fused, (x,), str(path), dynamo=False)
    out = onnx.InferenceSession(str(path)).run(None, {onnx.InferenceSession(str(path)).get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert_close_rel(torch.from_numpy(out), fused(x), rel=1e-4)


_cli = run_cli


def test_compile_fuse_exports_the_inference_form(tmp_path):
    out = tmp_path / "a0.pt2"
    torch.manual_seed(0)
    r = _cli("compile", SPECS / "repvgg.res", "--network", "repvgg_a0", "--set", "classes=10", "--fuse", "-o", out)
    assert r.exit_code == 0, r.output
    assert "7,041,194 parameters" in r.output       # timm fused 8,309,384, with a 10-way fc: − 1,281,000 + 12,810
    program = torch.export.load(str(out))
    assert not any("running_mean" in k for k in program.state_dict)
    torch.manual_seed(0)
    model = resdsl.compile(SPECS / "repvgg.res", "repvgg_a0", classes=10).eval()
    x = torch.randn(1, 3, 224, 224)                  # the exported program's input size
    with torch.no_grad():
        assert_close_rel(program.module()(x), model(x))


def test_render_fuse_draws_one_conv_per_repvgg_block(tmp_path):
    out = tmp_path / "a0.dot"
    r = _cli("render", SPECS / "repvgg.res", "--network", "repvgg_a0", "--fuse", "--level", "layer",
             "--focus", "stages.1", "-o", out)
    assert r.exit_code == 0, r.output
    dot = out.read_text()
    assert "stages.1.blocks.0.conv" in dot and "3×3 conv 48" in dot
    assert "bn" not in dot.lower().replace("bnd", "") and "residuals" not in dot


def test_fused_graph_counts_the_fused_parameters():
    from resdsl.backend.fuse_graph import inference_graph

    for spec, name in ((SPECS / "repvgg.res", "repvgg_a0"), (SPECS / "resnet.res", "resnet"),
                       (SPECS / "recurrent_resnet.res", None)):
        net = resdsl.load_spec(spec, name)
        g, report = inference_graph(resdsl.graph_of(net))
        assert sum(g.nodes[n]["params"] for n in g) == report.params_after
    assert report.params_after < report.params_before


def test_profile_run_fuse():
    import json

    r = _cli("profile", SPECS / "cifar_resnet.res", "--set", "n=1", "--run", "--fuse", "--json",
             "--batch-size", "2", "--repeats", "1", "--warmup", "0")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["measured"]["forward"]["latency_ms"] > 0
    bad = _cli("profile", SPECS / "cifar_resnet.res", "--fuse")
    assert bad.exit_code != 0 and "--run" in bad.output


def test_timm_names_reach_the_repvgg_spec():
    from resdsl.ir.shapes import totals

    for name, (train_params, _) in TIMM.items():
        assert totals(resdsl.graph(name))[0] == train_params


def test_report_lists_no_folded_module_as_left():
    """A BN folded into its conv (and a block merged into one conv) is reported as folded, not as left."""
    model = randomise_bn(resdsl.compile(SPECS / "digits_resnet.res"))
    _, report = resdsl.fuse(model, report=True)
    bns = [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(report.folded) == len(bns) == 10          # every BN here follows a conv
    assert not any(".bn" in n or n.rsplit(".", 1)[-1].startswith("bn") for n, _ in report.left), report.left
    assert {n for n, _ in report.left} == {f"stages.{i}.blocks.{j}" for i in (0, 1) for j in (0, 1)}


@pytest.mark.parametrize("spec,name", [(SPECS / "recurrent_resnet.res", None), (SPECS / "multi_resnet.res", None),
                                       (SPECS / "repvgg.res", "repvgg_a0")])
def test_fused_model_is_compiled_from_the_fused_graph(spec, name):
    """fuse rewrites the graph and compiles it: the fused model's graph passes lint, counts the fused
    model's parameters (weight-shared blocks included), and names its modules."""
    from resdsl.ir.shapes import lint, totals

    model = randomise_bn(resdsl.compile(spec, name, classes=10) if name else resdsl.compile(spec))
    fused, report = resdsl.fuse(model, report=True)
    g = fused.source_graph.g
    lint(g)
    assert totals(g)[0] == report.params_after == _params(fused) < report.params_before
    weighted = {n.rsplit(".", 1)[0] for n, _ in fused.named_parameters(remove_duplicate=False)}
    assert weighted <= set(g.nodes)
    x = torch.randn(2, *model.input_shape[:1], 32, 32)
    with torch.no_grad():
        assert_close_rel(fused(x), model.eval()(x))


def test_render_fuse_compiles_nothing():
    """The drawing's fusion is the graph pass alone: no torch, no weights (render --fuse lowers once)."""
    import subprocess
    import sys

    code = ("import sys, resdsl; from resdsl.backend.fuse_graph import inference_graph; "
            "g, r = inference_graph(resdsl.graph('repvgg_a0')); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(r.params_after)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["8309384"]          # timm's reparameterised repvgg_a0


def test_fuse_needs_the_graph_a_model_was_compiled_from(tmp_path):
    with pytest.raises(ValueError, match="compiled by resdsl"):
        resdsl.fuse(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    model = randomise_bn(_spec(tmp_path, "  stem { conv 8 k3; bn; relu }"))
    model.stem.relu1 = nn.GELU()                         # changed after compiling: the graph no longer says it
    with pytest.raises(ValueError, match="changed after compiling"):
        resdsl.fuse(model)


def test_fuse_after_reset_classifier(tmp_path):
    model = randomise_bn(_spec(tmp_path, "  stem { conv 8 k3; bn; relu }"))
    model.reset_classifier(3)
    fused = resdsl.fuse(model)
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        assert fused(x).shape == (2, 3)
        assert_close_rel(fused(x), model.eval()(x))


def test_fused_model_keeps_the_frozen_parts_frozen(tmp_path):
    model = randomise_bn(_spec(tmp_path, "  stem { conv 8 k3; bn; relu }"))
    model.freeze(["stem"])
    fused = resdsl.fuse(model)
    assert fused.frozen == ("stem",)
    assert [p.requires_grad for p in fused.stem.parameters()] and not any(
        p.requires_grad for p in fused.stem.parameters())
    assert all(p.requires_grad for n, p in fused.named_parameters() if not n.startswith("stem."))
