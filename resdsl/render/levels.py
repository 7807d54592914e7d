"""view(g, level, focus) -> View: the annotated graph collapsed into what one level draws.

    network   one box per section: stem, each stage (block ×N, width, output shape), head
    stage     one cluster per stage; runs of identical residual units collapsed to one (×N)
    block     every residual unit as a body box and a merge node, its shortcut beside it
    layer     every op; each residual unit a cluster inside its stage's cluster

Every level is a quotient of the graph: `key(node)` names the drawn node a graph node belongs
to (None: hidden, e.g. shortcut layers folded into a labelled shortcut edge), and graph edges
between different keys become drawn edges. Works for any node kind and shortcut kind.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import networkx as nx

from ..errors import SpecError, did_you_mean
from ..ir.kinds import LEVELS
from ..ir.shapes import totals
from . import styles as st
from .facts import Facts, is_merge
IN, OUT = "focus.in", "focus.out"


@dataclass
class Node:
    id: str
    title: str
    lines: list[str] = field(default_factory=list)
    role: str = "residual"
    cluster: tuple[str, ...] = ()
    params: int = 0
    macs: int = 0
    repeat: int = 1
    merge: bool = False          # drawn as a small circle (add, concat, ...)
    plain: bool = False          # a residual unit without shortcut
    main: bool = True            # on the main path (kept in one straight line)
    kinds: list[str] = field(default_factory=list)   # shortcut kinds to mention in the label


@dataclass
class Edge:
    src: str
    dst: str
    label: str = ""
    shortcut: str | None = None  # the drawn kind of a shortcut edge; None: main path


@dataclass
class View:
    title: list[str]
    level: str
    nodes: dict[str, Node]
    edges: list[Edge]
    clusters: dict[str, str]     # cluster path element -> label


def view(g: nx.DiGraph, level: str = "stage", focus: str | None = None) -> View:
    """The nodes, edges and clusters drawn for `level`, optionally only the part under `focus`."""
    if level not in LEVELS:
        raise SpecError(f"unknown level '{level}'", notes=["expected one of: " + ", ".join(LEVELS)])
    f = Facts(g)
    key = {"layer": _layer_key, "block": _unit_key, "stage": _unit_key, "network": _section_key}[level]
    rep = _runs(f) if level == "stage" else {}
    k: Callable[[str], str | None] = lambda n: key(f, n, rep)  # noqa: E731
    if focus:
        k = _focused(f, k, focus)
    members: dict[str, list[str]] = {}
    for n in f.order:
        kn = k(n)
        if kn is not None:
            members.setdefault(kn, []).append(n)
    nodes = {kn: _make(f, kn, ms, level, rep) for kn, ms in members.items()}
    out = g.graph["output"]
    if k(out) not in (None, OUT):
        nodes["output"] = Node("output", "output", [st.shape_text(g.nodes[out]["out_shape"])], role="output")
    order = {kn: f.pos[ms[0]] for kn, ms in members.items()} | {IN: -1, OUT: len(f.pos), "output": len(f.pos) + 1}
    edges = (_layer_edges if level == "layer" else _unit_edges)(f, k, order, level)
    if "output" in nodes:
        edges.append(Edge(k(out), "output", st.shape_text(g.nodes[out]["out_shape"])))
    return View(_title(g, level, focus), level, nodes, edges, _clusters(f, rep, level))


# ---- keys: which drawn node a graph node belongs to ----

def _section_key(f: Facts, n: str, rep: dict) -> str:
    return "input" if f.scope(n)["role"] == "input" else f.scope(n)["section"]


def _unit_key(f: Facts, n: str, rep: dict) -> str | None:
    top = f.top[n]
    if top is None:
        return _section_key(f, n, rep)
    role, unit = f.role(n), rep.get(top, top)
    if role == "shortcut":
        return None
    if role == "merge" or (role == "post" and top in f.merged):
        return unit if top in getattr(rep, "folded", ()) else unit + ".merge"
    return unit


def _layer_key(f: Facts, n: str, rep: dict) -> str:
    return n


def _focused(f: Facts, key: Callable, focus: str) -> Callable:
    """Keep the nodes under `focus`; their outside neighbours become one `in` and one `out` stub."""
    kept = {n for n in f.g if n == focus or n.startswith(focus + ".")}
    if not kept:
        units = [s["name"] for s in f.g.graph["stages"]] + list(f.g.graph["blocks"])
        units += sorted({f.scope(n)["section"] for n in f.g if f.scope(n)["role"] != "input"})
        hint = did_you_mean(focus, units) or "a focus is a stage, block or section, e.g. " + ", ".join(units[:3])
        raise SpecError(f"nothing to focus on at '{focus}'", notes=[hint])
    ins = {p for n in kept for p in f.g.predecessors(n)} - kept
    outs = {s for n in kept for s in f.g.successors(n)} - kept
    return lambda n: key(n) if n in kept else IN if n in ins else OUT if n in outs else None


class _Runs(dict):
    """unit -> the unit drawn for it; `folded`: units of multi-unit steps, whose merge is drawn inside
    the unit's node (a step of k units would otherwise cost 2k nodes per run)."""
    folded: set


