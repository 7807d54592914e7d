"""`resdsl analyze` and `resdsl sweep`: known answers on tiny nets written here."""
from __future__ import annotations

import itertools
import json
from math import comb
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import resdsl
from resdsl.analyze.gradients import (SHORTCUT, Ways, gradient_by_length, routable_blocks, route_counts, routed,
                                     sample_route)
from resdsl.analyze.lesion import candidates, deleted, lesion_study, lesionable, swapped
from resdsl.analyze.norms import block_norms
from resdsl.analyze.paths import count_paths
from resdsl.analyze.shattering import autocorrelation, measure
from resdsl.cli import main
from resdsl.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]

# Three units on a 4-channel 6×6 map: a two-branch unit (shortcut + 2 residuals), a plain
# unit (no shortcut) and an ordinary residual unit. Paths: 1 + 2 ways through the first,
# 1 through the second (length +1), 2 through the third:
#   length 1: 1 (shortcut, plain, shortcut); 2: 2 + 1 = 3; 3: 2.
MIXED = """
block two(width) {
  residual { conv width k3; bn; relu; conv width k3; bn }
  residual { conv width k1; bn }
}
block plain(width) {
  residual { conv width k3; bn; relu }
  shortcut none
}
block unit(width) {
  residual { conv width k3; bn; relu; conv width k3; bn }
  post relu
}
network mixed(width = 4) {
  input 1x6x6
  stem { conv width k3; bn; relu }
  stage two(width)
  stage plain(width)
  stage unit(width)
  head { avgpool; fc 3 }
}
"""

CHAIN = """
block unit(width) {
  residual { conv width k3; bn; relu; conv width k3; bn }
  post relu
}
network chain(n = 3, width = 4, skip = identity) {
  input 1x6x6
  stem { conv width k3; bn; relu }
  stage x n basic(width, skip = skip)
  head { avgpool; fc 3 }
}
"""

# Every block changes its shape: nothing can be lesioned.
GROWING = """
network growing() {
  input 1x8x8
  stem { conv 4 k3 }
  stage basic(8) stride 2
  stage basic(16) stride 2
  head { avgpool; fc 3 }
}
"""


