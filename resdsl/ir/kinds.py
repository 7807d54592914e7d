"""The closed vocabularies of residual units, each one table: shortcut kinds, merge modes, levels.

Everything else (the language's words, the IR's types, the graph's edge labels, the drawing's
styles) is derived from these tables.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShortcutKind:
    name: str
    doc: str
    user: bool = True            # written `shortcut NAME` (custom: `shortcut { ... }`)


SHORTCUTS: dict[str, ShortcutKind] = {s.name: s for s in (
    ShortcutKind("identity", "x + F(x); the shapes must match"),
    ShortcutKind("zeropad", "option A: subsample by the stride, pad the new channels with zeros"),
    ShortcutKind("projection", "option B: 1×1 conv + BN where the shape changes, identity elsewhere"),
    ShortcutKind("projection_all", "option C: 1×1 conv + BN in every unit"),
    ShortcutKind("avgdown", "ResNet-D: 2×2 avgpool, then 1×1 conv + BN where the shape changes"),
    ShortcutKind("none", "no shortcut: a plain unit"),
    ShortcutKind("custom", "the layers of `shortcut { ... }`", user=False),
)}
USER_SHORTCUTS = tuple(k for k, s in SHORTCUTS.items() if s.user)


@dataclass(frozen=True)
class Merge:
    """How a unit merges its residual branch with its shortcut (`merge MODE`)."""
    name: str
    node: str                    # op kind of the merge node in the graph
    drawn: str | None            # the drawn shortcut kind it implies; None: the shortcut's own kind
    doc: str


MERGE_MODES: dict[str, Merge] = {c.name: c for c in (
    Merge("add", "add", None, "y = x + F(x)"),
    Merge("gate", "highway", "gated", "y = F(x)·T(x) + x·(1 − T(x)) (highway units)"),
    Merge("concat", "concat", "concat", "y = [x, F(x)] (dense units)"),
)}

PARALLEL_MODES = ("concat", "sum")     # `parallel MODE { ... }`

# Detail of a table or a drawing: the whole network, a row per stage, per residual block, per op.
LEVELS = ("network", "stage", "block", "layer")
