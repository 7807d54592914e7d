"""Compiled specs equal torchvision's ResNets: parameter counts, outputs and gradients."""
import pytest
import torch
import torchvision

import resdsl
from conftest import SPECS, assert_equal_after_transfer

RESNET = SPECS / "resnet.res"

# torchvision's published parameter counts (torchvision.models docs)
CASES = [
    ("resnet18", dict(depth=18), 11_689_512),
    ("resnet34", dict(depth=34), 21_797_672),
    ("resnet50", dict(depth=50), 25_557_032),
    ("resnet101", dict(depth=101), 44_549_160),
    ("resnet152", dict(depth=152), 60_192_808),
    ("resnext50_32x4d", dict(depth=50, cardinality=32, base_width=4), 25_028_904),
    ("wide_resnet50_2", dict(depth=50, base_width=128), 68_883_240),
]


def count(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name,params,expected", CASES, ids=[c[0] for c in CASES])
def test_parameter_count_equals_torchvision(name, params, expected):
    ours = resdsl.compile(RESNET, **params)
    ref = getattr(torchvision.models, name)()
    assert count(ref) == expected
    assert count(ours) == expected


@pytest.mark.parametrize("name,params", [(c[0], c[1]) for c in CASES[:3]] + [(CASES[5][0], CASES[5][1])],
                         ids=[c[0] for c in CASES[:3]] + [CASES[5][0]])
def test_outputs_and_gradients_equal_after_transfer(name, params):
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)()
    ours = resdsl.compile(RESNET, **params)
    assert_equal_after_transfer(ref, ours, torch.randn(2, 3, 64, 64), atol=0.0, grad_rtol=1e-5)


def test_graph_macs_match_torchvision_figures():
    # torchvision docs: GFLOPS (multiply-adds) 1.81 / 4.09 for resnet18 / resnet50
    macs = {d: sum(a["macs"] for _, a in resdsl.graph(RESNET, depth=d).nodes(data=True)) for d in (18, 50)}
    assert round(macs[18] / 1e9, 3) == 1.814
    assert round(macs[50] / 1e9, 3) == 4.089


@pytest.mark.parametrize("n,expected", [(3, 269_722), (5, 464_154), (7, 658_586), (9, 853_018),
                                        (18, 1_727_962), (200, 19_421_274)])
def test_cifar_resnet_parameter_counts(n, expected):
    # He et al. 2015, Table 6 (0.27M ... 19.4M); exact counts with BN parameters, option A
    g = resdsl.graph(SPECS / "cifar_resnet.res", n=n)
    assert sum(d["params"] for _, d in g.nodes(data=True)) == expected
    if n <= 9:
        assert count(resdsl.compile(SPECS / "cifar_resnet.res", n=n)) == expected
