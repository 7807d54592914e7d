"""resdsl render: levels and focus, shortcut styles, golden DOT text, the zoo at the default level."""
import pytest
from click.testing import CliRunner

import resdsl
from resdsl.cli import main
from resdsl.errors import SpecError
from resdsl.render import DEFAULT_LEVEL, LEVELS, render, view
from resdsl.render.styles import SHORTCUT_STYLES

from conftest import ROOT, SPECS

GOLDEN = ROOT / "tests" / "golden" / "render"

# name -> (spec, parameters, level, focus); the DOT text of each is reviewed as a diff
GOLDEN_CASES = {
    "resnet50_network": ("resnet.res", {}, "network", None),
    "resnet50_stage": ("resnet.res", {}, "stage", None),
    "resnet18_block": ("resnet.res", {"depth": 18}, "block", None),
    "resnet50_unit_layer": ("resnet.res", {}, None, "stages.1.blocks.0"),
    "cifar_resnet20_stage": ("cifar_resnet.res", {}, "stage", None),
    "cifar_resnet20_stage1_block": ("cifar_resnet.res", {}, "block", "stages.1"),
    "sknet18_unit_layer": ("sknet.res", {}, None, "stages.1.blocks.1"),      # a dataflow body: split, softmax, mul
}


@pytest.fixture(scope="module")
def r50():
    return resdsl.graph(SPECS / "resnet.res")


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_dot(name, update_golden):
    spec, params, level, focus = GOLDEN_CASES[name]
    source = render(resdsl.graph(SPECS / spec, **params), level=level, focus=focus).source
    path = GOLDEN / f"{name}.dot"
    if update_golden:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run pytest --update-golden"
    assert source == path.read_text(encoding="utf-8"), f"{name}: drawing changed; review, then --update-golden"


ZOO = sorted(p.name for p in SPECS.glob("*.res"))


@pytest.mark.parametrize("spec,params", [(s, {}) for s in ZOO]
                         + [("resnet.res", {"depth": 152}), ("cifar_resnet.res", {"n": 200})])
def test_default_level_is_legible(spec, params):
    """At most ~60 drawn nodes at the default level for every zoo spec, ResNet-1202 included."""
    v = view(resdsl.graph(SPECS / spec, **params), DEFAULT_LEVEL)
    assert len(v.nodes) <= 60


def test_levels_nest(r50):
    sizes = [len(view(r50, level).nodes) for level in LEVELS]
    assert sizes == sorted(sizes) and sizes[-1] == r50.number_of_nodes() + 1   # every op and `output`


def test_stage_level_collapses_identical_units(r50):
    v = view(r50, "stage")
    titles = [n.title for n in v.nodes.values() if n.role == "block"]
    assert titles == ["bottleneck", "bottleneck ×2", "bottleneck", "bottleneck ×3",
                      "bottleneck", "bottleneck ×5", "bottleneck", "bottleneck ×2"]
    assert "3×3 conv 128, s2 · BN · ReLU" in v.nodes["stages.1.blocks.0"].lines


def test_shortcuts_are_edges_with_kind_and_label(r50):
    edges = [e for e in view(r50, "stage").edges if e.shortcut]
    assert [e.shortcut for e in edges] == ["projection", "identity"] * 4
    assert edges[2].label == "1×1 conv, s2 + BN" and edges[2].dst == "stages.1.blocks.0.merge"
    zeropad = [e for e in view(resdsl.graph(SPECS / "cifar_resnet.res"), "block").edges if e.shortcut == "zeropad"]
    assert [e.label for e in zeropad] == ["zero-pad to 32 ch, s2", "zero-pad to 64 ch, s2"]


def test_shapes_on_edges(r50):
    labels = {(e.src, e.dst): e.label for e in view(r50, "network").edges}
    assert labels[("stem", "stages.0")] == "64×56×56" and labels[("stages.3", "head")] == "2048×7×7"


def test_every_shortcut_kind_has_a_style_and_unknown_kinds_fall_back():
    g = resdsl.graph(SPECS / "resnet.res", depth=18)
    blocks = g.graph["blocks"]
    blocks["stages.0.blocks.0"]["shortcut"] = "mystery"       # a kind from the future
    blocks["stages.0.blocks.1"]["merge"] = "gate"
    blocks["stages.1.blocks.1"]["scale"] = 0.2
    blocks["stages.2.blocks.1"]["merge"] = "concat"
    edges = [e for e in view(g, "block").edges if e.shortcut]
    assert [e.shortcut for e in edges] == ["mystery", "gated", "projection", "scaled", "projection", "concat",
                                           "projection", "identity"]
    assert edges[0].label == "mystery" and edges[3].label == "×0.2"
    dot = render(g, level="block").source
    for kind in ("mystery", "gated", "scaled", "concat"):
        assert f'class="shortcut {kind}"' in dot and f'class="legend shortcut {kind}"' in dot


