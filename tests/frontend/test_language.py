"""The language: equivalent spellings lower to the same net; shortcut kinds; names; graph facts."""
import re

import pytest
import torch
import torch.nn.functional as F

import resdsl
from conftest import SPECS
from resdsl import api
from resdsl.api import split_sets
from resdsl.ir.net import Block

RESNET, CIFAR = SPECS / "resnet.res", SPECS / "cifar_resnet.res"


def structure(spec, **params):
    """What a net is, without where it was written: nodes (kind, attrs, shape) and typed edges."""
    g = api.graph(spec, **params)
    nodes = [(n, d["kind"], sorted(d["attrs"].items()), d["out_shape"], d["params"], d["macs"])
             for n, d in g.nodes(data=True)]
    edges = sorted((u, v, e["kind"], e.get("shortcut"), e["port"]) for u, v, e in g.edges(data=True))
    return nodes, edges


def net(stem: str = "conv 64 k3 s2; bn; relu", body: str = "", params: str = "") -> str:
    return (f"network t({params}) {{\n  input 3x32x32\n  stem {{ {stem} }}\n{body}"
            "  head { avgpool; fc 10 }\n}\n")


def assert_same(*specs):
    first = structure(specs[0])
    for s in specs[1:]:
        assert structure(s) == first, s


# ---- equivalent spellings ----

CONV_SPELLINGS = [
    "conv 64 k3 s2", "conv 64 kernel 3 stride 2", "conv 64 k 3 s 2", "conv 64 s2 k3",
    "conv 64 k (1 + 2) s (4 // 2)", "conv 64 k3 s2 d1 g1", "conv 64 k3 s2 bias false", "conv 64 kernel 3 s 2 groups 1",
]
EXPRESSIONS_FOR_64 = [
    "64", "2 ** 6", "128 // 2", "int(128 / 2)", "8 * 8", "[16, 32, 64][2]", "[16, 32, 64][-1]",
    "{18: 32, 50: 64}[50]", "true ? 64 : 32", "1 > 2 ? 32 : 64", "min(64, 100)", "max(1, 64)",
    "len([1, 2]) * 32", "-(-64)", "64 % 100", "(66 - 2)", "(1 + 1) * 32", "not false ? 64 : 0",
    "1 < 2 and 2 < 3 ? 64 : 0", "sum([32, 32])", "[[64]][0][0]",
]


@pytest.mark.parametrize("spelling", CONV_SPELLINGS)
def test_conv_spellings(spelling):
    assert_same(net("conv 64 k3 s2; bn; relu"), net(f"{spelling}; bn; relu"))


@pytest.mark.parametrize("expr", EXPRESSIONS_FOR_64)
def test_expressions(expr):
    assert_same(net(), net(f"conv {expr} k3 s2; bn; relu"), net(f"let w = {expr}; conv w k3 s2; bn; relu"))


def test_separators_and_comments():
    a = net()
    b = ("# a comment\nnetwork t() {   # another\n\n  input 3x32x32;\n  stem {\n    conv 64 k3 s2  # inline\n"
         "    bn\n\n    relu;\n  };\n  head { avgpool\n fc 10; }\n}\n")
    c = "network t() { input 3x32x32; stem { conv 64 k3 s2; bn; relu }; head { avgpool; fc 10 } }"
    d = "network t(\n) {\n input [3, 32, 32]\n stem { conv 64 k3 s2; bn; relu }\n head { avgpool; fc 10 }\n}"
    assert_same(a, b, c, d)


BLOCK_CALLS = ["basic(64, 2)", "basic(64, stride = 2)", "basic(width = 64, stride = 2)", "basic(64) stride 2",
               "basic(stride = 2, width = 64)", "basic(64, 1) stride 2", "basic(64, 2, projection)",
               "basic(64, 2, skip = projection, cardinality = 1, base_width = 64)"]


@pytest.mark.parametrize("call", BLOCK_CALLS)
def test_named_and_positional_block_arguments(call):
    assert_same(net("conv 16 k3", f"  stage x 1 {BLOCK_CALLS[0]}\n"), net("conv 16 k3", f"  stage x 1 {call}\n"))


def test_stage_repeat_spellings():
    one = net("conv 16 k3", "  stage x 2 basic(16)\n")
    assert_same(one, net("conv 16 k3", "  stage x (1 + 1) basic(16)\n"),
                net("conv 16 k3", "  stage basic(16) x 2\n"), net("conv 16 k3", "  stage x n basic(16)\n", "n = 2"),
                net("conv 16 k3", "  let blocks = {'a': 1}\n  stage x 2 basic(16)\n".replace("'", '"')))


