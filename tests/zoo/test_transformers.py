"""Tokens, attention and learned tensors against the real thing: torchvision's and timm's ViT,
Swin (V1, V2), MaxViT, DeiT and MLP-Mixer. Parameter counts and MACs come from the reference
models built on the meta device and counted by torch.utils.flop_counter; outputs are compared
after transfer_weights, with every norm and bias randomised first (never the code under test)."""
import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import resdsl
from conftest import ROOT
from resdsl.backend.transfer import transfer_weights
from resdsl.ir.shapes import totals

TORCHVISION = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14", "swin_t", "swin_s", "swin_b",
               "swin_v2_t", "swin_v2_s", "swin_v2_b", "maxvit_t"]
TIMM = ["deit_tiny_distilled_patch16_224", "mixer_b16_224", "swin_tiny_patch4_window7_224"]


def meta_costs(make, shape) -> tuple[int, int]:
    """(parameters, MACs) of a reference model built on the meta device, MACs by flop_counter."""
    with torch.device("meta"):
        m = make().eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        m(torch.zeros(1, *shape, device="meta"))
    return sum(p.numel() for p in m.parameters()), counter.get_total_flops() // 2


@pytest.mark.parametrize("name", TORCHVISION + TIMM)
def test_params_and_macs_equal_the_reference(name):
    g = resdsl.graph(name)
    shape = tuple(g.graph["input_shape"])
    if name in TIMM:
        timm = pytest.importorskip("timm")
        make = lambda: timm.create_model(name, pretrained=False)  # noqa: E731
    else:
        make = getattr(torchvision.models, name)
    assert totals(g) == meta_costs(make, shape)


def randomise(model: torch.nn.Module) -> None:
    """Every 1-D tensor (norm scales and shifts, biases), learned tokens and heads made non-trivial."""
    torch.manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() == 1 or p.dim() == 3 or "head" in n:
                p.normal_(0, 0.5 if p.dim() == 1 else 0.05)


def same_outputs(ref, mine, shape, batch=2, atol=1e-4):
    ref.eval(), mine.eval()
    randomise(ref)
    report = transfer_weights(ref, mine, shape)
    x = torch.randn(batch, *shape)
    with torch.no_grad():
        a, b = ref(x), mine(x)
    assert a.abs().max() > 0.1          # not a zero head
    torch.testing.assert_close(b, a, atol=atol, rtol=1e-4)
    return report


VIT_TINY = """
import "{root}/resdsl/zoo/specs/vit.res"
network tiny(classes = 10) {{
  input 3x32x32
  stem {{ conv 64 k16 s16 p0 bias; tokens; class_token; pos_embed; dropout 0.0 }}
  stage x 2 [attention_unit(4), mlp_unit(128)]
  head {{ layernorm eps 1e-6; token 0; fc classes }}
}}
"""


def test_vit_equals_torchvision_packed_attention():
    """torchvision's nn.MultiheadAttention (packed in_proj_weight) maps onto `attention`."""
    from torchvision.models.vision_transformer import VisionTransformer

    ref = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
                            num_classes=10)
    mine = resdsl.compile(VIT_TINY.format(root=ROOT))
    assert sum(p.numel() for p in mine.parameters()) == sum(p.numel() for p in ref.parameters())
    report = same_outputs(ref, mine, (3, 32, 32))
    assert any(s.endswith("self_attention.in_proj") for s, _ in report.pairs)


def test_swin_t_equals_torchvision_on_a_small_input():
    """Windows, shifts, padding (64×64: grids 16, 8, 4, 2 under a window of 7), relative bias."""
    ref = torchvision.models.swin_t(num_classes=10)
    same_outputs(ref, resdsl.compile("swin_t", size=64, classes=10), (3, 64, 64))


def test_swin_v2_t_equals_torchvision_on_a_small_input():
    """Cosine attention, continuous position bias, post-norm, V2 patch merging."""
    ref = torchvision.models.swin_v2_t(num_classes=10)
    same_outputs(ref, resdsl.compile("swin_v2_t", size=64, classes=10), (3, 64, 64))


def same_gradients(ref, mine, shape, pairs):
    """Backward through both models (eval: no stochastic depth) gives the same input gradient and the
    same gradients on the named (torchvision, resdsl) parameters."""
    ref.eval(), mine.eval()
    randomise(ref)
    transfer_weights(ref, mine, shape)
    x = torch.randn(2, *shape)
    grads = []
    for m in (ref, mine):
        xi = x.clone().requires_grad_()
        (m(xi) * torch.linspace(-1, 1, 10)).sum().backward()
        grads.append(xi.grad)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4)
    for a, b in pairs:
        torch.testing.assert_close(mine.get_parameter(b).grad, ref.get_parameter(a).grad, atol=1e-5, rtol=1e-4)


