"""Static profile figures against references: torchvision's published MACs, flop_counter, gradients."""
import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import resdsl
from conftest import SPECS
from resdsl.cost.crosscheck import cross_check
from resdsl.cost.memory import activation_elements
from resdsl.cost.receptive import receptive_fields
from resdsl.cost.static import profile
from resdsl.cost.tables import rows

RESNET = SPECS / "resnet.res"

# torchvision.models docs: GFLOPS column (which counts multiply-adds) and parameter counts
ZOO = [
    ("resnet18", RESNET, dict(depth=18), 1.814, 11_689_512),
    ("resnet50", RESNET, dict(depth=50), 4.089, 25_557_032),
    ("resnet101", RESNET, dict(depth=101), 7.801, 44_549_160),
    ("resnet152", RESNET, dict(depth=152), 11.514, 60_192_808),
    ("resnext50_32x4d", RESNET, dict(depth=50, cardinality=32, base_width=4), 4.230, 25_028_904),
    ("wide_resnet50_2", RESNET, dict(depth=50, base_width=128), 11.398, 68_883_240),
    ("densenet121", SPECS / "densenet.res", {}, 2.834, 7_978_856),
]


def doc_of(spec, level="stage", batch_size=1, **params):
    net = resdsl.load_spec(spec, **params)
    return profile(net, resdsl.graph_of(net), level, batch_size)


def torchvision_on_meta(name):
    """A torchvision model and input that hold shapes only: flop_counter needs no real arithmetic."""
    with torch.device("meta"):
        return getattr(torchvision.models, name)().eval(), torch.empty(1, 3, 224, 224)


@pytest.mark.parametrize("name,spec,params,gmacs,n_params", ZOO, ids=[z[0] for z in ZOO])
def test_macs_and_params_equal_references(name, spec, params, gmacs, n_params):
    if not spec.exists():
        pytest.skip(f"{spec.name} not in specs/ yet")
    d = doc_of(spec, **params)
    assert round(d["totals"]["macs"] / 1e9, 3) == gmacs
    assert d["totals"]["flops"] == 2 * d["totals"]["macs"]
    assert d["totals"]["params"] == n_params
    model, x = torchvision_on_meta(name)
    assert sum(p.numel() for p in model.parameters()) == n_params
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() == d["totals"]["flops"]


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.res")), ids=lambda p: p.stem)
def test_zoo_graph_macs_agree_with_flop_counter(spec):
    net = resdsl.load_spec(spec)
    g = resdsl.graph_of(net)
    with torch.device("meta"):
        c = cross_check(resdsl.compile(spec), g)
    assert c["ok"], c


def test_rows_add_up_at_every_level():
    net = resdsl.load_spec(RESNET, depth=50)
    g = resdsl.graph_of(net)
    counts = {level: len(profile(net, g, level)["rows"]) for level in ("network", "stage", "block", "layer")}
    assert counts == {"network": 1, "stage": 6, "block": 18, "layer": len(g) - 1}
    for level in counts:
        d = profile(net, g, level, batch_size=8)
        for key in ("params", "macs", "flops", "activation_bytes"):
            assert sum(r[key] for r in d["rows"]) == d["totals"][key]
        assert sum(r["params_pct"] for r in d["rows"]) == pytest.approx(100.0)


def test_block_rows_name_blocks_and_their_outputs():
    g = resdsl.graph(RESNET, depth=50)
    blocks = rows(g, "block")
    first = next(r for r in blocks if r.name == "stages.1.blocks.0")
    assert first.what == "bottleneck (projection)"
    assert first.output == "stages.1.blocks.0.post.relu1"
    assert first.out_shape == (512, 28, 28)
    layer = next(r for r in rows(g, "layer") if r.name == "stages.1.blocks.0.residual.conv2")
    assert layer.what == "conv 3×3 s2"


