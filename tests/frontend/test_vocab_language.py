"""Issue 24, items 5, 11-14: what a new user wrote and got refused or wrong."""
import re

import pytest
import torch

import resdsl
from conftest import ROOT
from resdsl.ir import ops
from resdsl.ir.shapes import totals


def graph(text):
    return resdsl.graph(text)


PRE = """
block u(c, sc = 0) {{
  pre {{ bn; relu }}
  residual {{ conv c k3; bn; relu; conv c k3 }}
  shortcut {shortcut}
}}
network t() {{
  input 8x6x6
  stage x 2 u(8)
}}
"""


@pytest.mark.parametrize("written", ["{ }", "{ if sc > 0 { conv 8 k1 } }"])
def test_empty_custom_shortcut_is_identity_after_pre(written):
    """Item 5: `shortcut { }` (or all its ifs false) adds x, as `shortcut identity` does, not pre(x)."""
    a, b = resdsl.compile(PRE.format(shortcut=written)), resdsl.compile(PRE.format(shortcut="identity"))
    b.load_state_dict(a.state_dict())
    for m in (a, b):
        with torch.no_grad():
            for bn in m.modules():
                if isinstance(bn, torch.nn.BatchNorm2d):
                    bn.running_mean.fill_(0.5)            # pre(x) != x
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x))
    g = graph(PRE.format(shortcut=written))
    assert {d["shortcut"] for d in g.graph["blocks"].values()} == {"identity"}      # `check` shows identity


OUTER = """
block unit(dim, grid, se_on = false) {
  residual { conv dim k3; bn; relu; conv dim k3 s grid; bn }
  shortcut projection
}
block rvb(se_on = false, w = 8) {
  residual { conv w k3; bn; if se_on { se r 4 } }
}
block outer(dim, grid = 1) {
  residual { %s }
  shortcut projection
}
network t() {
  input 8x8x8
  stage x 1 outer(8, 2)
}
"""


@pytest.mark.parametrize("written,same_as", [
    ("unit dim grid", "unit dim grid grid"),            # item 11: every parameter in order
    ("unit dim (grid)", "unit dim grid grid"),          # item 14: `(` after a space is an argument
    ("unit 8 2", "unit dim grid grid"),
    ("rvb()", "rvb se_on false"),                       # item 14: all defaults, with or without ()
    ("rvb", "rvb se_on false"),
    ("rvb true 8", "rvb se_on true w 8"),
])
def test_block_as_layer_arguments(written, same_as):
    a, b = graph(OUTER % written), graph(OUTER % same_as)
    assert totals(a)[:2] == totals(b)[:2] and set(a.nodes) == set(b.nodes)
    assert any(d["kind"] == "conv" and d["attrs"]["stride"] == 2 for _, d in a.nodes(data=True)) or "rvb" in written


def test_block_as_layer_still_needs_parameters_without_default():
    with pytest.raises(resdsl.SpecError, match="needs grid"):
        graph(OUTER % "unit dim")


def test_call_of_a_value_says_an_integer():
    with pytest.raises(resdsl.SpecError, match="an integer cannot be called"):
        graph(OUTER % "unit dim grid(2)")


def test_round_is_half_to_even():
    """Item 13: `round` is Python's (banker's) rounding: ReXNet's 38.5 channels -> 38, as timm."""
    g = graph("network t() {\n  input 3x8x8\n  stem { conv round(38.5) k1; conv round(39.5) k1; conv round(2.5) k1 }\n}\n")
    assert [g.nodes[f"stem.conv{i}"]["out_shape"][0] for i in (1, 2, 3)] == [38, 40, 2]


@pytest.mark.parametrize("k,expected", [(2, 0), (3, 1), (4, 1)])
def test_even_pool_kernel_padding(k, expected):
    g = graph(f"network t() {{\n  input 3x8x8\n  stem {{ maxpool k{k} }}\n}}\n")
    assert g.nodes["stem.maxpool1"]["attrs"]["padding"] == expected



TOKEN_CONTEXT = {"tokens": ("", "to_map 8x8"), "to_map": ("tokens", "tokens"), "transpose": ("tokens", ""),
                 "channels_last": ("", "channels_first"), "channels_first": ("channels_last", "channels_last"),
                 "class_token": ("tokens", ""), "dist_token": ("tokens; class_token", ""),
                 "register_tokens": ("tokens; class_token", ""), "pos_embed": ("tokens", ""),
                 "token": ("tokens; class_token", ""), "patch_merge": ("channels_last", "fc 4"),
                 "attention": ("tokens", "")}


def _macs_kinds():
    def graph_of(kind):             # one op in a unit, on a map (or a C×1×1 input where it needs one: fc)
        op = ops.OPS[kind]
        args = {"slice": "0 2", "space_to_depth": "2", "pad": "[1, 0, 2, 0]", "upsample": "2"}.get(kind) or " ".join(
            "4" if op.attr(p).type is int else "0.25" for p in op.positional if op.attr(p).default is None)
        args = {"to_map": "8x8", "token": "0"}.get(kind, args)
        # token kinds need tokens or a grid around them: (stem, layers after the op)
        stem, after = TOKEN_CONTEXT.get(kind, ("", ""))
        for inp in ("4x8x8", "4x1x1"):
            try:
                return graph(f"block u() {{\n  residual {{ {kind} {args}{'; ' + after if after else ''} }}\n"
                             f"  shortcut none\n}}\nnetwork t() {{\n  input {inp}\n"
                             + (f"  stem {{ {stem} }}\n" if stem else "") + "  stage x 1 u()\n}\n")
            except resdsl.SpecError:
                pass
        raise AssertionError(kind)

    out = set()
    for kind in ops.user_kinds():
        g = graph_of(kind)
        if any(d["macs"] for _, d in g.nodes(data=True) if d["kind"] == kind):
            out.add(kind)
    return out


def test_docs_macs_list_matches_the_registry():
    text = (ROOT / "docs" / "language.md").read_text()
    m = re.search(r"Kinds that count MACs: (.*?)\.\n", text)
    assert m, "docs/language.md: the 'Kinds that count MACs: ...' line"
    documented = set(re.findall(r"`(\w+)`", m.group(1)))
    assert documented == _macs_kinds()


def test_docs_tree_example_checks():
    """Item 4: the documented way to write a jump over units (DLA's tree) is one block; it checks."""
    text = (ROOT / "docs" / "language.md").read_text()
    block = re.search(r"```\n(block tree\(out\) \{.*?\n\})\n```", text, re.S).group(1)
    g = graph(block + "\nnetwork t() {\n  input 16x8x8\n  stage x 2 tree(16)\n}\n")
    convs = [n for n, d in g.nodes(data=True) if d["kind"] == "conv"]
    assert len(convs) == 10 and g.nodes[g.graph["output"]]["out_shape"] == (16, 8, 8)
