"""Every residual CNN of torchvision's classification zoo as a resdsl zoo name: the honest to-do list.

Each row is a torchvision model. Parameter counts and MACs are compared for every row (graphs
and meta-device torchvision models, nothing allocated); outputs after `transfer_weights` for one
model per family, with BN statistics and affine parameters randomised first so that a wrong
activation or a missing layer cannot hide. Families the language cannot yet express are
xfail(strict=True): when one starts passing, the mark must go.
"""
import contextlib

import pytest
import torch
import torchvision

import resdsl
from conftest import randomise_bn
from resdsl.ir.shapes import totals

# (torchvision name, parameters as published by torchvision / issue 10 or None)
FAMILIES = {
    "resnet": [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032),
               ("resnet101", 44_549_160), ("resnet152", 60_192_808), ("resnext50_32x4d", 25_028_904),
               ("resnext101_32x8d", 88_791_336), ("resnext101_64x4d", 83_455_272),
               ("wide_resnet50_2", 68_883_240), ("wide_resnet101_2", 126_886_696)],
    "densenet": [("densenet121", 7_978_856), ("densenet161", 28_681_000), ("densenet169", 14_149_480),
                 ("densenet201", 20_013_928)],
    "regnet": [("regnet_x_400mf", 5_495_976), *((f"regnet_x_{v}", None) for v in
                                               ("800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")),
               ("regnet_y_400mf", 4_344_144), *((f"regnet_y_{v}", None) for v in
                                               ("800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf"))],
    "mobilenet": [("mobilenet_v2", 3_504_872), ("mobilenet_v3_large", 5_483_032),
                  ("mobilenet_v3_small", 2_542_856)],
    "efficientnet": [("efficientnet_b0", 5_288_548), *((f"efficientnet_b{i}", None) for i in range(1, 7)),
                     ("efficientnet_b7", 66_347_960)],
    "efficientnet_v2": [("efficientnet_v2_s", 21_458_488), ("efficientnet_v2_m", 54_139_356),
                        ("efficientnet_v2_l", 118_515_272)],
    "convnext": [("convnext_tiny", 28_589_128), ("convnext_small", 50_223_688), ("convnext_base", 88_591_464),
                 ("convnext_large", 197_767_336)],
    "mnasnet": [("mnasnet0_5", 2_218_512), ("mnasnet0_75", 3_170_208), ("mnasnet1_0", 4_383_312),
                ("mnasnet1_3", 6_282_256)],
    "shufflenet": [("shufflenet_v2_x0_5", 1_366_792), ("shufflenet_v2_x1_0", 2_278_604),
                   ("shufflenet_v2_x1_5", 3_503_624), ("shufflenet_v2_x2_0", 7_393_996)],
}

# Families without a spec yet, and what they need that the language lacks.
NOT_YET = {
}

# The smallest model of each family is run end to end.
RUN = {"resnet": "resnet18", "densenet": "densenet121", "regnet": ("regnet_x_400mf", "regnet_y_400mf"),
       "mobilenet": ("mobilenet_v2", "mobilenet_v3_small"), "efficientnet": "efficientnet_b0",
       "efficientnet_v2": "efficientnet_v2_s", "convnext": "convnext_tiny", "mnasnet": "mnasnet0_5",
       "shufflenet": "shufflenet_v2_x0_5"}


def _row(family, name, *rest):
    marks = [pytest.mark.xfail(strict=True, reason=NOT_YET[family])] if family in NOT_YET else []
    return pytest.param(family, name, *rest, marks=marks, id=name)


ROWS = [_row(f, n, p) for f, models in FAMILIES.items() for n, p in models]
RUNS = [_row(f, n) for f, names in RUN.items() for n in ((names,) if isinstance(names, str) else names)]


def test_the_table_is_torchvisions_residual_zoo():
    assert sum(len(m) for m in FAMILIES.values()) == 55
    assert len({n for m in FAMILIES.values() for n, _ in m}) == 55


def reference(name: str) -> torch.nn.Module:
    """The torchvision model with random weights; on the meta device, so nothing is allocated."""
    with torch.device("meta"), _regnet_widths_on_cpu():
        return getattr(torchvision.models, name)()


@contextlib.contextmanager
def _regnet_widths_on_cpu():
    """torchvision computes RegNet widths with tensors and .tolist(), which meta tensors cannot do."""
    from torchvision.models.regnet import BlockParams

    original = BlockParams.from_init_params.__func__

    def on_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return original(cls, *args, **kwargs)

    BlockParams.from_init_params = classmethod(on_cpu)
    try:
        yield
    finally:
        BlockParams.from_init_params = classmethod(original)


@pytest.mark.parametrize("family,name,published", ROWS)
def test_parameters_and_macs_equal_torchvisions(family, name, published):
    from resdsl.cost.crosscheck import counted_macs

    params, macs = totals(resdsl.graph(name))
    ref = reference(name)
    expected = sum(p.numel() for p in ref.parameters())
    if published is not None:
        assert expected == published          # the table is torchvision's
    assert params == expected
    assert macs == sum(counted_macs(ref, (3, 224, 224))[0].values())


@pytest.mark.slow
@pytest.mark.parametrize("family,name", RUNS)
def test_outputs_equal_after_transfer(family, name):
    ours = resdsl.compile(name)
    torch.manual_seed(0)
    ref = randomise_bn(getattr(torchvision.models, name)())
    resdsl.transfer_weights(ref, ours)
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = ref(x), ours(x)
    assert ((a - b).norm() / a.norm()).item() < 1e-5
