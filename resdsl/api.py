"""The public Python API: the passes in order, in one place.

    .res text --parse--> AST --lower(+prelude)--> Net --build--> DiGraph --infer_shapes-->
    annotated graph --+--compile--> torch nn.Module
                      +--render---> .dot / .svg / .png
                      +--cost-----> params, MACs, activations
"""
from __future__ import annotations

import contextlib
import gc
from pathlib import Path
from typing import Any, Mapping

import networkx as nx

from .errors import SpecError
from .frontend.load import load
from .frontend.lower import lower
from .frontend.parse import parse_expr
from .frontend.values import Evaluator
from .ir.build import build
from .ir.net import Net
from .ir.shapes import infer_shapes, lint
from .names import resolve


@contextlib.contextmanager
def _gc_paused():
    """The front end allocates many small objects and no garbage cycles; the cyclic collector
    would rescan them all again and again (about 45% of the time at 40,000 ops)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_value(text: str, name: str = "value") -> Any:
    """A parameter value written as in a spec: `101`, `0.5`, `[1, 2]`, `zeropad`, `"text"`."""
    return Evaluator({})(parse_expr(text.strip(), f"--set {name}"), {})


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Python keyword values pass through; strings are read as spec expressions (`"zeropad"`)."""
    return {k: parse_value(v, k) if isinstance(v, str) else v for k, v in params.items()}


def load_spec(spec: str | Path, network: str | None = None, **params: Any) -> Net:
    """Parse and lower a spec (a path, a zoo name such as `resnet50`, or the text itself) into its net."""
    spec, network, values = resolve(spec, network, _params(params))     # a zoo name -> its spec
    with _gc_paused():
        return lower(load(spec), network, values)


def graph_of(net: Net) -> nx.DiGraph:
    with _gc_paused():
        g = infer_shapes(build(net))
        lint(g)
    return g


def graph(spec: str | Path, network: str | None = None, **params: Any) -> nx.DiGraph:
    """The networkx graph of primitive ops, every node annotated with shapes, params and MACs."""
    return graph_of(load_spec(spec, network, **params))


def compile(spec: str | Path, network: str | None = None, force: bool = False, **params: Any):
    """Compile a spec to a torch.nn.Module (see resdsl/ir/net.py for the module names)."""
    from .backend.compile import compile_net

    net = load_spec(spec, network, **params)
    return compile_net(net, graph_of(net), force=force)


__all__ = ["SpecError", "load_spec", "graph", "graph_of", "compile", "parse_value"]
