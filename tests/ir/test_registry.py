"""The op registry: every kind has every facet, and every user-facing kind compiles, costs
(agreeing with torch.utils.flop_counter), renders and shares — one instance each."""
import re

import pytest
import torch

import resdsl
from conftest import ROOT
from resdsl.backend.compile import compile_graph
from resdsl.cost.crosscheck import cross_check
from resdsl.cost.receptive import receptive_fields
from resdsl.cost.tables import layer_what
from resdsl.ir import ops
from resdsl.render import render
from resdsl.render.styles import op_text

USER = ops.user_kinds()
VALUES = {int: "4", ops.NUM: "0.25", float: "0.25"}     # a value for each required positional attribute
EXAMPLES = {"slice": "slice 0 2", "space_to_depth": "space_to_depth 2", "pad": "pad [1, 0, 2, 0]",
            "to_map": "to_map 8x8", "token": "token 0",
            "upsample": "upsample 2"}                       # where those values do not make a valid op


def clause(kind: str) -> str:
    op = ops.OPS[kind]
    if kind in EXAMPLES:
        return EXAMPLES[kind]
    return " ".join([kind, *(VALUES[op.attr(p).type] for p in op.positional if op.attr(p).default is None)])


# Token kinds need tokens or a grid around them: (stem, layers before the op, layers after it).
CONTEXT = {"tokens": ("", "", "to_map 8x8"), "to_map": ("tokens", "", "tokens"), "transpose": ("tokens", "", ""),
           "channels_last": ("", "", "channels_first"), "channels_first": ("channels_last", "", "channels_last"),
           "class_token": ("tokens", "", ""), "dist_token": ("tokens; class_token", "", ""),
           "register_tokens": ("tokens; class_token", "", ""), "pos_embed": ("tokens", "", ""),
           "patch_merge": ("channels_last", "", "fc 4"), "attention": ("tokens", "", "")}


def spec(kind: str, inp: str) -> str:
    """Three units of one op each, weights shared where the input shape repeats."""
    stem, before, after = CONTEXT.get(kind, ("", "", ""))
    body = "; ".join(x for x in (before, clause(kind), after) if x)
    return (f"block unit() {{\n  residual {{ {body} }}\n  shortcut none\n}}\n"
            f"network t() {{\n  input {inp}\n" + (f"  stem {{ {stem} }}\n" if stem else "")
            + "  stage x 3 unit() share\n}\n")


def graph_of(kind: str):
    """The op in a map input, or a C×1×1 one where it needs that (fc)."""
    try:
        return resdsl.graph(spec(kind, "4x8x8"))
    except resdsl.SpecError:
        return resdsl.graph(spec(kind, "4x1x1"))


def test_every_kind_has_every_facet():
    for kind, op in ops.OPS.items():
        assert op.kind == kind and op.doc and callable(op.shape) and callable(op.params) and callable(op.macs)
        assert callable(op.resolve) and callable(op.window) and op.weights in ("none", "trained", "norm")
        for a in op.attrs:
            assert a.type in (int, float, bool, str, object, ops.NUM, ops.SIZE), (kind, a.name)
        assert set(op.positional) <= {a.name for a in op.attrs}, kind


def test_every_kind_but_the_merges_has_a_builder():
    """The backend builds a module for each one-input kind (backend/builders.py) and none for a merge,
    which its container runs; the registry itself imports no backend."""
    from resdsl.backend.builders import BUILDERS

    assert {k for k, op in ops.OPS.items() if op.builds_module} == set(BUILDERS)
    assert {k for k, op in ops.OPS.items() if not op.builds_module} == {"add", "highway", "concat", "sub", "mul"}


def test_every_user_kind_is_documented_once():
    text = (ROOT / "docs" / "language.md").read_text()
    table = text[text.index("| layer | attributes |"):].split("\n\n", 1)[0]     # the layer table
    for kind in USER:
        rows = [ln for ln in table.splitlines() if re.match(rf"^\| `{kind}\b", ln)]
        assert len(rows) == 1, f"docs/language.md needs one row '| `{kind} ...' in the layer table"


@pytest.mark.parametrize("kind", USER)
def test_user_kind_compiles_costs_renders_and_shares(kind):
    if kind == "token":
        pytest.skip("a vector cannot feed the next unit; tests/zoo/test_transformers.py covers `token` in ViT's head")
    g = graph_of(kind)
    model = compile_graph(g).eval()
    nodes = [n for n, d in g.nodes(data=True) if d["kind"] == kind]
    assert len(nodes) == 3
    # parameters: the graph's count is the compiled model's, shared weights counted once
    assert sum(p.numel() for p in model.parameters()) == sum(d["params"] for _, d in g.nodes(data=True))
    with torch.no_grad():
        y = model(torch.randn(2, *g.graph["input_shape"]))
    assert tuple(y.shape[1:]) == ops.runtime_shape(g.nodes[g.graph["output"]]["out_shape"])
    # MACs: the registry's formula agrees with flop_counter (as `profile --check` does)
    assert cross_check(model, g)["ok"], cross_check(model, g)
    # sharing: the third unit runs the very module of the first unit with its input shape, if it has weights
    third = nodes[2]
    first = next(n for n in nodes if g.nodes[n]["in_shapes"] == g.nodes[third]["in_shapes"])
    if first != third and ops.OPS[kind].weights != "none":
        assert g.nodes[third]["shared_from"] == first
        assert model.get_submodule(third) is model.get_submodule(first)
    else:
        assert "shared_from" not in g.nodes[third]
    # drawing and tables: the label is drawn, the field and the row text exist
    dot = render(g, "layer").source
    assert op_text(kind, g.nodes[nodes[0]]["attrs"]).split(",")[0] in dot
    assert layer_what(g.nodes[nodes[0]]).startswith(kind)
    assert receptive_fields(g)[nodes[0]].stride >= 1


def test_resolved_attributes_say_everything():
    """Defaults are resolved once, in lowering: `avgpool k2` is `avgpool k2 s2 p0`."""
    def attrs(layer):
        g = resdsl.graph(f"network t() {{\n  input 4x8x8\n  stem {{ {layer} }}\n}}\n")
        return g.nodes["stem." + layer.split()[0] + "1"]["attrs"]

    assert attrs("avgpool k2") == attrs("avgpool k2 s2 p0")
    assert attrs("maxpool k3") == attrs("maxpool k3 s3 p1")
    assert attrs("conv 8 k3") == attrs("conv 8 k3 p1")
    assert attrs("se")["channels"] == 1 and attrs("se r 2")["channels"] == 2


LEAF_KINDS = ("sigmoid", "dropout", "se", "crelu", "maxpool", "relu6", "silu", "gelu", "gelu_tanh", "hardswish",
              "hardsigmoid", "tanh", "leaky_relu", "layernorm", "groupnorm", "layer_scale", "shuffle", "softmax",
              "slice", "pad_channels")


@pytest.mark.parametrize("kind", LEAF_KINDS)
def test_leaf_kind_is_named_in_at_most_two_files(kind):
    """A kind is its registry entry (and its builder, backend/builders.py): other code reads facets,
    not names (strings in code, not prose)."""
    import ast

    files = []
    for path in (ROOT / "resdsl").rglob("*.py"):
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        if path.name == "builders.py" and path.parent.name == "backend":
            continue
        if any(isinstance(n, ast.Constant) and n.value == kind and id(n) not in docs for n in ast.walk(tree)):
            files.append(str(path.relative_to(ROOT)))
    assert len(files) <= 2, files