def _spec(tmp_path, text, name="net.res"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# ---- paths -------------------------------------------------------------------------------------

def test_paths_hand_counted_mixed_blocks():
    pc = count_paths(resdsl.graph(MIXED))
    assert pc.counts == {1: 1, 2: 3, 3: 2}
    assert pc.total == 6


def test_paths_of_a_chain_are_binomial_and_resnet110_has_2_to_54():
    pc = count_paths(resdsl.graph(CHAIN, n=5))
    assert pc.counts == {k: comb(5, k) for k in range(6)}
    pc = count_paths(resdsl.graph(str(ROOT / "specs/cifar_resnet.res"), n=18))
    assert pc.blocks == 54 and pc.total == 2 ** 54
    assert all(pc.counts[k] == comb(54, k) for k in range(55))
    assert pc.mean_length == 27


def test_paths_plain_net_has_one_path_through_every_block():
    pc = count_paths(resdsl.graph(CHAIN, n=4, skip="none"))
    assert pc.counts == {4: 1}


def test_paths_dense_and_multi_residual_zoo_specs():
    dense = count_paths(resdsl.graph(str(ROOT / "specs/densenet_cifar.res")))
    assert dense.total == 2 ** dense.blocks          # concat: the layer's output or the carried input
    multi = count_paths(resdsl.graph(str(ROOT / "specs/multi_resnet.res"), depth=29))
    # depth 29: (29 - 2) // 9 = 3 units per stage, 9 in all, each = shortcut + 5 residuals: (1 + 5z)^9
    assert multi.counts == {k: comb(9, k) * 5 ** k for k in range(10)}


# ---- gradients by path length -----------------------------------------------------------------

# Known route counts (hand-counted, = the path counts of `analyze paths` for these nets):
# a dense block (concat) carries its input or its layer's output: (1 + z) per layer;
# a highway block: shortcut, transform or gate: (1 + 2z); a pre-activation block whose
# projection shortcut reads pre's output: (1 + z); a plain block: z.
DENSE = """
block layer(growth) {
  residual { bn; relu; conv growth k3 }
  combine concat
}
network dense(n = 2) {
  input 1x6x6
  stem { conv 4 k3 }
  stage x n layer(2)
  head { bn; relu; avgpool; fc 3 }
}
"""

HIGHWAY = """
block hw(width) {
  residual { conv width k3 bias; relu }
  combine gate k3 bias -1
}
network highway2(width = 4) {
  input 1x6x6
  stem { conv width k3 bias; relu }
  stage x 2 hw(width)
  head { avgpool; fc 3 }
}
"""

PREACT = """
block pa(width, stride = 1) {
  pre { bn; relu }
  residual { conv width k3 s stride; bn; relu; conv width k3 }
  shortcut projection
}
network preact(width = 4) {
  input 1x8x8
  stem { conv width k3 }
  stage pa(width)
  stage pa(2 * width, stride = 2)
  head { bn; relu; avgpool; fc 3 }
}
"""

# A residual with two parallel convolutions inside: 1 + 2z paths per block, but 1 + z routes
# (a route takes the branch whole), so 2 blocks: routes (1 + z)^2, paths (1 + 2z)^2.
INCEPTION = """
block inc(width) {
  residual {
    parallel concat {
      branch { conv 2 k1; bn; relu }
      branch { conv 2 k3; bn; relu }
    }
    conv width k1
  }
  post relu
}
network inception(width = 4) {
  input 1x6x6
  stem { conv width k3; bn; relu }
  stage x 2 inc(width)
  head { avgpool; fc 3 }
}
"""

ROUTED = {"chain": (CHAIN, {}, {0: 1, 1: 3, 2: 3, 3: 1}),
          "inception": (INCEPTION, {}, {0: 1, 1: 2, 2: 1}),
          "mixed": (MIXED, {}, {1: 1, 2: 3, 3: 2}),
          "dense": (DENSE, {}, {0: 1, 1: 2, 2: 1}),
          "highway": (HIGHWAY, {}, {0: 1, 1: 4, 2: 4}),
          "preact": (PREACT, {}, {0: 1, 1: 2, 2: 1}),
          # Li et al.'s n-layer shortcuts: 6 fc layers in units spanning 3: two units, (1 + z)^2
          "span3": (str(ROOT / "docs/analyze/linear_shortcut.res"), {"span": 3, "width": 3}, {0: 1, 1: 2, 2: 1})}


def _all_routes(ways):
    for choice in itertools.product(*[((SHORTCUT,) if w.shortcut else ()) + w.branches for w in ways]):
        yield dict(zip([w.name for w in ways], choice))


@pytest.mark.parametrize("name", sorted(ROUTED))
def test_gradients_of_all_routes_sum_to_the_full_gradient(name):
    """Every way through every block, multi-residual, plain, dense, highway and pre-activation
    blocks and n-layer shortcuts: routes counted as by hand, and their gradients add up exactly."""
    text, params, counts = ROUTED[name]
    torch.manual_seed(0)
    model = resdsl.compile(text, **params).eval()
    for m in model.modules():                       # BN away from identity, so every way matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    g = resdsl.graph(text, **params)
    ways = routable_blocks(model, g)
    assert route_counts(ways) == counts
    assert count_paths(g).counts == ({0: 1, 1: 4, 2: 4} if name == "inception" else counts)
    x = torch.randn((4, *model.input_shape))
    y = torch.tensor([0, 1, 2, 0])

    def grad():
        xg = x.clone().requires_grad_(True)
        out = model(xg)
        loss = F.cross_entropy(out, y, reduction="sum") if out.dim() == 2 and out.shape[1] == 3 else (out ** 2).sum()
        return torch.autograd.grad(loss, xg)[0]

    full = grad()
    total, parts = torch.zeros_like(full), 0
    for route in _all_routes(ways):
        with routed(model, route):
            part = grad()
        total += part
        parts += 1
        assert not torch.allclose(part, full, atol=1e-6)  # one route alone is not the whole gradient
    assert parts == sum(counts.values())
    assert torch.allclose(total, full, atol=1e-5), (total - full).abs().max()


def test_routes_of_a_length_are_drawn_uniformly():
    import random
    from collections import Counter

    model = resdsl.compile(MIXED).eval()
    ways = routable_blocks(model, resdsl.graph(MIXED))
    rng = random.Random(0)
    seen = Counter(tuple(sorted(sample_route(ways, 2, rng).items())) for _ in range(3000))
    assert len(seen) == 3                                        # the three routes of length 2
    assert all(abs(c / 3000 - 1 / 3) < 0.04 for c in seen.values())
    for route, _ in seen.items():
        assert sum(way != SHORTCUT for _, way in route) == 2
    with pytest.raises(SpecError, match="no route has length 0; lengths run 1..3"):
        sample_route(ways, 0, rng)


def test_gradient_by_length_on_multi_residual_and_plain_blocks():
    torch.manual_seed(0)
    model = resdsl.compile(MIXED).eval()
    lg = gradient_by_length(model, resdsl.graph(MIXED), torch.randn(2, 1, 6, 6), torch.tensor([0, 1]), None, 2)
    assert lg.routes == {1: 1, 2: 3, 3: 2} and set(lg.per_path) == {1, 2, 3}
    assert lg.total(2) == pytest.approx(3 * lg.per_path[2])
    with pytest.raises(SpecError, match=r"lengths must lie in 1..3 for mixed; got \[0\]"):
        gradient_by_length(model, resdsl.graph(MIXED), torch.randn(2, 1, 6, 6), torch.tensor([0, 1]), [0], 1)


def test_routing_refuses_nets_it_cannot_route():
    import networkx as nx

    flat = "network flat() {\n  input 1x6x6\n  stem { conv 2 k3 }\n  head { avgpool; fc 3 }\n}\n"
    with pytest.raises(SpecError, match="has no blocks"):
        routable_blocks(resdsl.compile(flat), resdsl.graph(flat))
    # a block on one of two parallel arms (hand-made graph: the DSL's blocks always chain)
    model = resdsl.compile(CHAIN, n=1)
    g = nx.DiGraph(name="arms", output="out", blocks={"stages.0.blocks.0": {"shortcut": "identity"}})
    scope = {"block": None, "role": "stem"}
    g.add_node("input", kind="input", scope={"block": None, "role": "input"})
    g.add_node("out", kind="add", scope=scope)
    g.add_node("side", kind="conv", scope=scope)
    g.add_node("stages.0.blocks.0.residual.conv1", kind="conv",
               scope={"block": "stages.0.blocks.0", "role": "residual"})
    g.add_node("stages.0.blocks.0.add", kind="add", scope={"block": "stages.0.blocks.0", "role": "merge"})
    g.add_edges_from([("input", "side"), ("side", "out"), ("input", "stages.0.blocks.0.residual.conv1"),
                      ("stages.0.blocks.0.residual.conv1", "stages.0.blocks.0.add"), ("input", "stages.0.blocks.0.add"),
                      ("stages.0.blocks.0.add", "out")])
    with pytest.raises(SpecError, match="block stages.0.blocks.0 lies beside another path"):
        routable_blocks(model, g)
    g.remove_node("side")
    assert routable_blocks(model, g) == [Ways("stages.0.blocks.0", True, ("residual",))]
    g.graph["blocks"]["stages.0.blocks.0.residual.inner"] = {"shortcut": "identity"}
    with pytest.raises(SpecError, match="block stages.0.blocks.0.residual.inner lies inside another block's branch"):
        routable_blocks(model, g)
    # the compiled module must match the graph it is routed by
    with pytest.raises(SpecError, match="branches .* in the graph but"):
        routable_blocks(resdsl.compile(MIXED), resdsl.graph(MIXED.replace("residual { conv width k1; bn }", "")))


def test_routes_of_inception_resnet_take_parallel_branches_whole():
    """Inception-ResNet-v2: branches with parallel convolutions inside are one route each, so
    routes are fewer than graph paths, each length holding the same blocks' choices."""
    from math import comb

    spec = str(ROOT / "specs/inception_resnet_v2.res")
    g = resdsl.graph(spec)
    with torch.device("meta"):
        model = resdsl.compile(spec)
    ways = routable_blocks(model, g)
    n = len(ways)
    assert all(w.shortcut and len(w.branches) == 1 for w in ways)
    assert route_counts(ways) == {k: comb(n, k) for k in range(n + 1)}
    paths = count_paths(g).counts
    assert all(paths[k] > comb(n, k) for k in range(1, n + 1))


# ---- lesion -------------------------------------------------------------------------------------

def _zero_branch(model, name):
    block = model.get_submodule(name)
    with torch.no_grad():
        for m in block.residual.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.zero_()
                m.bias.zero_()


def test_lesion_of_a_block_with_zero_residual_changes_nothing():
    torch.manual_seed(0)
    model = resdsl.compile(CHAIN).eval()
    g = resdsl.graph(CHAIN)
    _zero_branch(model, "stages.0.blocks.1")
    x = torch.randn(5, 1, 6, 6)
    with torch.no_grad():
        ref = model(x)
        with deleted(model, g, ["stages.0.blocks.1"]):
            same = model(x)
        with deleted(model, g, ["stages.0.blocks.0"]):
            other = model(x)
        after = model(x)
    assert torch.equal(ref, same)
    assert not torch.allclose(ref, other)               # a live block's deletion does change it
    assert torch.equal(ref, after)                      # hooks are gone afterwards


def test_lesion_of_plain_block_is_identity_and_swap_reorders():
    torch.manual_seed(0)
    model = resdsl.compile(CHAIN, skip="none").eval()
    g = resdsl.graph(CHAIN, skip="none")
    x = torch.randn(3, 1, 6, 6)
    b = [model.get_submodule(f"stages.0.blocks.{i}") for i in range(3)]
    with torch.no_grad():
        stem = model.stem(x)
        with deleted(model, g, ["stages.0.blocks.1"]):
            assert torch.allclose(model(x), model.head(b[2](b[0](stem))))
        expected = model.head(b[2](b[0](b[1](stem))))      # computed outside: the hooks act on b[0], b[1]
        with swapped(model, "stages.0.blocks.0", "stages.0.blocks.1"):
            got = model(x)
        assert torch.allclose(got, expected)
        assert not torch.allclose(got, model(x))


def test_lesion_refuses_shape_changing_blocks_with_a_clear_message(tmp_path):
    g = resdsl.graph(GROWING)
    assert all("shape changes" in c.refusal for c in candidates(g))
    with pytest.raises(SpecError, match="no block of growing can be deleted"):
        lesionable(g)
    dense = resdsl.graph(str(ROOT / "specs/densenet_cifar.res"))
    assert "merges by concat" in candidates(dense)[0].refusal


def test_lesion_study_counts():
    torch.manual_seed(0)
    model = resdsl.compile(CHAIN, n=4).eval()
    g = resdsl.graph(CHAIN, n=4)
    x, y = torch.randn(20, 1, 6, 6), torch.randint(0, 3, (20,))
    res = lesion_study(model, g, x, y, max_k=2, draws=3)
    assert len(res.single) == 4 and len(res.swaps) == 3
    assert [len(v) for v in res.random_k.values()] == [3, 3]


# ---- shattering -------------------------------------------------------------------------------

def test_autocorrelation_known_signals():
    const = torch.ones(2, 10)
    alt = torch.tensor([[1.0, -1.0] * 5])
    assert autocorrelation(const, 3) == pytest.approx([1, 1, 1, 1])
    assert autocorrelation(alt, 2) == pytest.approx([1, -1, 1])


def test_shattering_linear_net_is_perfectly_correlated_relu_net_is_not():
    linear = """
    block lin_unit() {
      residual { conv 8 k3 bias }
      shortcut none
    }
    network lin(n = 6) {
      input 2x6x6
      stem { conv 8 k3 bias }
      stage x n lin_unit()
      head { avgpool; fc 3 }
    }
    """
    torch.manual_seed(0)
    assert measure(resdsl.compile(linear), "lin", 8, points=32, draws=2).corr1 == pytest.approx(1.0, abs=1e-6)
    ll = resdsl.compile(str(ROOT / "specs/plain_looks_linear.res"), n=1, width=4)
    assert measure(ll, "ll", 5, points=16, draws=1).corr1 == pytest.approx(1.0, abs=1e-5)
    plain = resdsl.compile(CHAIN, n=6, skip="none")
    assert measure(plain, "plain", 14, points=32, draws=2).corr1 < 0.999


# ---- norms ------------------------------------------------------------------------------------

def test_norms_zero_residual_gives_zero_ratio_and_plain_net_is_refused():
    torch.manual_seed(0)
    model = resdsl.compile(CHAIN).eval()
    g = resdsl.graph(CHAIN)
    _zero_branch(model, "stages.0.blocks.2")
    res = {b.block: b for b in block_norms(model, g, torch.randn(6, 1, 6, 6))}
    assert res["stages.0.blocks.2"].ratio == 0.0
    assert res["stages.0.blocks.0"].ratio > 0.0
    with pytest.raises(SpecError, match="no residual block with a shortcut"):
        block_norms(resdsl.compile(CHAIN, skip="none"), resdsl.graph(CHAIN, skip="none"), torch.randn(2, 1, 6, 6))


# ---- CLI ------------------------------------------------------------------------------------

def test_cli_paths_json_and_figure(tmp_path):
    spec = _spec(tmp_path, MIXED)
    out = tmp_path / "paths.svg"
    r = CliRunner().invoke(main, ["analyze", "paths", spec, "--json", "-o", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["counts"] == {"1": 1, "2": 3, "3": 2} and doc["total_paths"] == 6
    assert out.read_text().lstrip().startswith("<?xml")
    r = CliRunner().invoke(main, ["analyze", "paths", spec, "-o", str(tmp_path / "paths.jpg")])
    assert r.exit_code == 1 and "must end in .png or .svg" in r.output and "Traceback" not in r.output


def test_cli_paths_gradients_at_init(tmp_path):
    spec = _spec(tmp_path, CHAIN)
    r = CliRunner().invoke(main, ["analyze", "paths", spec, "--gradients", "--limit", "4", "--json"])
    assert r.exit_code == 0, r.output
    grad = json.loads(r.output)["gradient"]
    assert set(grad["per_path_gradient"]) == {"0", "1", "2", "3"}
    assert grad["total_gradient"]["1"] == pytest.approx(3 * grad["per_path_gradient"]["1"])
    spec = _spec(tmp_path, MIXED, "mixed.res")                 # multi-residual and plain blocks: lengths 1..3
    r = CliRunner().invoke(main, ["analyze", "paths", spec, "--gradients", "--limit", "4", "--json"])
    assert r.exit_code == 0, r.output
    grad = json.loads(r.output)["gradient"]
    assert grad["routes"] == {"1": 1, "2": 3, "3": 2} and set(grad["per_path_gradient"]) == {"1", "2", "3"}
    r = CliRunner().invoke(main, ["analyze", "paths", spec, "--gradients", "--lengths", "0"])
    assert r.exit_code == 1 and "path lengths must lie in 1..3" in r.output and "Traceback" not in r.output
    spec = _spec(tmp_path, INCEPTION, "inception.res")         # routes fewer than paths: both shown, grad per route
    r = CliRunner().invoke(main, ["analyze", "paths", spec, "--gradients", "--limit", "2"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "routes" in r.output and "grad/route" in r.output and "grad/path" not in r.output


def test_cli_shattering_vs(tmp_path):
    spec = _spec(tmp_path, CHAIN)
    r = CliRunner().invoke(main, ["analyze", "shattering", spec, "--vs", f"{spec} skip=none", "--depth-param", "n",
                                  "--depths", "1,2", "--points", "16", "--draws", "1", "--json",
                                  "-o", str(tmp_path / "s.png")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert len(doc) == 4 and (tmp_path / "s.png").stat().st_size > 1000
    r = CliRunner().invoke(main, ["analyze", "shattering", spec, "--depth-param", "n"])
    assert r.exit_code != 0 and "go together" in r.output


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A digits ResNet trained for one epoch through `resdsl train` (a few seconds)."""
    out = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(main, ["train", str(ROOT / "specs/digits_resnet.res"), "--set", "width=8", "--set", "n=2",
                                  "--epochs", "1", "--output", str(out), "--experiment", "res", "-q",
                                  "--device", "cpu", "-j", "0"])
    assert r.exit_code == 0, r.output
    return out / "res"


def test_cli_lesion_and_norms_on_a_trained_run(trained_run, tmp_path):
    r = CliRunner().invoke(main, ["analyze", "lesion", "--checkpoint", str(trained_run), "--max-k", "2",
                                  "--draws", "2", "--limit", "200", "--json", "-o", str(tmp_path / "l.png")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert 0.0 <= doc["baseline_acc"] <= 1.0
    assert set(doc["single_deletion_acc"]) == {"stages.0.blocks.0", "stages.0.blocks.1", "stages.1.blocks.1"}
    assert "stages.1.blocks.0" in doc["not_lesioned"]
    r = CliRunner().invoke(main, ["analyze", "norms", "--checkpoint", str(trained_run), "--limit", "100", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["blocks"]) == 4
    r = CliRunner().invoke(main, ["analyze", "paths", "--checkpoint", str(trained_run), "--limit", "8", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["gradient"]["blocks"] == 4


# ---- sweep ------------------------------------------------------------------------------------

def test_sweep_match_params_picks_the_nearest_width():
    r = CliRunner().invoke(main, ["sweep", str(ROOT / "specs/digits_resnet.res"), "--grid", "n=1,2", "--set", "width=16",
                                  "--match", "params", "--adjust", "width", "--dry-run", "--json",
                                  "--output", "/nonexistent/never-written"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["settings"]
    target = rows[0]["params"]
    w = int(rows[1]["setting"].split("width=")[1].split("_")[0])
    spec = str(ROOT / "specs/digits_resnet.res")

    def params(width):
        g = resdsl.graph(spec, n=2, width=width)
        return sum(d["params"] for _, d in g.nodes(data=True))

    assert w < 16 and abs(params(w) - target) <= min(abs(params(w - 1) - target), abs(params(w + 1) - target))
    assert not Path("/nonexistent").exists()


def _sweep(out, *extra):
    return CliRunner().invoke(main, ["sweep", str(ROOT / "specs/digits_resnet.res"), "--grid", "n=1,2",
                                     "--set", "width=4", "--epochs", "1", "--device", "cpu", "-j", "0",
                                     "--output", str(out), "--json", *extra])


def test_sweep_trains_each_setting_then_skips_finished_ones(tmp_path):
    out = tmp_path / "sw"
    r = _sweep(out, "-o", str(tmp_path / "curves.png"))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    names = [s["setting"] for s in doc["settings"]]
    assert names == ["width=4_n=1", "width=4_n=2"]
    for s in doc["settings"]:
        assert s["status"] == "completed" and len(s["curve"]) == 1
        g = resdsl.graph(str(ROOT / "specs/digits_resnet.res"), width=4, n=int(s["setting"][-1]))
        assert s["params"] == sum(d["params"] for _, d in g.nodes(data=True))
    assert (tmp_path / "curves.png").stat().st_size > 1000
    stamp = (out / names[0] / "summary.json").stat().st_mtime_ns
    r = _sweep(out)
    assert r.exit_code == 0 and (out / names[0] / "summary.json").stat().st_mtime_ns == stamp


def test_sweep_takes_the_recipe_as_resdsl_train_does(tmp_path):
    """Options are converted as `resdsl train` converts them (--decay-milestones 1 was passed on
    as the string '1' and refused: 'Input should be a valid tuple')."""
    out = tmp_path / "sw"
    r = CliRunner().invoke(main, ["sweep", str(ROOT / "specs/digits_resnet.res"), "--grid", "n=1", "--set", "width=4",
                                  "--epochs", "2", "--sched", "step", "--decay-milestones", "1", "--lr", "0.1",
                                  "--device", "cpu", "-j", "0", "--output", str(out), "--json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)["settings"]
    assert row["status"] == "completed" and row["epochs_done"] == 2
    from resdsl.train.rundir import RunDir

    # the lr logged after each epoch: /10 at epoch 1 (the default milestones 50%, 75% of 2 would give 0.001)
    assert [r["lr"] for r in RunDir(out / "width=4_n=1").epochs()] == pytest.approx([0.01, 0.01])


def test_sweep_bad_grid_is_one_clear_error(tmp_path):
    r = CliRunner().invoke(main, ["sweep", str(ROOT / "specs/digits_resnet.res"), "--grid", "n", "--output", str(tmp_path)])
    assert r.exit_code != 0 and "--grid expects NAME=V1,V2" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["sweep", str(ROOT / "specs/digits_resnet.res"), "--grid", "n=../x", "--output", str(tmp_path)])
    assert r.exit_code != 0 and "cannot name a run directory" in r.output


@pytest.mark.slow
def test_sweep_on_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    r = CliRunner().invoke(main, ["sweep", str(ROOT / "specs/digits_resnet.res"), "--grid", "n=1", "--set", "width=4",
                                  "--epochs", "1", "--device", "cpu", "-j", "0", "--output", str(out), "--json",
                                  "--backend", "ray", "--ray-cpus", "1"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)["settings"]
    assert row["status"] == "completed" and (out / "width=4_n=1" / "best.pt").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted(p.name for p in (ROOT / "specs").glob("*.res")))
def test_graph_analyses_apply_or_refuse_on_every_zoo_spec(spec):
    """Paths work on every zoo spec; lesion and norms either apply or refuse with SpecError."""
    from resdsl.analyze.norms import measurable

    g = resdsl.graph(str(ROOT / "specs" / spec))
    pc = count_paths(g)
    assert pc.total >= 1 and 0 <= min(pc.counts) <= max(pc.counts) <= pc.blocks   # a path enters a block once
    for check in (lesionable, measurable):
        try:
            assert check(g)
        except SpecError as e:
            assert e.message.split(":")[0] in ("lesion", "norms")
    with torch.device("meta"):
        model = resdsl.compile(str(ROOT / "specs" / spec))
    try:                                  # routes take parallel layers inside a branch whole: never more than paths
        routes = route_counts(routable_blocks(model, g))
        assert set(routes) == set(pc.counts) and all(routes[k] <= pc.counts[k] for k in routes)
    except SpecError as e:
        assert e.message.startswith("gradient by path length")


# ---- hessian (Li et al. 2016) -------------------------------------------------------------------

TWO_LAYER = """
block two_fc() {
  residual { fc 1 bias false; fc 1 bias false }
  shortcut none
}
network two_layer() {
  input [1]
  stage two_fc()
}
"""


def test_hessian_of_a_two_layer_linear_net_matches_the_hand_computed_one():
    from resdsl.analyze.hessian import loss_fn

    model = resdsl.compile(TWO_LAYER)
    with torch.no_grad():
        w1, w2 = 0.7, -1.3
        model.get_submodule("stages.0.blocks.0.residual.fc1").weight.fill_(w1)
        model.get_submodule("stages.0.blocks.0.residual.fc2").weight.fill_(w2)
    theta, loss = loss_fn(model, samples=64)
    h = torch.autograd.functional.hessian(loss, theta)
    # L = ½ mean (w2 w1 x − a x)²: with s = mean x², c = mean x·y = a s,
    # H = [[w2² s, 2 w1 w2 s − c], [2 w1 w2 s − c, w1² s]] (theta is [w1, w2] in module order).
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, generator=gen, dtype=torch.float64)
    a = torch.randn(1, 1, generator=gen, dtype=torch.float64)
    s, c = (x ** 2).mean().item(), (x ** 2).mean().item() * a.item()
    want = torch.tensor([[w2 * w2 * s, 2 * w1 * w2 * s - c], [2 * w1 * w2 * s - c, w1 * w1 * s]], dtype=torch.float64)
    assert torch.allclose(h, want, atol=1e-10)


def test_hessian_spans_at_zero_and_lanczos_agrees_with_exact():
    from resdsl.analyze.hessian import set_start, spectrum

    spec = str(ROOT / "docs/analyze/linear_shortcut.res")
    conds = {}
    for span, layers in ((1, 4), (1, 8), (2, 4), (2, 8)):
        m = resdsl.compile(spec, span=span, layers=layers)
        set_start(m, "zero")
        conds[span, layers] = spectrum(m).condition
    assert conds[2, 4] == pytest.approx(conds[2, 8], rel=1e-6)      # depth-invariant (Li et al.)
    assert conds[1, 8] > 1.5 * conds[1, 4]                          # grows with depth
    m = resdsl.compile(spec, span=3, layers=6)
    set_start(m, "zero")
    assert spectrum(m).flat                                          # 3-shortcuts: H = 0 at zero
    m = resdsl.compile(spec, span=1, layers=6, width=3)
    set_start(m, "small")
    exact, approx = spectrum(m), spectrum(m, max_exact=1, steps=54)
    assert approx.method.startswith("lanczos")
    assert approx.eig_max == pytest.approx(exact.eig_max, rel=1e-6)
