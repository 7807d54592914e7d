"""fuse_pass(g) -> Plan: fusion as a pass over the annotated graph (torch.fx style).

One algorithm decides what folds, on the graph's module tree (`graph["containers"]`, whose paths are
the module names) and its nodes' attributes: a BN after a conv (or before one that reads no zero
padding, or whose shift is zero) folds into it; summed parallel branches and a whole additive unit
whose paths are all linear (one conv or BN each, an identity shortcut) merge into one conv; a
unit's scale (and eval-time drop-path factor) goes into the last conv of its residual. The pass
rewrites a copy of the graph as it decides: folded nodes contracted into their conv, containers
and steps rewritten, a merged branch set or unit replaced by one conv node whose attributes give
its geometry and whose costs come from the op registry (`ops.cost`), the unit's record updated.

The result, `Plan`, holds that fused graph (what `render --fuse` draws and what `fuse` compiles),
the report's lines (folded, left and why) and one recipe per new conv: how its weights come from
the trained model's tensors (`backend/fold.py` evaluates them). Pure networkx: no torch here.
`inference_graph` is the drawing's entry point (structure only: a BN before a zero-padded conv
is taken to have a nonzero shift, as BN statistics in general position do).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import gcd
from typing import Callable, NamedTuple

import networkx as nx

from ..ir import ops
from ..ir.kinds import MERGE_MODES, SHORTCUTS
from ..ir.ops.base import is_tokens, sizes


class Geom(NamedTuple):
    """A 2-D convolution's geometry, as nn.Conv2d holds it (tuples per axis)."""
    c_in: int
    out: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    padding_mode: str = "zeros"


def _centred(c: Geom) -> bool:
    return all(2 * c.padding[i] == (c.kernel[i] - 1) * c.dilation[i] for i in range(2))


