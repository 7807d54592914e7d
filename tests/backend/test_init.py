"""A freshly compiled zoo transformer starts as the library model it is named after.

Each parameter tensor of the compiled model is paired with the reference's (torchvision or timm,
built with random weights) by transfer_weights' structural matcher, then its statistics are
compared with the reference tensor's: zeros where the reference is zeros, a constant where it is
that constant, the same standard deviation (10 % for large tensors) and the same family of
distribution, read from the reference's own values (uniform: max|w| ≤ √3·σ; a normal cut at 2σ:
max|w| ≤ 2.3σ; otherwise an untruncated normal). Nothing is taken from resdsl's code."""
import copy
import math

import pytest
import torch
import torchvision

import resdsl
from resdsl.backend.transfer import transfer_weights
from resdsl.source.show import show_net


def reference(name: str):
    if name in TIMM:
        timm = pytest.importorskip("timm")
        return timm.create_model(name, pretrained=False)
    return getattr(torchvision.models, name)()


def paired(ref: torch.nn.Module, mine: torch.nn.Module) -> list[tuple[str, torch.Tensor, str, torch.Tensor]]:
    """(reference name, tensor, my name, tensor) for every parameter, paired by transfer_weights:
    each reference tensor is tagged with its own number in a copy, transferred into a copy of
    mine, and the tag each of my tensors receives names its partner."""
    tagged, probe = copy.deepcopy(ref), copy.deepcopy(mine)
    ref_params = dict(ref.named_parameters())
    names = list(ref_params)
    with torch.no_grad():
        for i, p in enumerate(tagged.parameters()):
            p.fill_(i + 1)
    transfer_weights(tagged, probe)
    mine_params = dict(mine.named_parameters())
    out = []
    for n, p in probe.named_parameters():
        tag = int(p.flatten()[0].item())
        assert torch.all(p == tag), f"{n} received more than one reference tensor"
        out.append((names[tag - 1], ref_params[names[tag - 1]], n, mine_params[n]))
    assert len(out) == len(names)
    return out


def family(t: torch.Tensor) -> str:
    """The distribution a large tensor was drawn from, by how far its values reach in σ."""
    reach = (t.abs().max() / t.std()).item()
    return "uniform" if reach <= math.sqrt(3) + 0.01 else "normal cut at 2σ" if reach <= 2.3 else "normal"


def same_start(rname: str, r: torch.Tensor, mname: str, m: torch.Tensor) -> str | None:
    """Why tensor m does not start as tensor r does (None when it does)."""
    r, m = r.detach().float().flatten(), m.detach().float().flatten()
    if torch.all(r == r[0]):
        return None if torch.all(m == r[0]) else f"{mname}: {rname} is all {r[0].item():g}, mine is not"
    if torch.all(m == m[0]):
        return f"{mname} is constant, {rname} is not"
    tol = max(0.1, 4 / math.sqrt(2 * r.numel()))        # a std estimate's error is about σ/√(2n)
    if abs(m.std() / r.std() - 1) > tol:
        return f"{mname}: std {m.std():.4g}, {rname}: {r.std():.4g}"
    if r.numel() >= 1000 and family(m) != family(r):
        return f"{mname}: {family(m)}, {rname}: {family(r)}"
    return None


FAST = ["deit_tiny_distilled_patch16_224", "mixer_s16_224", "swin_t", "maxvit_t"]
TIMM = ["deit_tiny_distilled_patch16_224", "mixer_s16_224", "swin_tiny_patch4_window7_224"]


@pytest.mark.parametrize("name", FAST + [pytest.param(n, marks=pytest.mark.slow) for n in      # 5-15 s each
                                         ("vit_b_16", "swin_v2_t", "swin_tiny_patch4_window7_224")])
def test_a_compiled_transformer_starts_as_the_library_model(name):
    torch.manual_seed(0)
    ref = reference(name)
    torch.manual_seed(1)
    mine = resdsl.compile(name)
    problems = [p for pair in paired(ref, mine) if (p := same_start(*pair))]
    assert not problems, "\n".join(problems[:10])


