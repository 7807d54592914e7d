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
    return to_dot(view(g, level_for(level, focus), focus), rankdir=rankdir.upper(), show_cost=show_cost)


def level_for(level: str | None, focus: str | None) -> str:
    """The level drawn when none is asked for: stage, or layer when focusing on one part."""
    return level or ("layer" if focus else DEFAULT_LEVEL)


__all__ = ["render", "view", "to_dot", "level_for", "View", "LEVELS", "DEFAULT_LEVEL", "FORMATS"]