def test_activation_memory_is_every_op_output_times_batch_and_bytes():
    net = resdsl.load_spec(SPECS / "cifar_resnet.res", n=1)
    g = resdsl.graph_of(net)
    # stem: conv, bn, relu at 16×32×32; counted by hand from the spec
    stem = next(r for r in rows(g, "stage") if r.name == "stem")
    assert activation_elements(g, stem.nodes) == 3 * 16 * 32 * 32
    d32, d16 = (profile(net, g, "stage", 4, p)["totals"] for p in ("fp32", "bf16"))
    total = activation_elements(g, list(g))
    assert d32["activation_bytes"] == total * 4 * 4 and d16["activation_bytes"] == total * 4 * 2
    assert d32["param_bytes"] == {"fp32": 4 * d32["params"], "bf16": 2 * d32["params"]}


# -- receptive field: static formula vs the support of a gradient --------------------------

def dense_stand_in(model: nn.Module) -> nn.Module:
    """Same geometry, every path live: max -> average pooling, conv weights 1/fan_in, BN identity.

    With positive weights and a positive input no ReLU blocks a gradient and no max pool routes
    it to one pixel, so the support of ∂y/∂x is exactly the receptive field.
    """
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.MaxPool2d):
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf,
                    nn.AvgPool2d(m.kernel_size, m.stride, m.padding, count_include_pad=False))
        elif isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0 / m.weight[0].numel())
    return model.eval()


def gradient_rf(model: nn.Module, taps: list[nn.Module], height: int = 512, width: int = 33) -> list[int]:
    """Rows of the input that the centre pixel of each tap's output depends on (height only:
    the field does not depend on the width, which is kept small to keep the test fast)."""
    outs = []
    hooks = [t.register_forward_hook(lambda m, i, o: outs.append(o)) for t in taps]
    x = torch.ones(1, 3, height, width, requires_grad=True)
    model(x)
    for h in hooks:
        h.remove()
    fields = []
    for y in outs:
        (grad,) = torch.autograd.grad(y[0, :, y.shape[2] // 2, y.shape[3] // 2].sum(), x, retain_graph=True)
        live = (grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten().tolist()
        assert live[0] > 0 and live[-1] < height - 1, "field clipped by the border: use a taller input"
        fields.append(live[-1] - live[0] + 1)
    return fields


def test_receptive_field_of_resnet50_equals_gradient_support_of_torchvision_model():
    torch.manual_seed(0)
    ref = dense_stand_in(torchvision.models.resnet50())
    measured = gradient_rf(ref, [ref.layer1, ref.layer2, ref.layer3, ref.layer4])
    d = doc_of(RESNET, depth=50)
    assert [(s["rf"], s["stride"]) for s in d["stages"]] == list(zip(measured, [4, 8, 16, 32]))
    assert measured[-1] == 427          # the commonly quoted figure for torchvision's ResNet-50
    assert next(r for r in d["rows"] if r["name"] == "head")["rf"] is None    # global pooling


def test_receptive_field_of_cifar_resnet_equals_gradient_support_of_compiled_model():
    torch.manual_seed(0)
    model = dense_stand_in(resdsl.compile(SPECS / "cifar_resnet.res", n=2))
    measured = gradient_rf(model, list(model.stages), height=96, width=9)
    assert [s["rf"] for s in doc_of(SPECS / "cifar_resnet.res", n=2)["stages"]] == measured


def test_receptive_field_formula_with_dilation_and_pooling():
    spec = """network t() {
      input 1x64x64
      stem { conv 4 k3 s2; maxpool k3 s2; conv 4 k3 d2 }
      head { avgpool; fc 2 }
    }"""
    g = resdsl.graph(spec)
    f = receptive_fields(g)
    assert (f["stem.conv1"].rf, f["stem.conv1"].stride) == (3, 2)
    assert (f["stem.maxpool1"].rf, f["stem.maxpool1"].stride) == (7, 4)
    assert (f["stem.conv2"].rf, f["stem.conv2"].stride) == (7 + 2 * 2 * 4, 4)
    assert f["head.avgpool1"].rf is None and f["head.fc1"].rf is None