def test_swin_and_vit_gradients_equal_torchvision():
    """The attention's backward (q, k, v unbound from the packed qkv, the relative-position table, the
    kept shift mask) against torchvision's: Swin at 64×64 (shifted, padded windows), a small ViT."""
    from torchvision.models.vision_transformer import VisionTransformer

    same_gradients(torchvision.models.swin_t(num_classes=10), resdsl.compile("swin_t", size=64, classes=10),
                   (3, 64, 64), [("features.1.1.attn.qkv.weight", "stages.0.blocks.2.residual.attention1.qkv.weight"),
                                 ("features.1.1.attn.relative_position_bias_table",
                                  "stages.0.blocks.2.residual.attention1.relative_position_bias_table")])
    ref = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
                            num_classes=10)
    same_gradients(ref, resdsl.compile(VIT_TINY.format(root=ROOT)), (3, 32, 32),
                   [("encoder.layers.encoder_layer_0.self_attention.in_proj_weight",
                     "stages.0.blocks.0.residual.attention1.qkv.weight")])


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_shift_mask_is_made_once_and_not_while_tracing():
    """A shifted window attention keeps its mask per map size (torchvision builds it on every call);
    a jit trace makes its own, so nothing traced is kept."""
    from resdsl.backend.tokens import Attention, shift_mask

    att = Attention(32, 2, window=(4, 4), shift=(2, 2), position="table")
    x = torch.randn(1, 8, 8, 32)
    traced = torch.jit.trace(att, x, check_trace=False)       # (the check would run it eagerly)
    assert not att.__dict__.get("_shift_masks")
    first = att.window_mask(8, 8, (2, 2), x)
    assert att.window_mask(8, 8, (2, 2), x) is first
    assert torch.equal(first, shift_mask(8, 8, (4, 4), (2, 2)).unsqueeze(1))
    assert att.window_mask(12, 12, (2, 2), x).shape == (9, 1, 16, 16)
    torch.testing.assert_close(traced(x), att(x))


@pytest.mark.slow   # MaxViT needs 224×224 (a 7×7 grid after stride 32); about 5 s on one core
def test_maxvit_t_equals_torchvision():
    ref = torchvision.models.maxvit_t()
    same_outputs(ref, resdsl.compile("maxvit_t"), (3, 224, 224), batch=1)


def test_deit_distilled_equals_timm():
    timm = pytest.importorskip("timm")
    ref = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=32, num_classes=10)
    same_outputs(ref, resdsl.compile("deit_tiny_distilled_patch16_224", size=32, classes=10), (3, 32, 32))


def test_mixer_equals_timm():
    timm = pytest.importorskip("timm")
    ref = timm.create_model("mixer_s16_224", pretrained=False, img_size=32, num_classes=10)
    same_outputs(ref, resdsl.compile("mixer_s16_224", size=32, classes=10), (3, 32, 32))


def test_timm_swin_equals():
    timm = pytest.importorskip("timm")
    ref = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, num_classes=10)
    same_outputs(ref, resdsl.compile("swin_tiny_patch4_window7_224", classes=10), (3, 224, 224), batch=1)


def test_shapes_read_as_tokens():
    g = resdsl.graph("vit_b_16")
    out = g.nodes["stem.pos_embed1"]["out_shape"]
    assert str(resdsl.ir.ops.fmt(out)) == "197×768 tokens" and out.prefix == 1
    g = resdsl.graph("swin_t")
    assert resdsl.ir.ops.fmt(g.nodes["stem.layernorm1"]["out_shape"]) == "56×56×96 grid"


def test_attention_receptive_field_is_global():
    from resdsl.cost.receptive import receptive_fields

    g = resdsl.graph(VIT_TINY.format(root=ROOT))
    rf = receptive_fields(g)
    n = next(n for n, d in g.nodes(data=True) if d["kind"] == "attention")
    assert rf[n].rf is None and rf[n].stride == 16      # global, on 16-pixel patches


def test_stage_steps_name_units_in_order():
    """A stage step of two units: blocks 0, 1 are layer 0's attention and MLP units."""
    g = resdsl.graph("vit_b_16")
    assert "stages.0.blocks.0.residual.attention1" in g and "stages.0.blocks.1.residual.fc1" in g
    assert "stages.0.blocks.23.residual.fc2" in g and "stages.0.blocks.24.residual.fc1" not in g


def test_emitted_source_is_bit_equal(tmp_path):
    """compile -o model.py: the token modules and attention are written out; same outputs, bit for bit."""
    import importlib.util

    from resdsl.backend.emit import emit_source

    for spec, kw, shape in ((VIT_TINY.format(root=ROOT), {}, (3, 32, 32)), ("swin_v2_t", {"size": 32}, (3, 32, 32))):
        model = resdsl.compile(spec, **kw).eval()
        path = tmp_path / "model.py"
        path.write_text(emit_source(model))
        loader = importlib.util.spec_from_file_location("emitted", path)
        mod = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(mod)
        emitted = mod.build().eval()
        emitted.load_state_dict(model.state_dict())
        x = torch.randn(2, *shape)
        with torch.no_grad():
            assert torch.equal(model(x), emitted(x))


def test_onnx_export_checked_by_onnxruntime(tmp_path):
    """The exporter runs the file in onnxruntime at two batch sizes and refuses it on a mismatch."""
    pytest.importorskip("onnxruntime")
    from resdsl.exporters import write_onnx

    for spec, kw in ((VIT_TINY.format(root=ROOT), {}), ("swin_t", {"size": 32, "classes": 10})):
        model = resdsl.compile(spec, **kw).eval()
        write_onnx(model, tmp_path / "m.onnx", 2)
        assert (tmp_path / "m.onnx").stat().st_size > 0


def test_show_writes_stage_steps_back():
    """`resdsl show` of a two-unit stage compiles to the same graph costs."""
    from click.testing import CliRunner

    from resdsl.cli import main

    out = CliRunner().invoke(main, ["show", "swin_v2_t", "--set", "size=64"])
    assert out.exit_code == 0, out.output
    assert "stage x 2 [window_attention_stages00(" in out.output
    assert totals(resdsl.graph(out.output)) == totals(resdsl.graph("swin_v2_t", size=64))


def test_fuse_leaves_attention_and_reports_it():
    from resdsl.backend.fuse import fuse

    model = resdsl.compile(VIT_TINY.format(root=ROOT)).eval()
    fused, report = fuse(model, report=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x))
    assert report.left and any("not linear" in why for _, why in report.left)
