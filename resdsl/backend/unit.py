"""One forward for a residual unit, run by the compiled module and printed by `emit` (plain torch).

A unit's forward is straight-line code fixed by its record (`Unit`, read from the graph's block
record) and by which of its parts exist: `forward_lines` writes it once; `ResidualBlock`
(modules.py) runs it as a compiled function and `emit_source` prints it into the generated file
(torch.fx: one graph, run by the interpreter and printed by codegen; dataflow bodies share their
`wiring` the same way). A merge mode's runtime behaviour is its entry in MERGE_CODE.
"""
from __future__ import annotations

import linecache
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch


@dataclass(frozen=True)
class Unit:
    """What a compiled residual unit does: y = post(merge(scale · Σ_k residual_k(pre(x)), shortcut(x))).

    Stochastic depth drops the residual of an additive unit with probability drop_prob: mode
    "batch" (Huang et al.): one draw per mini-batch, the residual scaled by the survival
    probability at test time; mode "sample" (timm): per sample, inverted scaling in training.
    """
    shortcut: str = "identity"       # its kind (ir/kinds.py SHORTCUTS)
    has_shortcut: bool = True        # False: kind `none` (ir/kinds.py ShortcutKind.carries)
    merge: str = "add"               # ir/kinds.py MERGE_MODES
    additive: bool = True            # y = s + scale·F(x) (ir/kinds.py `additive`)
    from_pre: bool = False           # the shortcut reads pre(x), not x
    scale: float = 1.0
    drop_prob: float = 0.0
    drop_mode: str = "batch"
    add_inplace: bool = False        # the merge may add into the residual's output (a fresh tensor)

    def describe(self) -> str:
        parts = [f"shortcut={self.shortcut}"]
        if self.merge != "add":
            parts.append(f"merge={self.merge}")
        if self.scale != 1.0:
            parts.append(f"scale={self.scale}")
        if self.drop_prob:
            parts.append(f"drop_prob={self.drop_prob:.4g} ({self.drop_mode})")
        return ", ".join(parts)


class Parts(NamedTuple):
    """Which submodules a unit has: pre, shortcut layers, residual branches (None: one, `residual`), post."""
    pre: bool
    shortcut: bool
    residuals: int | None
    post: bool


# y from the scaled residual `out`, the shortcut `s` and the input `x`: one entry per merge mode of
# ir/kinds.py (tests/backend/test_emit.py checks that every mode has one)
MERGE_CODE: dict[str, Callable[[Unit], list[str]]] = {
    "add": lambda u: ["out = out.add_(s)" if u.add_inplace else "out = out + s"],
    "concat": lambda u: ["out = torch.cat((s, out), 1)"],
    "gate": lambda u: ["t = self.gate(x)", "out = out * t + s * (1.0 - t)"],
}


def _times(v: float) -> list[str]:
    return [] if v == 1.0 else [f"out = out * {v!r}"]


def forward_lines(u: Unit, p: Parts) -> list[str]:
    """The lines of the unit's `forward(self, x)`, no flag tested at run time but `self.training`."""
    lines = ["a = self.pre(x)"] if p.pre else []
    a = "a" if p.pre else "x"
    if u.has_shortcut:
        src = a if u.from_pre else "x"
        lines.append(f"s = self.shortcut({src})" if p.shortcut else f"s = {src}")
    post = (lambda v: f"self.post({v})") if p.post else (lambda v: v)
    batch_drop = u.drop_prob > 0.0 and u.drop_mode == "batch"
    if batch_drop and u.additive:
        # the whole residual is skipped; `post` may run in place, and s may be x itself
        lines += [f"if self.training and torch.rand(()).item() < {u.drop_prob!r}:  # stochastic depth",
                  f"    return {post('s.clone()' if p.post else 's')}"]
    if p.residuals is None:
        lines.append(f"out = self.residual({a})")
    else:
        lines.append(f"out = self.residuals[0]({a})")
        lines += [f"out = out + self.residuals[{k}]({a})" for k in range(1, p.residuals)]
    if batch_drop:          # at test time the residual is scaled by its survival probability
        train, test = _times(u.scale), _times(u.scale * (1.0 - u.drop_prob))
        if train:
            lines += ["if self.training:", *("    " + ln for ln in train), "else:"]
        else:
            lines.append("if not self.training:")
        lines += ["    " + ln for ln in test or ["pass"]]
    else:
        if u.drop_prob > 0.0 and u.drop_mode == "sample":
            keep = 1.0 - u.drop_prob
            lines += ["if self.training:  # drop path, per sample",
                      "    mask = out.new_empty((out.shape[0],) + (1,) * (out.dim() - 1)).bernoulli_"
                      f"({keep!r})", f"    out = out * mask.div_({keep!r})"]
        lines += _times(u.scale)
    if u.has_shortcut:
        lines += MERGE_CODE[u.merge](u)
    return lines + [f"return {post('out')}"]


_COMPILED: dict[tuple[Unit, Parts], Callable] = {}


def compiled_forward(u: Unit, p: Parts) -> Callable:
    """forward_lines as a function (one per distinct unit and parts), its source kept in linecache
    so that tracebacks, inspect and torch.compile see it (as torch.fx's GraphModule does)."""
    key = (u, p)
    if key not in _COMPILED:
        src = "def forward(self, x):\n" + "".join(f"    {ln}\n" for ln in forward_lines(u, p))
        name = f"<resdsl unit {len(_COMPILED)}>"
        linecache.cache[name] = (len(src), None, src.splitlines(True), name)
        scope: dict = {"torch": torch}
        exec(compile(src, name, "exec"), scope)
        _COMPILED[key] = scope["forward"]
    return _COMPILED[key]