def test_in_is_the_block_input_channels():
    explicit = "block b(w) {\n  residual { conv w k1; bn; relu; conv 16 k1 }\n  shortcut identity\n}\n"
    with_in = "block b(w) {\n  residual { conv w k1; bn; relu; conv in k1 }\n  shortcut identity\n}\n"
    body = "  stage x 2 b(8)\n"
    assert_same(explicit + net("conv 16 k3", body), with_in + net("conv 16 k3", body))


def test_set_and_python_keywords_agree():
    assert_same(RESNET.read_text().replace("depth = 50", "depth = 18"))
    ref = structure(RESNET, depth=18, skip="zeropad")
    assert structure(RESNET, **split_sets(("depth=18", "skip=zeropad"))) == ref
    assert structure(RESNET, depth="18", skip="zeropad") == ref
    assert structure(str(RESNET), depth=18, skip=resdsl.frontend.values.Symbol("zeropad")) == ref


def test_imports_are_relative_to_the_importing_file(tmp_path, monkeypatch):
    block = "block mine(w) {\n  residual { conv w k3; bn }\n  shortcut identity\n  post relu\n}\n"
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.res").write_text(block)
    (tmp_path / "lib" / "again.res").write_text('import "blocks.res"\n')
    spec = tmp_path / "net.res"
    spec.write_text('import "lib/blocks.res"\nimport "lib/again.res"\n' + net("conv 16 k3", "  stage x 2 mine(16)\n"))
    monkeypatch.chdir(tmp_path / "lib")       # the working folder does not matter for a path spec
    assert structure(spec) == structure(block + net("conv 16 k3", "  stage x 2 mine(16)\n"))


@pytest.mark.parametrize("body", [
    "  let d = n - 1\n  stage x d basic(16)\n", "  stage x n - 1 basic(16)\n", "  stage x n-1 basic(16)\n",
    "  let d = (n - 1)\n  stage x d basic(16)\n", "  let d = n-1\n  stage x d basic(16)\n",
    "  stage x (n - 1) basic(16)\n",
    "  stage x max(n - 1, 1) basic(16)\n",
    "  let d = max(n - 1, 1)\n  stage x d basic(16)\n",
])
def test_minus_is_binary_after_an_operand(body):
    """`a - 1` subtracts wherever it is written (in a let, a call, a stage's repeat count)."""
    assert_same(net("conv 16 k3", "  stage x 2 basic(16)\n"), net("conv 16 k3", body, "n = 3"))


# ---- shortcut kinds ----

def count(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("skip,expected", [
    ("projection", 11_689_512),       # option B (torchvision resnet18)
    ("projection_all", 12_043_816),   # option C: a 1x1 projection + BN on every block
    ("none", 11_515_688),             # plain-18
])
def test_resnet18_shortcut_options(skip, expected):
    g = api.graph(RESNET, depth=18, skip=skip)
    assert sum(d["params"] for _, d in g.nodes(data=True)) == expected
    assert count(resdsl.compile(RESNET, depth=18, skip=skip)) == expected
    kinds = [e["shortcut"] for *_, e in g.edges(data=True) if e["kind"] == "shortcut"]
    assert kinds == {"projection": ["identity"] * 2 + ["projection", "identity"] * 3,
                     "projection_all": ["projection_all"] * 8, "none": []}[skip]
    if skip == "none":
        assert not [n for n, d in g.nodes(data=True) if d["kind"] == "add"]


def test_zeropad_is_option_a_exactly():
    """Option A: the shortcut subsamples by the stride and appends zero channels; no parameters."""
    torch.manual_seed(0)
    g = api.graph(CIFAR, n=1)
    kinds = [e["shortcut"] for *_, e in g.edges(data=True) if e["kind"] == "shortcut"]
    assert kinds == ["identity", "zeropad", "zeropad"]
    model = resdsl.compile(CIFAR, n=1).eval()
    assert count(model) == sum(d["params"] for _, d in g.nodes(data=True))
    block = model.stages[1].blocks[0]
    x = torch.randn(2, 16, 32, 32)
    expected = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, 16))
    torch.testing.assert_close(block.shortcut(x), expected, rtol=0, atol=0)
    bn = block.residual[-1]                          # silence the residual branch: y = relu(shortcut(x))
    torch.nn.init.zeros_(bn.weight), torch.nn.init.zeros_(bn.bias)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected.relu(), rtol=0, atol=0)


def test_identity_where_the_shape_is_kept():
    """`zeropad` and `projection` add nothing where the shape does not change."""
    for skip in ("zeropad", "projection", "identity"):
        g = api.graph(net("conv 16 k3", f"  stage x 2 basic(16, skip = {skip})\n"))
        assert [e["shortcut"] for *_, e in g.edges(data=True) if e["kind"] == "shortcut"] == ["identity"] * 2