def step_units(stage: dict) -> int:
    """How many units one step of a stage has: `stage x N [a(..), b(..)]` has 2 (the stage's block
    name joins the step's definitions with ' + '); 1 when the blocks do not split evenly."""
    k = len(stage["block"].split(" + "))
    return k if k > 0 and len(stage["blocks"]) % k == 0 else 1


def _runs(f: Facts) -> dict[str, str]:
    """Each unit -> the matching unit of the first step of its run of identical consecutive steps in
    the stage (a step is one unit, or the k units of `stage x N [a(..), b(..)]`)."""
    rep = _Runs()
    rep.folded = set()
    for s in f.g.graph["stages"]:
        k = step_units(s)
        steps = [s["blocks"][i:i + k] for i in range(0, len(s["blocks"]), k)]
        prev_sig, first = None, None
        for step in steps:
            sig = tuple(_signature(f, b) for b in step)
            if sig != prev_sig:
                prev_sig, first = sig, step
            rep.update(zip(step, first))
            if k > 1:
                rep.folded.update(step)
    return rep


_WIDTHS = ("drop_prob", "out", "groups", "channels", "start", "stop")


def _signature(f: Facts, b: str):
    """What the drawing shows of a unit: its ops and attributes, its shortcut; not its shapes."""
    info = f.g.graph["blocks"].get(b, {})
    # a stochastic-depth rate differs from unit to unit (linear decay) but is not drawn: not part of it;
    # nor are widths, which may grow unit by unit (PyramidNet): a run of units differing only in
    # width is drawn once, ×N
    ops = tuple((n[len(b):], f.g.nodes[n]["kind"],
                 repr(sorted((k, v) for k, v in f.g.nodes[n]["attrs"].items() if k not in _WIDTHS)), f.role(n))
                for n in f.members[b])
    return info.get("block"), f.kind(b), info.get("scale", 1.0), ops


# ---- nodes ----

def _make(f: Facts, k: str, ms: list[str], level: str, rep: dict) -> Node:
    g, first = f.g, ms[0]
    params, macs = sum(g.nodes[n]["params"] for n in ms), sum(g.nodes[n]["macs"] for n in ms)
    if k in (IN, OUT):
        where = dict.fromkeys(f.unit_name(n) for n in ms)         # in graph order
        word = "from" if k == IN else "to"
        return Node(k, f"{word} {', '.join(where)}", role="input" if k == IN else "output")
    if g.nodes[first]["kind"] == "input":
        return Node(k, "input", [st.shape_text(g.nodes[first]["out_shape"])], role="input")
    if level == "layer":
        return _layer_node(f, first)
    top = f.top[first]
    if top is None or level == "network":
        return _section_node(f, k, ms, params, macs)
    stage = f.scope(first)["section"]
    units = [b for b in f.stages[stage]["blocks"] if rep.get(b, b) == rep.get(top, top)]
    ms = [n for n in ms if f.top[n] == top]      # a run is drawn as its first unit, ×N
    whole = [n for b in units for n in f.members[b]]                    # with shortcut layers
    params, macs = sum(g.nodes[n]["params"] for n in whole), sum(g.nodes[n]["macs"] for n in whole)
    if k.endswith(".merge"):
        merge = next((n for n in ms if f.role(n) == "merge"), first)
        post = [st.op_text(g.nodes[n]["kind"], g.nodes[n]["attrs"]) for n in ms if f.role(n) == "post"]
        drops = [g.graph["blocks"][b]["drop_prob"] for b in units if b in g.graph["blocks"]]
        lines = ([" · ".join(post)] if post else []) + ([st.drop_text(drops)] if any(drops) else [])
        return Node(k, st.merge_symbol(g.nodes[merge]["kind"]), lines, role="merge",
                    cluster=(stage,), params=params, macs=macs, merge=True)
    idx = [b.rsplit(".", 1)[-1] for b in units]
    name = units[0] if len(units) == 1 else f"{units[0].rsplit('.', 1)[0]}.{idx[0]}–{idx[-1]}"
    extra = []
    if top in getattr(rep, "folded", ()):     # one unit of a multi-unit step: its units are not consecutive
        name = units[0] if len(units) == 1 else f"{units[0].rsplit('.', 1)[0]}.{', '.join(idx[:2])}" \
            + (f", … {idx[-1]}" if len(units) > 2 else "")
        drops = [g.graph["blocks"][b]["drop_prob"] for b in units if b in g.graph["blocks"]]
        extra = [st.drop_text(drops)] if any(drops) else []
    title = g.graph["blocks"].get(top, {}).get("block", "unit") + (f" ×{len(units)}" if len(units) > 1 else "")
    return Node(k, title, [name, *f.summary(ms, top), *extra], role="block", cluster=(stage,), params=params,
                macs=macs, repeat=len(units), plain=f.kind(top) == "none")


