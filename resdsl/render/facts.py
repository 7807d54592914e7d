"""Facts(g): indexes of the annotated graph that every level reads (units, shortcuts, order)."""
from __future__ import annotations

import networkx as nx

from ..ir.ops import OPS
from . import styles as st

MAX_LINES = 12


def folded(kind: str) -> bool:
    """Written after the op it follows: "3×3 conv 64 · BN · ReLU"."""
    return kind in OPS and OPS[kind].fold


def is_merge(kind: str) -> bool:
    return kind in OPS and OPS[kind].merge is not None


class Facts:
    """Indexes of the annotated graph that every level reads."""

    def __init__(self, g: nx.DiGraph):
        self.g = g
        self.pos = {n: i for i, n in enumerate(nx.topological_sort(g))}
        self.order = sorted(g, key=self.pos.__getitem__)
        self.stages = {s["name"]: s for s in g.graph["stages"]}
        self.top = {n: g.nodes[n]["unit"] for n in g}
        self.members: dict[str, list[str]] = {}
        self.sc_layers: dict[str, list[str]] = {}
        self.merge: dict[str, str] = {}          # unit -> the node its shortcut enters
        self.merged: set[str] = set()            # units with a merge node
        for n in self.order:
            d = g.nodes[n]
            if self.top[n]:
                self.members.setdefault(self.top[n], []).append(n)
                if d["scope"].get("role") == "merge" and d["scope"]["block"] == self.top[n]:
                    self.merged.add(self.top[n])
            if d["scope"].get("role") == "shortcut":
                self.sc_layers.setdefault(d["scope"]["block"], []).append(n)
        for u, v, e in g.edges(data=True):
            if e["kind"] == "shortcut":
                self.merge[g.nodes[v]["scope"]["block"]] = v

    def scope(self, n: str) -> dict:
        return self.g.nodes[n]["scope"]

    def role(self, n: str) -> str:
        """Role within its top-level unit; `nested` for a unit inside a unit."""
        s = self.scope(n)
        return "nested" if self.top[n] and s["block"] != self.top[n] else s["role"]

    def kind(self, block: str) -> str:
        """The drawn kind of a unit's shortcut ("none" when it has none)."""
        if block not in self.merge:
            return "none"
        info = self.g.graph["blocks"].get(block, {})
        return st.shortcut_kind(info, self.g.nodes[self.merge[block]]["kind"], self._layer_data(block))

    def shortcut_label(self, block: str) -> str:
        """The collapsed shortcut's text; "on pre(x)" when it reads the unit's pre-activation."""
        text = st.shortcut_label(self.kind(block), self.g.graph["blocks"].get(block, {}), self._layer_data(block))
        layers = self.sc_layers.get(block, [])
        src = next(iter(self.g.predecessors(layers[0])), None) if layers else None
        return f"{text} on pre(x)" if src is not None and self.top[src] == block else text

    def _layer_data(self, block: str) -> list[dict]:
        return [self.g.nodes[n] for n in self.sc_layers.get(block, [])]

    def origin(self, block: str) -> str:
        """Where a unit's shortcut starts, seen from outside the unit (its input)."""
        first = self.members[block][0]
        return min(self.g.predecessors(first), key=self.pos.__getitem__)

    def unit_name(self, n: str) -> str:
        return self.top[n] or self.scope(n)["section"]

    def _reads(self, n: str, line_of: dict[str, int], n_lines: int) -> int:
        """The line of the op n reads (its only input), else the last line."""
        ins = list(self.g.predecessors(n))
        return line_of.get(ins[0], n_lines - 1) if len(ins) == 1 else n_lines - 1

    def summary(self, members: list[str], base: str) -> list[str]:
        """The weighty ops of a group, one per line; parallel branches one line each."""
        lines: list = []
        branches: dict[str, dict[int, list[str]]] = {}
        nested: set[str] = set()
        line_of: dict[str, int] = {}         # node -> its line (a BN/ReLU joins the line of the op it reads)
        for n in members:
            d = self.g.nodes[n]
            blk, branch = d["scope"]["block"], d["branch"]
            if blk and blk != base and blk.startswith(base + "."):
                if blk not in nested:
                    nested.add(blk)
                    lines.append(f"{self.g.graph['blocks'].get(blk, {}).get('block', 'residual')} unit")
                continue
            if is_merge(d["kind"]) or (branch and folded(d["kind"])):
                continue
            if branch:
                group, index = branch
                if group not in branches:
                    branches[group] = {}
                    lines.append(branches[group])
                branches[group].setdefault(index, []).append(st.short_conv(d["kind"], d["attrs"]))
            elif folded(d["kind"]) and lines and isinstance(lines[self._reads(n, line_of, len(lines))], str):
                i = line_of[n] = self._reads(n, line_of, len(lines))
                lines[i] += " · " + st.op_text(d["kind"], d["attrs"])     # "3×3 conv 64 · BN · ReLU"
            else:
                pre = "pre: " if d["scope"]["role"] == "pre" and folded(d["kind"]) else ""
                line_of[n] = len(lines)
                lines.append(pre + st.op_text(d["kind"], d["attrs"]))
        out = []
        for line in lines:
            out += ["‖ " + " → ".join(ops) for _, ops in sorted(line.items())] if isinstance(line, dict) else [line]
        return out if len(out) <= MAX_LINES else out[:MAX_LINES - 1] + [f"… {len(out) - MAX_LINES + 1} more"]