def merge_geometry(convs: list[Geom], diags: int, c_in: int) -> tuple[Geom | None, str]:
    """The one conv computing Σ convs + `diags` per-channel affine maps on c_in channels, or (None, why)
    where no conv is exact (Ding et al. 2021, RepVGG: kernels zero-padded to the largest frame,
    an identity as a centred unit kernel per group). Read by the pass and by `fold.merge`."""
    if not convs:
        return Geom(c_in, c_in, (1, 1), (1, 1), (0, 0), (1, 1), c_in), ""
    first = convs[0]
    for c in convs:
        if c.stride != first.stride or c.out != first.out or c.c_in != c_in:
            return None, "branches differ in stride or channels"
        if c.padding_mode != "zeros" or not _centred(c):
            return None, f"conv with padding {c.padding} is not centred on its kernel {c.kernel}"
    big = [c for c in convs if c.kernel != (1, 1)]
    if any(c.dilation != big[0].dilation for c in big):
        return None, "branches differ in dilation"
    for i in range(2):
        if any((max(c.kernel[i] for c in convs) - c.kernel[i]) % 2 for c in convs):
            return None, "kernels of different parity cannot share a centre"
    if diags and (first.stride != (1, 1) or first.out != c_in):
        return None, "an identity branch beside a conv that changes the shape"
    kh, kw = max(c.kernel[0] for c in convs), max(c.kernel[1] for c in convs)
    dil = big[0].dilation if big else (1, 1)
    groups = 0
    for c in convs:
        groups = gcd(groups, c.groups)
    if diags:
        groups = gcd(groups, c_in)
    pad = ((kh - 1) * dil[0] // 2, (kw - 1) * dil[1] // 2)
    return Geom(c_in, first.out, (kh, kw), first.stride, pad, dil, groups, first.padding_mode), ""


def attrs_of(c: Geom) -> dict:
    """A merged conv's attributes as the graph writes a conv's (ir/ops/conv.py)."""
    k = c.kernel
    return {"out": c.out, "kernel": k[0] if k[0] == k[1] else list(k), "stride": c.stride[0],
            "padding": list(c.padding), "dilation": c.dilation[0], "groups": c.groups, "bias": True, "causal": False}


def _k(c: Geom) -> str:
    return "×".join(map(str, c.kernel))


# A recipe says how a new conv's weights come from the trained model's modules (named by path):
# ("conv", path) | ("bn", path) (a per-channel affine map) | ("identity", channels) |
# ("conv_bn", conv recipe, bn path) | ("bn_conv", bn path, conv recipe) | ("scale", recipe, s) |
# ("merge", [recipes], c_in). backend/fold.py `evaluate` runs one.
Recipe = tuple


@dataclass
class FuseReport:
    folded: list[tuple[str, str]] = field(default_factory=list)    # (module, what was done)
    left: list[tuple[str, str]] = field(default_factory=list)      # (module, why not)
    # (module that replaces them, module paths folded away, geometry of a new conv or None):
    units: list[tuple[str, list[str], dict | None]] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0

    def __str__(self) -> str:
        lines = [f"fused: {self.params_before:,} -> {self.params_after:,} parameters, "
                 f"{len(self.folded)} folds, {len(self.left)} left as they were"]
        lines += [f"  folded {name}: {what}" for name, what in self.folded]
        lines += [f"  left   {name}: {why}" for name, why in self.left]
        return "\n".join(lines)


@dataclass
class Plan:
    graph: nx.DiGraph                                               # the fused graph
    found: FuseReport = field(default_factory=FuseReport)          # folded, left, units (no counts yet)
    recipes: dict[str, Recipe] = field(default_factory=dict)       # node -> how its weights are made

    def report(self, params_before: int, params_after: int) -> FuseReport:
        return replace(self.found, params_before=params_before, params_after=params_after)


def fuse_pass(g: nx.DiGraph, zero_shift: Callable[[str], bool] | None = None,
              module_type: Callable[[str], str] | None = None) -> Plan:
    """The fusion of an annotated graph. `zero_shift(bn)`: whether that BN's shift β − μ·γ/σ is zero
    (its values; without them, no); `module_type(path)`: the class name a report gives a module."""
    h = g.copy()
    h.graph["containers"] = {p: {**c, "children": list(c["children"]),
                                 **({"steps": list(c["steps"])} if "steps" in c else {})}
                             for p, c in g.graph["containers"].items()}
    h.graph["blocks"] = {b: dict(info) for b, info in g.graph["blocks"].items()}
    h.graph["aux"] = [dict(a) for a in g.graph.get("aux", ())]
    roots = {n: _root(g, n) for n in g}
    h.graph["_position"] = {n: i for i, n in enumerate(g)}
    p = _Pass(h, roots, zero_shift or (lambda bn: False), module_type or (lambda path: h.nodes[path]["kind"]))
    p.run()
    gone = [q for _, prefixes, _ in p.plan.found.units for q in prefixes]
    p.plan.found.left = [(n, why) for n, why in p.plan.found.left if not _under(n, gone)]  # folded later: not left
    _in_order(h)
    _reshare(h, p.plan.recipes, roots)
    return p.plan


class _Pass:
    """The walk of the module tree in module order (stem, stages, transitions, head, aux)."""

    def __init__(self, h: nx.DiGraph, roots: dict[str, str], zero_shift, module_type):
        self.h, self.roots, self.zero_shift, self.module_type = h, roots, zero_shift, module_type
        self.plan = Plan(h)
        self.memo: dict[tuple, tuple[Recipe | None, str]] = {}     # shared weights stay shared

    @property
    def containers(self) -> dict:
        return self.h.graph["containers"]

    def run(self) -> None:
        top = [(p, c) for p, c in self.containers.items() if c["parent"] is None]
        order = {"stem": 0, "stage": 1, "transition": 2, "aux": 4}
        rank = lambda c: order["stage"] if c["type"] == "stage" else order.get(c.get("role"), 3)  # noqa: E731
        for path, _ in sorted(top, key=lambda pc: rank(pc[1])):
            self.visit(path)

    # -- what a path is now --------------------------------------------------------------------
    def is_node(self, path: str) -> bool:
        return path not in self.containers

    def conv2d(self, path: str) -> bool:
        d = self.h.nodes[path] if self.is_node(path) else None
        return (d is not None and d["kind"] == "conv" and not d["attrs"].get("causal")
                and len(d["in_shapes"][0]) == 3 and not is_tokens(d["in_shapes"][0]))

    def bn2d(self, path: str) -> bool:
        d = self.h.nodes[path] if self.is_node(path) else None
        return d is not None and d["kind"] == "bn" and len(d["in_shapes"][0]) == 3 and not is_tokens(d["in_shapes"][0])

    def geom(self, path: str) -> Geom:
        d = self.h.nodes[path]
        a = d["attrs"]
        return Geom(d["in_shapes"][0][0], a["out"], sizes(a["kernel"], 2), (a["stride"],) * 2, sizes(a["padding"], 2),
                    (a["dilation"],) * 2, a["groups"])

    def recipe(self, path: str) -> Recipe:
        return self.plan.recipes.get(path) or (("conv", path) if self.conv2d(path) else ("bn", path))

    def key(self, r: Recipe, n: str):
        return _recipe_key(self.roots, r, n)

    def module_kind(self, path: str) -> str:
        if self.is_node(path):
            return self.module_type(path)
        c = self.containers[path]
        return {"sequence": "Sequential", "section": "Sequential", "branches": "Branches", "dataflow": "Dataflow",
                "block": "ResidualBlock", "stage": "Stage"}[c["type"]]

    # -- the walk ------------------------------------------------------------------------------
    def visit(self, path: str) -> None:
        if self.is_node(path):
            if self.h.nodes[path]["kind"] == "bn":
                self.plan.found.left.append((path, "bn with no conv beside it to fold into"))
            return
        kind = self.containers[path]["type"]
        {"sequence": self.seq, "section": self.seq, "branches": self.branches, "dataflow": self.flow,
         "block": self.block, "stage": self.seq}[kind](path)

    def seq(self, path: str) -> None:
        """conv+bn and bn+conv neighbours in a sequence."""
        for child in list(self.containers[path]["children"]):
            self.visit(child)
        items = self.containers[path]["children"]
        i = 0
        while i < len(items):
            m, nxt = items[i], items[i + 1] if i + 1 < len(items) else None
            if self.conv2d(m) and nxt is not None and self.bn2d(nxt):
                self.fold_bn(m, nxt, "conv_bn", f"{_local(nxt)} folded into the conv")
                continue                                   # the conv, now at i, meets its next neighbour
            if self.bn2d(m):
                if nxt is not None and self.conv2d(nxt):
                    ok, why = self.bn_conv(m, nxt)
                    if ok:
                        self.fold_bn(nxt, m, "bn_conv", f"{_local(m)} (before it) folded into the conv")
                        continue
                else:
                    why = f"bn followed by {self.module_kind(nxt) if nxt else 'nothing'} in this sequence, not a conv"
                self.plan.found.left.append((m, why))
            i += 1

    def bn_conv(self, bn: str, conv: str) -> tuple[bool, str]:
        """bn then conv folds where the conv reads no zero padding or the BN's shift is zero (fold.bn_then_conv)."""
        key = ("bn_conv", self.roots[bn], self.key(self.recipe(conv), conv))
        if key in self.memo:
            return self.memo[key][0] is not None, ""
        pad = self.geom(conv).padding
        why = ""
        if any(pad) and not self.zero_shift(bn):
            why = f"bn before a zero-padded conv (padding {pad}) with nonzero shift β − μ·γ/σ"
        self.memo[key] = (None if why else key, why)
        return not why, why

    def fold_bn(self, conv: str, bn: str, how: str, what: str) -> None:
        """The BN's node contracted into the conv's, which gains a bias; the container loses the BN."""
        r = ("conv_bn", self.recipe(conv), bn) if how == "conv_bn" else ("bn_conv", bn, self.recipe(conv))
        self.plan.recipes[conv] = r
        self.plan.found.folded.append((conv, what))
        self.plan.found.units.append((conv, [bn], None))
        node = self.h.nodes[conv]
        node["attrs"] = {**node["attrs"], "bias": True}
        if not node.get("shared_from"):
            _recost(node)
        self._remove_child(bn)
        _contract(self.h, [bn], conv, dict(node))
        self.h.nodes[conv].setdefault("folded", []).append(bn)

    def _remove_child(self, path: str) -> None:
        parent = self.h.nodes[path]["parent"]
        self.containers[parent]["children"].remove(path)

    def flow(self, path: str) -> None:
        """A dataflow body: a BN that alone reads a conv's output folds into it."""
        c = self.containers[path]
        for child in list(c["children"]):
            if not self.bn2d(child):
                self.visit(child)
        reads: dict[str, int] = {}
        for _, inputs, _ in c["steps"]:
            for t in inputs:
                reads[t] = reads.get(t, 0) + 1
        steps = [list(s) for s in c["steps"]]
        made = {s[2]: s for s in steps}
        for step in list(steps):
            child, ins, out = step
            if not self.bn2d(child):
                continue
            src = made.get(ins[0])
            if src is None or not self.conv2d(src[0]) or reads[ins[0]] != 1 or ins[0] == c["output"]:
                self.plan.found.left.append((child, "bn not alone after a conv in this dataflow body"))
                continue
            self.fold_bn(src[0], child, "conv_bn", f"{_local(child)} folded into the conv")
            src[2] = out                           # the conv now makes the BN's tensor
            made[out] = src
            steps.remove(step)
        c["steps"] = [tuple(s) for s in steps]

    def branches(self, path: str) -> None:
        c = self.containers[path]
        for child in list(c["children"]):
            self.visit(child)
        if c["mode"] != "sum":
            return
        parts = [self.linear(b) for b in c["children"]]
        if any(q is None for q in parts):
            self.plan.found.left.append((path, "summed branches not merged: a branch is not linear"))
            return
        geom, why = self.merge(parts, [])
        if geom is None:
            self.plan.found.left.append((path, f"summed branches not merged: {why}"))
            return
        self.plan.found.folded.append((path, f"{len(parts)} summed branches merged into one {_k(geom)} conv"))
        self.replace(path, [path], [self.recipe(q) for q in parts], geom)

    def linear(self, path: str | None) -> str | None:
        """The one conv or BN a branch is, or None where it is not one such map (the module tree's Sequential of one Conv2d or BatchNorm2d)."""
        if path is None:
            return None
        if not self.is_node(path):
            c = self.containers[path]
            if c["type"] not in ("sequence", "section") or len(c["children"]) != 1:
                return None
            path = c["children"][0]
        return path if self.conv2d(path) or self.bn2d(path) else None

    def merge(self, parts: list[str], extra: list[Recipe]) -> tuple[Geom | None, str]:
        convs = [self.geom(q) for q in parts if self.conv2d(q)]
        c_in = convs[0].c_in if convs else self.h.nodes[parts[0]]["in_shapes"][0][0] if parts else 0
        if not c_in:
            return None, "no conv gives the input channels"
        return merge_geometry(convs, sum(1 for q in parts if not self.conv2d(q)) + len(extra), c_in)

    def replace(self, into: str, prefixes: list[str], rs: list[Recipe], geom: Geom) -> None:
        """The nodes under `prefixes` become one new conv node `into`, whose weights are the merge of
        the recipes `rs`; the containers under them go (a merged `parallel`'s path is now the conv's)."""
        self.plan.recipes[into] = ("merge", rs, geom.c_in)
        attrs = attrs_of(geom)
        self.plan.found.units.append((into, prefixes, attrs))
        pos = self.h.graph["_position"]
        gone = sorted((n for n in self.h.nodes if _under(n, prefixes) and n != into), key=pos.__getitem__)
        _contract(self.h, gone, into, _conv_node(self.h, gone, attrs, into))
        for p in [p for p in self.containers if _under(p, prefixes)]:
            del self.containers[p]
        for n in gone:
            self.plan.recipes.pop(n, None)

    def block(self, path: str) -> None:
        info = self.h.graph["blocks"][path]
        for child in list(self.containers[path]["children"]):
            self.visit(child)
        drop = float(info["drop_prob"])
        scale = float(info["scale"]) * (1.0 - drop) if drop > 0 and info["drop_mode"] == "batch" else float(info["scale"])
        if self.merge_block(path, info, scale):
            return
        if scale != 1.0 and not MERGE_MODES[info["merge"]].needs_gate:
            self.fold_scale(path, info, scale)

    def parts_of(self, path: str) -> dict[str, list[str]]:
        roles: dict[str, list[str]] = {}
        for child in self.containers[path]["children"]:
            roles.setdefault(self.containers[child]["role"], []).append(child)
        return roles

    def merge_block(self, path: str, info: dict, scale: float) -> bool:
        """post(Σ residual_k(a)·scale + shortcut(a)) with all linear: post(conv(a)), a = pre(x)."""
        roles = self.parts_of(path)
        has_shortcut, why = SHORTCUTS[info["shortcut"]].carries, ""
        if not MERGE_MODES[info["merge"]].additive:
            why = f"merge {info['merge']} is not a sum"
        elif "pre" in roles and has_shortcut and info["source"] != "pre":
            why = "the shortcut reads x, the residual pre(x)"
        parts = [self.linear(r) for r in roles.get("residual", [])]
        if not why and any(q is None for q in parts):
            why = "a residual branch is not linear (one conv or bn after folding)"
        sc = None
        if not why and has_shortcut:
            sc = "identity" if "shortcut" not in roles else self.linear(roles["shortcut"][0])
            if sc is None:
                why = "the shortcut is not linear"
        if why:
            self.plan.found.left.append((path, f"block not merged: {why}"))
            return False
        lin = parts + ([sc] if sc not in (None, "identity") else [])
        geom, why = self.merge(lin, [("identity",)] if sc == "identity" else [])
        if geom is None:
            self.plan.found.left.append((path, f"block not merged: {why}"))
            return False
        n = len(parts) + (sc is not None)
        self.plan.found.folded.append((path, f"{n} linear paths (residuals and shortcut) merged into one {_k(geom)} conv"))
        into = f"{path}.conv"
        rs = [self.recipe(q) for q in parts]
        rs = [("scale", r, scale) for r in rs] if scale != 1.0 else rs
        if sc is not None:
            rs.append(("identity", geom.c_in) if sc == "identity" else self.recipe(sc))
        self.replace(into, [f"{path}.{p}" for p in ("residual", "residuals", "shortcut", "add")], rs, geom)
        c = self.containers[path]          # the unit is now a sequence: pre, conv, post
        c["type"] = "sequence"
        c["role"] = "block"
        c["children"] = ([f"{path}.pre"] if "pre" in roles else []) + [into] + ([f"{path}.post"] if "post" in roles else [])
        self.h.graph["blocks"][path]["fused"] = into     # kept: a drawing names the unit
        self.h.nodes[into]["parent"] = path
        return True

    def fold_scale(self, path: str, info: dict, scale: float) -> None:
        """scale·Σ r_k(x) with each r_k ending in a conv: scale goes into those convs' weights."""
        lasts = []
        for r in self.parts_of(path).get("residual", []):
            children = self.containers[r]["children"]
            lasts.append(children[-1] if children and self.conv2d(children[-1]) else None)
        if not lasts or None in lasts:
            self.plan.found.left.append((path, f"scale {scale:g} kept: a residual branch does not end in a conv"))
            return
        for conv in lasts:
            self.plan.recipes[conv] = ("scale", self.recipe(conv), scale)
            node = self.h.nodes[conv]
            node["attrs"] = {**node["attrs"], "bias": True}
            _recost(node)
            node.pop("shared_from", None)
        info["scale"], info["drop_prob"] = 1.0, 0.0
        add = f"{path}.add"
        if add in self.h and self.h.nodes[add]["kind"] == "add":
            self.h.nodes[add]["attrs"] = {**self.h.nodes[add]["attrs"], "scale": 1.0, "drop_prob": 0.0}
        self.plan.found.folded.append((path, f"scale {scale:g} folded into the last conv of the residual"))


def _reshare(h: nx.DiGraph, recipes: dict[str, Recipe], roots: dict[str, str]) -> None:
    """A folded node shares its weights with an earlier node only where both fold the same trained
    modules the same way (a shared conv and a shared BN); otherwise it now has its own."""
    seen: dict = {}

    def key(n: str):
        r = recipes.get(n)
        return ("module", roots[n]) if r is None else _recipe_key(roots, r, n)

    for n, d in h.nodes(data=True):
        op = ops.OPS.get(d["kind"])
        if op is None or op.weights == "none":
            continue
        k = key(n)
        first = seen.setdefault(k, n)
        if first != n:
            if d.get("shared_from") != first:
                d["shared_from"] = first
            d["params"] = 0
        elif d.get("shared_from"):
            del d["shared_from"]
            _recost(d)


def _recipe_key(roots: dict[str, str], r: Recipe, n: str):
    """A recipe with every trained module named by the module it runs (ir/build.py `shared_from`):
    two nodes with one key hold the same weights after folding, as `fuse`'s modules are shared."""
    if r[0] in ("conv", "bn"):
        return (r[0], roots[r[1]])
    if r[0] == "conv_bn":
        return (r[0], _recipe_key(roots, r[1], n), roots[r[2]])
    if r[0] == "bn_conv":
        return (r[0], roots[r[1]], _recipe_key(roots, r[2], n))
    return (r[0], n)                    # a merge or a scale: a new conv of its own


def _recost(d: dict) -> None:
    """A node's parameters and MACs again from the op registry, after its attributes changed."""
    d["params"], d["macs"] = ops.cost(d["kind"], d["attrs"], d["in_shapes"], d["out_shape"])


def _root(g: nx.DiGraph, n: str) -> str:
    """The node whose trained module n runs (`shared_from`, followed to its end)."""
    while g.nodes[n].get("shared_from"):
        n = g.nodes[n]["shared_from"]
    return n


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _local(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _contract(h: nx.DiGraph, gone: list[str], into: str, data: dict) -> None:
    """Replace the nodes `gone` (and `into`, if present) by one node `into` holding `data`, edges
    rewired (its inputs become main edges). In place and local: node order is restored once, at
    the end of the pass (`_in_order`), every contracted node where its first member stood."""
    members = [into, *gone] if into in h else list(gone)
    inside = set(members)
    ins = [(u, d) for n in members for u, _, d in h.in_edges(n, data=True) if u not in inside]
    outs = [(v, d) for n in members for _, v, d in h.out_edges(n, data=True) if v not in inside]
    first = min(h.graph["_position"][n] for n in members)
    h.remove_nodes_from(members)
    h.add_node(into, **data)
    h.graph["_position"][into] = first
    seen = set()
    for u, d in ins:
        if u not in seen:
            seen.add(u)
            h.add_edge(u, into, **{**d, "kind": "main"})
    for v, d in outs:
        h.add_edge(into, v, **d)
    if h.graph.get("output") in inside:                 # the network's (or an aux head's) output folded
        h.graph["output"] = into
    for a in h.graph.get("aux", ()):
        if a["output"] in inside:
            a["output"] = into


def _in_order(h: nx.DiGraph) -> None:
    """Nodes in their first member's place of the unfused graph; edges in node order."""
    pos = h.graph.pop("_position")
    order = sorted(h.nodes, key=pos.__getitem__)
    nodes = [(n, h.nodes[n]) for n in order]
    edges = [(u, v, d) for u in order for v, d in h.succ[u].items()]
    h.clear_edges()
    h.remove_nodes_from(order)
    h.add_nodes_from(nodes)
    h.add_edges_from(edges)


def _conv_node(h: nx.DiGraph, gone: list[str], conv: dict, into: str) -> dict:
    members = set(gone)
    entry = next(n for n in gone if any(u not in members for u in h.predecessors(n)))
    exit_ = next(n for n in reversed(gone) if any(v not in members for v in h.successors(n)))
    in_shape, out_shape = h.nodes[entry]["in_shapes"][0], h.nodes[exit_]["out_shape"]
    params, macs = ops.cost("conv", conv, [in_shape], out_shape)
    scope = dict(h.nodes[entry]["scope"])
    scope["role"] = "residual" if scope.get("block") else scope.get("role", "residual")
    return {"kind": "conv", "attrs": dict(conv), "scope": scope, "in_shapes": [in_shape], "out_shape": out_shape,
            "params": params, "macs": macs,
            "span": h.nodes[entry].get("span"), "folded": list(gone), **_place(h, entry, into)}


def _place(h: nx.DiGraph, entry: str, into: str) -> dict:
    """Where the merged conv sits (ir/build.py): the entry's stage and unit; the branch of the
    container it stands in for (a merged `parallel`, or a whole block: `{block}.conv`)."""
    place = {k: h.nodes[entry].get(k) for k in ("stage", "unit", "branch", "in_branch", "parent")}
    containers = h.graph.get("containers", {})
    owner = next((p for p in (into, into.rpartition(".")[0]) if p in containers), None)
    if owner is not None:
        place.update(branch=containers[owner]["branch"], in_branch=containers[owner]["in_branch"])
        place["parent"] = containers[owner]["parent"] if owner == into else owner
    return place


def inference_graph(g: nx.DiGraph) -> tuple[nx.DiGraph, FuseReport]:
    """(fused graph, report) of an annotated graph, for BN statistics in general position: whether a
    BN before a padded conv folds depends on its values (its shift must be zero); a drawing is of
    the structure, so such folds are not drawn. Nothing is compiled; parameters are the graphs'."""
    plan = fuse_pass(g)
    return plan.graph, plan.report(_total(g), _total(plan.graph))


def _total(g: nx.DiGraph) -> int:
    return sum(d["params"] for _, d in g.nodes(data=True))
