"""to_dot(view) -> graphviz.Digraph: boxes coloured by role, a cluster per stage, shortcuts beside.

The main path is kept straight (one `group`, heavy edges); shortcut edges weigh nothing, so
Graphviz routes them around the units they skip. Output is deterministic: nodes, clusters and
edges are emitted in graph order, and no path or time goes into the text.
"""
from __future__ import annotations

from html import escape

import graphviz

from . import styles as st
from .levels import Edge, Node, View


def to_dot(v: View, rankdir: str = "TB", show_cost: bool = False) -> graphviz.Digraph:
    d = graphviz.Digraph(
        "resdsl",
        graph_attr={"rankdir": rankdir, "fontname": st.FONT, "fontsize": "13", "labelloc": "t",
                    "label": _html([f"<b>{escape(v.title[0])}</b>", _small(v.title[1], "#555555")]),
                    "nodesep": "0.35", "ranksep": "0.32", "newrank": "true", "bgcolor": "white",
                    "pad": "0.2", "outputorder": "edgesfirst"},
        node_attr={"fontname": st.FONT, "fontsize": "11", "shape": "box", "style": "rounded,filled",
                   "penwidth": "1.2", "margin": "0.14,0.06"},
        edge_attr={"fontname": st.FONT, "fontsize": "9", "fontcolor": "#444444", "color": st.MAIN_COLOR,
                   "arrowsize": "0.6", "penwidth": "1.2"})
    _emit_nodes(d, v, show_cost)
    for e in v.edges:
        _edge(d, e)
    _legend(d, v, rankdir)
    return d


def _emit_nodes(d: graphviz.Digraph, v: View, show_cost: bool) -> None:
    """Nodes in clusters, nested as their cluster paths say (stage, then unit)."""
    tree: dict = {}
    for n in v.nodes.values():
        level = tree
        for c in n.cluster:
            level = level.setdefault(c, {})
        level.setdefault(None, []).append(n)

    def emit(g: graphviz.Digraph, level: dict, depth: int) -> None:
        for n in level.get(None, []):
            _node(g, n, show_cost)
        for name, sub in level.items():
            if name is None:
                continue
            if name not in v.clusters:     # a section: its nodes stand alone
                emit(g, sub, depth)
                continue
            with g.subgraph(name=f"cluster_{name}") as c:
                c.attr(label=v.clusters[name], style="rounded,filled", color="#b8c4d6" if depth == 0 else "#d5dbe5",
                       fillcolor="#f5f8fc" if depth == 0 else "#fbfcfe", fontsize="10" if depth else "11",
                       fontcolor="#3c4a60", labeljust="l", penwidth="1")
                emit(c, sub, depth + 1)

    emit(d, tree, 0)


def _node(d: graphviz.Digraph, n: Node, show_cost: bool) -> None:
    colours = st.ROLE_COLOURS.get(n.role, st.GENERIC_FILL)
    attrs = {"fillcolor": colours.fill, "color": colours.border, "class": f"role-{n.role}"}
    if n.main:
        attrs["group"] = "main"
    if n.merge:
        attrs.update(shape="circle", label=n.title, fontsize="13", width="0.32", height="0.32", fixedsize="true",
                     style="filled", margin="0")
        if n.lines:
            attrs["xlabel"] = _html([_small(" ".join(n.lines), "#555555")])
        d.node(n.id, **attrs)
        return
    rows = [f"<b>{escape(n.title)}</b>"] + [_small(line, "#333333") for line in n.lines]
    if n.kinds:
        rows.append(" ".join([_small("shortcuts:", "#777777")]
                             + [_small(k, st.edge_style(k).color) for k in n.kinds if k != "none"]))
    if show_cost and (n.params or n.macs):
        rows.append(_small(st.cost_text(n.params, n.macs), "#7a5a00"))
    if n.role in ("input", "output"):
        attrs.update(shape="box", style="rounded", fontsize="10")
    if n.plain:
        attrs["style"] = "rounded,filled,dashed"
    if n.repeat > 1:
        attrs["peripheries"] = "2"
    d.node(n.id, label=_html(rows), **attrs)


def _edge(d: graphviz.Digraph, e: Edge) -> None:
    attrs = {"weight": "8"}
    if e.shortcut is not None:
        s = st.edge_style(e.shortcut)
        attrs = {"color": s.color, "style": s.style, "penwidth": s.penwidth, "arrowhead": s.arrowhead,
                 "weight": "0", "class": f"shortcut {e.shortcut}", "fontcolor": s.color}
    if e.label:
        attrs["label"] = f" {e.label} "
    d.edge(e.src, e.dst, **attrs)


def _legend(d: graphviz.Digraph, v: View, rankdir: str = "TB") -> None:
    """One sample edge per shortcut kind drawn, one row each (and a dashed box for plain units).
    Top to bottom, a row's two ends share a rank and the rows are chained; left to right, ranks
    are columns, so the sample edges run across ranks and their starts share one (else the edges
    ran up through the labels of the rows above)."""
    drawn = {e.shortcut for e in v.edges if e.shortcut} | {k for n in v.nodes.values() for k in n.kinds}
    plain = any(n.plain for n in v.nodes.values()) or "none" in drawn
    known = list(st.SHORTCUT_STYLES)
    kinds = sorted(drawn - {"none"}, key=lambda k: (k not in known, known.index(k) if k in known else 0, k))
    if not kinds and not plain:
        return
    with d.subgraph(name="cluster_legend") as c:
        c.attr(label="shortcuts", style="rounded", color="#cccccc", fontsize="10", fontcolor="#555555",
               labeljust="l")
        rows = []
        for i, k in enumerate(kinds):
            s = st.edge_style(k)
            what = s.what if k in st.SHORTCUT_STYLES else f"{k}: {s.what}"
            a, b = f"legend.{i}.a", f"legend.{i}.b"
            with c.subgraph() as row:
                if rankdir == "TB":
                    row.attr(rank="same")
                row.node(a, label="", shape="point", width="0.04", color="#999999")
                row.node(b, label="", shape="point", width="0.04", color="#999999")
            c.edge(a, b, label=f" {what} ", color=s.color, style=s.style, penwidth=s.penwidth,
                   arrowhead=s.arrowhead, fontcolor=s.color, minlen="3" if rankdir == "TB" else "1", **{"class": f"legend shortcut {k}"})
            rows.append(a)
        if plain:
            c.node("legend.none", label=_html([_small("none: plain unit, no shortcut", "#333333")]),
                   style="rounded,dashed", color="#4f7fab", fontsize="9")
            rows.append("legend.none")
        if rankdir == "TB":
            for a, b in zip(rows, rows[1:]):
                c.edge(a, b, style="invis", minlen="1")
        else:
            with c.subgraph() as column:
                column.attr(rank="same")
                for a in rows:
                    column.node(a)


def _small(text: str, colour: str) -> str:
    return f'<font point-size="9" color="{colour}">{escape(text)}</font>'


def _html(rows: list[str]) -> str:
    return "<" + "<br/>".join(rows) + ">"
