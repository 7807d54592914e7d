"""How things look: colours per role, one edge style per shortcut kind, short texts for ops.

Shortcut kinds are classified from the annotated graph (edge `shortcut`, the merge node's kind,
the block's `scale`, `merge` and shortcut layers), so the drawing needs no extra IR. A kind
this file does not know is drawn in the generic style under its own name, never an error.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..cost.tables import human
from ..ir.kinds import MERGE_MODES, drawn_shortcut
from ..ir.ops import OPS, fmt

FONT = "Helvetica"


@dataclass(frozen=True)
class Fill:
    fill: str
    border: str


ROLE_COLOURS: dict[str, Fill] = {
    "input": Fill("#ffffff", "#7f7f7f"),
    "output": Fill("#ffffff", "#7f7f7f"),
    "stem": Fill("#e4e9f1", "#7b8aa3"),
    "stage": Fill("#d6e6f7", "#4f7fab"),
    "block": Fill("#d6e6f7", "#4f7fab"),
    "residual": Fill("#d6e6f7", "#4f7fab"),
    "pre": Fill("#d7efe3", "#4f9a76"),
    "shortcut": Fill("#fde3c8", "#c77d2e"),
    "merge": Fill("#ffffff", "#333333"),
    "post": Fill("#ebe3f6", "#8464b0"),
    "nested": Fill("#d6e6f7", "#4f7fab"),
    "transition": Fill("#f7e1ed", "#ad5f89"),
    "head": Fill("#dcefd5", "#5f9a4c"),
}
GENERIC_FILL = Fill("#eeeeee", "#888888")


@dataclass(frozen=True)
class EdgeStyle:
    color: str
    style: str
    penwidth: str
    arrowhead: str
    what: str          # legend text


SHORTCUT_STYLES: dict[str, EdgeStyle] = {
    "identity": EdgeStyle("#222222", "solid", "1.6", "normal", "identity: x + F(x)"),
    "zeropad": EdgeStyle("#1f77b4", "dashed", "1.8", "empty", "zero-pad: subsample, pad channels"),
    "projection": EdgeStyle("#d62728", "solid", "2.6", "normal", "projection: conv + BN"),
    "avgdown": EdgeStyle("#9467bd", "solid", "2.6", "normal", "avg-down: avgpool, conv + BN"),
    "gated": EdgeStyle("#2ca02c", "dotted", "2.4", "odot", "gated: T·F(x) + (1−T)·x"),
    "concat": EdgeStyle("#8c564b", "bold", "2.2", "diamond", "concatenation: [x, F(x)]"),
    "scaled": EdgeStyle("#ff7f0e", "solid", "2.0", "normal", "scaled: x + s·F(x), labelled ×s"),
}
GENERIC_STYLE = EdgeStyle("#7f7f7f", "dashed", "1.6", "onormal", "other shortcut")
MAIN_COLOR = "#555555"


def edge_style(kind: str) -> EdgeStyle:
    return SHORTCUT_STYLES.get(kind, GENERIC_STYLE)


def name_of(v) -> str:
    """A Symbol (`projection`) or plain value as text."""
    return str(getattr(v, "name", v))


def shortcut_kind(info: dict, merge_kind: str, layers: list[dict]) -> str:
    """The kind drawn for a block's shortcut: identity, zeropad, projection, avgdown, gated, ...

    info: graph.graph["blocks"][block]; merge_kind: kind of the node the shortcut enters;
    layers: node data of the shortcut's own layers, in order. A merge mode may imply the drawn
    kind (`Merge.drawn`); else the shortcut's table entry says it (`drawn_shortcut`, from the
    kinds of its layers for `shortcut { ... }`); an identity with a scale is drawn `scaled`.
    """
    merge = MERGE_MODES.get(name_of(info.get("merge", "add")))
    drawn = merge.drawn if merge is not None and merge.drawn else \
        next((c.drawn for c in MERGE_MODES.values() if c.node == merge_kind and c.drawn), None)
    if drawn:
        return drawn
    kind = drawn_shortcut(name_of(info.get("shortcut", "custom")), [d["kind"] for d in layers])
    if kind == "identity" and info.get("scale", 1.0) != 1.0:
        return "scaled"
    return kind


def shortcut_label(kind: str, info: dict, layers: list[dict]) -> str:
    """What a collapsed shortcut edge says: its layers ("1×1 conv, s2 + BN") or its scale (×0.17)."""
    if kind == "scaled":
        return f"×{info.get('scale', 1.0):g}"
    ops = " + ".join(op_text(d["kind"], d["attrs"], brief=True) for d in layers)
    if kind not in SHORTCUT_STYLES:                  # a kind this file does not know: say its name
        return f"{kind}: {ops}" if ops else kind
    return "" if kind == "identity" else ops


def op_text(kind: str, a: dict, brief: bool = False) -> str:
    """One op in the papers' words ("3×3 conv 64, s2", "BN", "global avgpool", "fc 1000"): its registry label."""
    return OPS[kind].text(a, brief) if kind in OPS else kind


def short_conv(kind: str, a: dict) -> str:
    """Inside a branch list the kind is left out where it sits between kernel and width: "3×3 64"."""
    return op_text(kind, a).replace(f" {kind} ", " ", 1)


def merge_symbol(kind: str) -> str:
    return (OPS[kind].merge if kind in OPS else None) or kind[:1] or "?"


def shape_text(shape) -> str:
    return fmt(tuple(shape)) if shape else ""


def cost_text(params: int, macs: int) -> str:
    return f"{human(params)} params · {human(macs)} MACs"


def drop_text(rates: list[float]) -> str:
    """Stochastic depth of a unit, or of a run of units (`drop 0.01–0.05`)."""
    lo, hi = min(rates), max(rates)
    return f"drop {hi:.3g}" if lo == hi else f"drop {lo:.3g}–{hi:.3g}"