def _layer_node(f: Facts, n: str) -> Node:
    d = f.g.nodes[n]
    role, top, sec = f.role(n), f.top[n], f.scope(n)["section"]
    merge = is_merge(d["kind"]) and f.g.in_degree(n) > 1
    title = st.merge_symbol(d["kind"]) if merge else st.op_text(d["kind"], d["attrs"])
    lines = [f"×{d['attrs']['scale']:g}"] if merge and d["attrs"].get("scale", 1.0) != 1.0 else []
    if merge and d["attrs"].get("drop_prob"):
        lines.append(f"drop {d['attrs']['drop_prob']:.3g}")
    if d.get("tensor"):
        lines.append(f"→ {d['tensor']}")
    in_branch = d["in_branch"] or role == "shortcut"
    return Node(n, title, lines, role="residual" if role == "nested" else role,
                cluster=(sec, top) if top else (sec,), params=d["params"], macs=d["macs"], merge=merge,
                main=not in_branch)


def _section_node(f: Facts, k: str, ms: list[str], params: int, macs: int) -> Node:
    g = f.g
    if k in f.stages:
        s = f.stages[k]
        b0 = s["blocks"][0]
        args = g.graph["blocks"].get(b0, {}).get("args", {})
        width = next(iter(args.items()), None)
        kinds = list(dict.fromkeys(f.kind(b) for b in s["blocks"]))
        lines = [f"{width[0]} {st.name_of(width[1])}"] if width else []
        lines.append("→ " + st.shape_text(g.nodes[ms[-1]]["out_shape"]))
        steps = len(s["blocks"]) // step_units(s)       # `stage x 12 [a(..), b(..)]` is ×12, not ×24
        return Node(k, f"{k} · {s['block']} ×{steps}", lines, role="stage", params=params, macs=macs,
                    repeat=steps, kinds=kinds)
    role = f.scope(ms[0])["role"]
    return Node(k, k, f.summary(ms, k), role=role if role in st.ROLE_COLOURS else "stem", params=params, macs=macs)


# ---- edges ----

def _layer_edges(f: Facts, key: Callable, order: dict, level: str) -> list[Edge]:
    """Every graph edge; shortcut paths styled by their unit's kind; shapes where they change."""
    g, seen, edges = f.g, set(), []
    for u, v, e in g.edges(data=True):
        ku, kv = key(u), key(v)
        if ku is None or kv is None or ku == kv or (ku, kv) in seen:
            continue
        seen.add((ku, kv))
        sv = f.scope(v)
        kind = f.kind(sv["block"]) if e["kind"] == "shortcut" or sv["role"] == "shortcut" else None
        du = g.nodes[u]
        changed = du["kind"] == "input" or ku == IN or list(du["in_shapes"][:1]) != [du["out_shape"]] \
            or f.unit_name(u) != f.unit_name(v)
        label = st.shape_text(du["out_shape"]) if changed and e["kind"] != "shortcut" else ""
        if kind == "scaled" and e["kind"] == "shortcut":
            label = f.shortcut_label(sv["block"])
        edges.append(Edge(ku, kv, label, kind))
    return edges


def _unit_edges(f: Facts, key: Callable, order: dict, level: str) -> list[Edge]:
    """Edges between collapsed groups: shapes on the main path, one labelled edge per shortcut."""
    g, labels, shortcuts = f.g, {}, {}
    for u, v, e in g.edges(data=True):
        top = f.top[v]
        if level != "network" and e["kind"] == "shortcut" and top and f.scope(v)["block"] == top:
            ko, kv = key(f.origin(top)), key(v)
            if ko is not None and kv is not None and order[ko] < order[kv]:
                shortcuts.setdefault((ko, kv), Edge(ko, kv, f.shortcut_label(top), f.kind(top)))
            continue
        ku, kv = key(u), key(v)
        if ku is None or kv is None or ku == kv or order[ku] >= order[kv]:
            continue
        into_merge = kv.endswith(".merge") and g.nodes[u]["out_shape"] == g.nodes[v]["out_shape"]
        labels.setdefault((ku, kv), []).append("" if into_merge else st.shape_text(g.nodes[u]["out_shape"]))
    main = [Edge(a, b, ls[0] if len(set(ls)) == 1 else f"{ls[0]} … {ls[-1]}") for (a, b), ls in labels.items()]
    return main + list(shortcuts.values())


# ---- clusters and title ----

def _clusters(f: Facts, rep: dict, level: str) -> dict[str, str]:
    out = {}
    for s in f.g.graph["stages"]:
        out[s["name"]] = f"{s['name']} · {s['block']} ×{len(s['blocks']) // step_units(s)}"
        if level == "layer":
            out.update({b: f"{b} · {f.g.graph['blocks'][b]['block']}" for b in s["blocks"]})
    return out


def _title(g: nx.DiGraph, level: str, focus: str | None) -> list[str]:
    args = ", ".join(f"{k}={st.name_of(v)}" for k, v in g.graph["args"].items())
    params, macs = totals(g)
    where = f"{focus} · " if focus else ""
    return [f"{g.graph['name']}({args})",
            f"{where}{level} level · input {st.shape_text(g.graph['input_shape'])} · {st.cost_text(params, macs)}"]