def test_preactivation_projection_says_so():
    spec = "block u(w, stride = 1) { pre { bn; relu }; residual { conv w k3 s stride }; shortcut projection }\n" \
           "network n() { input 3x8x8; stem { conv 8 k3 }; stage x 2 u(16) stride 2; head { avgpool; fc 2 } }"
    edges = [e for e in view(resdsl.graph(spec), "block").edges if e.shortcut]
    assert edges[0].label == "1×1 conv, s2 on pre(x)" and edges[0].src == "stem"


def test_focus(r50):
    v = view(r50, "layer", "stages.0.blocks.0")
    assert set(v.nodes) - {"focus.in", "focus.out"} == {n for n in r50 if n.startswith("stages.0.blocks.0.")}
    assert v.nodes["focus.in"].title == "from stem" and v.nodes["focus.out"].title == "to stages.0.blocks.1"
    assert [e.shortcut for e in v.edges if e.shortcut] == ["projection"] * 3     # in -> conv -> bn -> add
    with pytest.raises(SpecError) as err:
        view(r50, "layer", "stages.1.block.0")
    assert "did you mean 'stages.1.blocks.0'?" in err.value.notes


def test_costs_on_nodes(r50):
    assert "25.56M params" not in render(r50).source.split("\n", 2)[2]
    assert "9.54k params · 118.01M MACs" in render(r50, level="network", show_cost=True).source


def test_cli_writes_dot(tmp_path):
    out = tmp_path / "r.dot"
    res = CliRunner().invoke(main, ["render", str(SPECS / "resnet.res"), "--set", "depth=18", "--level", "block",
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text().startswith("digraph")


def test_cli_rejects_unknown_format_and_bad_focus(tmp_path):
    res = CliRunner().invoke(main, ["render", str(SPECS / "resnet.res"), "-o", str(tmp_path / "r.jpg")])
    assert res.exit_code == 2 and "use .svg, .png, .pdf or .dot" in res.output
    res = CliRunner().invoke(main, ["render", str(SPECS / "resnet.res"), "--focus", "stage.9", "-o",
                                    str(tmp_path / "r.dot")])
    assert res.exit_code == 1 and "nothing to focus on at 'stage.9'" in res.output
    assert not (tmp_path / "r.dot").exists()


def test_styles_cover_the_issue_kinds():
    assert {"identity", "zeropad", "projection", "avgdown", "gated", "concat", "scaled"} <= set(SHORTCUT_STYLES)


@pytest.mark.parametrize("level", LEVELS)
def test_costs_add_up_at_every_level(r50, level):
    """Every op's parameters and MACs land on exactly one drawn box (shortcut layers on their unit)."""
    boxes = [n for n in view(r50, level).nodes.values() if not n.merge]
    assert sum(n.params for n in boxes) == 25_557_032
    assert sum(n.macs for n in boxes) == sum(d["macs"] for _, d in r50.nodes(data=True))


def test_stochastic_depth_rate_is_drawn_at_the_merge():
    """EfficientNet's per-unit drop rate (0.2 · index / 16 on units with a shortcut): one rate per
    unit, a range for a run of units drawn once."""
    g = resdsl.graph(SPECS / "efficientnet.res")
    block = render(g, "block").source
    assert "drop 0.025" in block and "drop 0.175" in block         # units 2 and 14 of 16
    assert "drop 0.075–0.0875" in render(g, "stage").source      # stage 3's two repeated units
    layer = render(g, "layer", focus="stages.1.blocks.1").source
    assert "drop 0.025" in layer


def test_stage_level_collapses_repeated_multi_unit_steps():
    """`stage x N [a(..), b(..)]`: runs of identical steps collapse like runs of single units, each
    unit of the step drawn once with ×(steps in the run); counts are layers, not units. ViT-B/16 has
    12 encoder layers (attention + MLP; Dosovitskiy et al. 2021, torchvision vit_b_16 num_layers=12);
    MaxViT-T has 2, 2, 5, 2 layers per stage (Tu et al. 2022, torchvision maxvit_t block_layers)."""
    v = view(resdsl.graph(SPECS / "vit.res"), "stage")
    blocks = [n.title for n in v.nodes.values() if n.role == "block"]
    assert blocks == ["attention_unit ×12", "mlp_unit ×12"]
    assert v.clusters["stages.0"].endswith(" ×12")
    net = view(resdsl.graph(SPECS / "vit.res"), "network")
    assert net.nodes["stages.0"].repeat == 12 and net.nodes["stages.0"].title.endswith(" ×12")
    v = view(resdsl.graph(SPECS / "maxvit.res"), "stage")
    assert [v.clusters[f"stages.{i}"].rsplit("×", 1)[1] for i in range(4)] == ["2", "2", "5", "2"]
    # in each stage the first layer downsamples (stride 2), so it is drawn apart from the rest
    titles = [n.title for n in v.nodes.values() if n.role == "block" and n.cluster == ("stages.2",)]
    assert titles[:5] == ["mbconv", "partition_attention", "maxvit_mlp", "partition_attention", "maxvit_mlp"]
    assert titles[5:] == [t + " ×4" for t in titles[:5]]
    assert not any(k.endswith(".merge") for k in v.nodes)     # a step's merges drawn inside its units