def test_vit_init_at_a_small_size_against_torchvision_vision_transformer():
    """torchvision's ViT init (patch conv, MLP, nn.MultiheadAttention, zero head) at a width that is
    fast to build, written as the zoo's vit.res writes it."""
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    ref = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=128, mlp_dim=512)
    spec = """
block attention_unit(heads) { residual { layernorm eps 1e-6; attention heads } }
block mlp_unit(hidden) { residual { layernorm eps 1e-6; fc hidden; gelu; fc in } }
network small() {
  input 3x32x32
  stem { conv 128 k8 s8 p0 bias; tokens; class_token; pos_embed }
  stage x 2 [attention_unit(4), mlp_unit(512)]
  head { layernorm eps 1e-6; token 0; fc 1000 }
  init conv trunc_normal (1 / (3 * 8 * 8)) ** 0.5 bias zeros
  init fc xavier_uniform bias normal 1e-6
  init attention qkv xavier_uniform bias zeros
  init attention proj default bias zeros
  init head fc zeros bias zeros
}"""
    torch.manual_seed(1)
    mine = resdsl.compile(spec)
    problems = [p for pair in paired(ref, mine) if (p := same_start(*pair))]
    assert not problems, "\n".join(problems)


def test_the_statistics_see_a_different_start():
    """The comparison is not vacuous: the default (CNN) initialisation of the same ViT fails it."""
    torch.manual_seed(0)
    ref = reference("deit_tiny_distilled_patch16_224")
    mine = resdsl.compile("deit_tiny_distilled_patch16_224")
    with torch.no_grad():
        for m in mine.modules():
            if isinstance(m, torch.nn.Linear):
                m.reset_parameters()
    assert any(same_start(*pair) for pair in paired(ref, mine))


TINY = """
block mlp_unit(hidden) { residual { layernorm eps 1e-6; fc hidden; gelu; fc in } }
network tiny() {
  input 3x16x16
  stem { conv 32 k4 s4 p0 bias; tokens; class_token; pos_embed }
  stage x 2 mlp_unit(64)
  head { layernorm; token 0; fc 10 }
  INIT
}"""


def test_sections_kinds_order_and_bias_left_alone():
    """`init stage fc` reaches the units' fc layers, not the head's; a later init overwrites an
    earlier one; without `bias` the biases keep their default; the CNN default stays for convs."""
    torch.manual_seed(0)
    plain = resdsl.compile(TINY.replace("INIT", ""))
    torch.manual_seed(0)
    m = resdsl.compile(TINY.replace("INIT", "init fc constant 0.5 bias constant 0.25\n  init stage fc zeros"))
    units = m.get_submodule("stages.0.blocks.0.residual.fc1")
    assert torch.all(units.weight == 0) and torch.all(units.bias == 0.25)
    assert torch.all(m.head.fc1.weight == 0.5) and torch.all(m.head.fc1.bias == 0.25)
    assert torch.equal(m.stem.conv1.weight, plain.stem.conv1.weight)        # He-normal, as before
    torch.manual_seed(0)
    only_weight = resdsl.compile(TINY.replace("INIT", "init head fc zeros"))
    assert torch.all(only_weight.head.fc1.weight == 0) and not torch.all(only_weight.head.fc1.bias == 0)


def test_fills_draw_what_torch_nn_init_draws():
    """default = torch's own Linear init (its bound 1/√fan_in, measured on a fresh nn.Linear);
    lecun_normal: std √(1/fan_in), nothing beyond 2.3σ; xavier_uniform: the Glorot bound."""
    torch.manual_seed(0)
    m = resdsl.compile(TINY.replace("INIT", "init stage fc default bias default\n  init head fc lecun_normal"
                                            "\n  init conv xavier_uniform"))
    w = m.get_submodule("stages.0.blocks.0.residual.fc1").weight        # 64×32
    fresh = torch.nn.Linear(32, 64)
    assert abs(w.abs().max() / fresh.weight.abs().max() - 1) < 0.05
    assert abs(w.std() / fresh.weight.std() - 1) < 0.1
    h = m.head.fc1.weight                                                 # 10×32
    assert h.abs().max() <= 2.3 * (1 / 32) ** 0.5
    c = m.stem.conv1.weight                                               # 32×3×4×4
    bound = (6 / (3 * 16 + 32 * 16)) ** 0.5
    assert c.abs().max() <= bound and c.abs().max() > 0.95 * bound


def test_show_writes_the_init_back():
    text = TINY.replace("INIT", "init head fc trunc_normal 0.5 ** 2 bias zeros\n  init fc normal 0.01")
    shown = show_net(resdsl.api.load_spec(text))
    assert "init head fc trunc_normal 0.25 bias zeros" in shown and "init fc normal 0.01" in shown
    torch.manual_seed(0)
    a = resdsl.compile(text)
    torch.manual_seed(0)
    b = resdsl.compile(shown)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n
