"""render(g) -> graphviz.Digraph: architecture diagrams drawn from the annotated graph.

    annotated graph --view(level, focus)--> View (nodes, edges, clusters) --to_dot--> Digraph

Pure Python (no torch). The `dot` program is needed only to turn the DOT text into SVG/PNG/PDF.
"""
from __future__ import annotations

import graphviz
import networkx as nx

from .dot import to_dot
from .levels import LEVELS, View, view

DEFAULT_LEVEL = "stage"     # at most ~20 nodes for every spec in the zoo, ResNet-1202 included
FORMATS = ("svg", "png", "pdf", "dot")


def render(g: nx.DiGraph, level: str | None = None, focus: str | None = None, rankdir: str = "TB",
           show_cost: bool = False) -> graphviz.Digraph:
    """Draw an annotated graph; `focus` (a stage, block or section) defaults to layer level."""
    level = level or ("layer" if focus else DEFAULT_LEVEL)
    return to_dot(view(g, level, focus), rankdir=rankdir.upper(), show_cost=show_cost)


__all__ = ["render", "view", "View", "LEVELS", "DEFAULT_LEVEL", "FORMATS"]