# ---- names (a public API: see resdsl/ir/net.py) ----

NAME_SCHEME = re.compile(r"^(stem|head|transitions\.\d+|stages\.\d+\.blocks\.\d+\.(residual|residuals\.\d+|pre|"
                         r"shortcut|post))\.[a-z_]+\d+\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def test_state_dict_keys_follow_the_documented_scheme():
    keys = list(resdsl.compile(RESNET, depth=50).state_dict())
    assert [k for k in keys if not NAME_SCHEME.match(k)] == []
    assert keys[:2] == ["stem.conv1.weight", "stem.bn1.weight"]
    assert "stages.0.blocks.0.residual.conv3.weight" in keys
    assert "stages.1.blocks.0.shortcut.conv1.weight" in keys
    assert "stages.3.blocks.2.residual.bn3.running_var" in keys
    assert keys[-2:] == ["head.fc1.weight", "head.fc1.bias"]


def test_graph_node_names_are_module_paths():
    g = api.graph(CIFAR, n=2)
    modules = dict(resdsl.compile(CIFAR, n=2).named_modules())
    for n, d in g.nodes(data=True):
        if d["kind"] not in ("input", "add"):
            assert n in modules, n
    assert "stages.1.blocks.0.shortcut.zeropad" in g
    assert "stages.0.blocks.1.post.relu1" in g


# ---- the graph ----

def test_graph_node_attributes():
    g = api.graph(RESNET, depth=18)
    for n, d in g.nodes(data=True):
        assert {"kind", "attrs", "scope", "in_shapes", "out_shape", "params", "macs", "span"} <= set(d), n
        assert d["span"].file in (str(RESNET), "<prelude>") and d["span"].line >= 1
    conv = g.nodes["stem.conv1"]
    assert conv["kind"] == "conv" and conv["attrs"]["kernel"] == 7 and conv["attrs"]["stride"] == 2
    assert conv["in_shapes"] == [(3, 224, 224)] and conv["out_shape"] == (64, 112, 112)
    assert conv["params"] == 64 * 3 * 49 and conv["macs"] == 64 * 112 * 112 * 3 * 49
    assert conv["scope"] == {"section": "stem", "block": None, "role": "stem"}
    line = RESNET.read_text().splitlines()[conv["span"].line - 1]
    assert line[conv["span"].column - 1:].startswith("conv 64 k7 s2")
    sc = g.nodes["stages.1.blocks.0.shortcut.conv1"]
    assert sc["scope"] == {"section": "stages.1", "block": "stages.1.blocks.0", "role": "shortcut"}
    assert sc["out_shape"] == (128, 28, 28) and sc["attrs"]["stride"] == 2
    add = g.nodes["stages.1.blocks.0.add"]
    assert add["kind"] == "add" and add["scope"]["role"] == "merge"
    edges = {u: e for u, _, e in g.in_edges("stages.1.blocks.0.add", data=True)}
    assert edges["stages.1.blocks.0.residual.bn2"] == {"kind": "main", "port": 0}
    assert edges["stages.1.blocks.0.shortcut.bn1"] == {"kind": "shortcut", "shortcut": "projection", "port": 1}
    assert g.graph["output"] == "head.fc1" and g.nodes["head.fc1"]["out_shape"] == (1000,)
    assert g.graph["blocks"]["stages.0.blocks.0"]["shortcut"] == "identity"


def test_lowered_blocks_keep_their_arguments():
    n = api.load_spec(RESNET, depth=50)
    b = n.stages[1].blocks[0]
    assert isinstance(b, Block) and b.block == "bottleneck"
    assert b.args["width"] == 128 and b.args["stride"] == 2
    assert n.stages[1].blocks[1].args["stride"] == 1


@pytest.mark.parametrize("expr,value", [("[1, 2][0]", 1), ("{3: [4, 5]}[3][1]", 5)])
def test_bracket_right_after_a_value_indexes(expr, value):
    from resdsl.api import parse_value
    assert parse_value(expr) == value


def test_bracket_spaced_after_an_attribute_opens_a_list():
    spec = "network t() {\n  input 3x8x8\n  let l = [1, 7]\n  stem { conv 4 kernel [1, 7] padding [0, 3]; conv 4 k l[1] }\n}\n"
    a = [it.attrs for it in resdsl.load_spec(spec).body[0].items]
    assert a[0]["kernel"] == (1, 7) and a[0]["padding"] == (0, 3) and a[1]["kernel"] == 7
