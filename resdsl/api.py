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
from typing import Any, Iterable, Mapping

import networkx as nx

from . import limits
from .budget import check_graph
from .errors import SpecError
from .frontend.load import Program, load
from .frontend.screen import screen
from .frontend.lower import lower
from .frontend.parse import parse_expr
from .frontend.values import Evaluator
from .ir.build import build
from .ir.net import Net
from .ir.shapes import infer_shapes, lint
from .zoo.names import resolve


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
    file = f"--set {name}"
    screen(text.strip(), file)
    with _bounded():
        return Evaluator({})(parse_expr(text.strip(), file), {})


def split_sets(values: tuple[str, ...]) -> dict[str, str]:
    """`--set name=value` options -> {name: "value"} as written (runs save them so)."""
    out = {}
    for item in values:
        name, eq, text = item.partition("=")
        if not eq or not name.strip().isidentifier():
            raise SpecError(f"--set expects NAME=VALUE, got '{item[:200]}'")
        out[name.strip()] = text.strip()
    return out


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Python keyword values pass through; strings are read as spec expressions (`"zeropad"`), here
    and only here: `--set` text (split_sets) and a run's saved arguments are passed on as written."""
    return {k: parse_value(v, k) if isinstance(v, str) else v for k, v in params.items()}


@contextlib.contextmanager
def _bounded():
    """A RecursionError never escapes: it becomes the nesting budget's error (see resdsl.limits)."""
    try:
        yield
    except RecursionError:
        raise limits.NESTING.error("the spec nests beyond Python's stack") from None


def load_program(spec: str | Path | Program, allow_imports: Iterable[str | Path] = ()) -> Program:
    """A spec file, spec text or an already loaded Program, with its imports (see frontend/load.py)."""
    if isinstance(spec, Program):
        return spec
    path, network, args = resolve(spec, None, {})         # a zoo name -> its spec, network, arguments
    with _bounded():
        prog = load(path, allow_imports)
    if path is not spec:
        prog.preset = (network, args)
    return prog


def load_spec(spec: str | Path | Program, network: str | None = None, *, allow_imports: Iterable[str | Path] = (),
              **params: Any) -> Net:
    """Parse and lower a spec (a path, a zoo name such as `resnet50`, the text itself or a Program) into its net."""
    prog = load_program(spec, allow_imports)
    values = _params(params)
    if prog.preset is not None:                          # a zoo name: its network and arguments
        if network is not None and network != prog.preset[0]:
            raise SpecError(f"zoo name '{spec}' is network '{prog.preset[0]}', not '{network}'")
        network, values = prog.preset[0], {**prog.preset[1], **values}
    with _gc_paused(), _bounded():
        return lower(prog, network, values)


def graph_of(net: Net) -> nx.DiGraph:
    with _gc_paused(), _bounded():
        g = infer_shapes(build(net))
        lint(g)
    check_graph(g)
    return g


def graph(spec: str | Path | Program, network: str | None = None, *, allow_imports: Iterable[str | Path] = (),
          **params: Any) -> nx.DiGraph:
    """The networkx graph of primitive ops, every node annotated with shapes, params and MACs."""
    return graph_of(load_spec(spec, network, allow_imports=allow_imports, **params))


def compile(spec: str | Path | Program, network: str | None = None, force: bool = False, *,
            allow_imports: Iterable[str | Path] = (), input_size=None, weights=None, **params: Any):
    """Compile a spec (a path, spec text or a Program) to a torch.nn.Module (module names: ir/net.py).
    `input_size` (32, "32x32", "3x32x32") replaces the spec's input shape, shapes checked again;
    `weights` ("DEFAULT" or a weights enum name) loads a zoo name's pretrained weights through
    torchvision's or timm's own loader and transfers them by structure (backend/finetune.py)."""
    net = load_spec(spec, network, allow_imports=allow_imports, **params)
    if input_size is not None:
        from .backend.finetune import with_input_size

        net = with_input_size(net, input_size)
    model = model_of(net, graph_of(net), force)
    if weights is not None:
        from .backend.finetune import load_pretrained

        if not isinstance(spec, str) or spec.endswith(".res") or "\n" in spec:
            raise SpecError("weights= needs a zoo name (resdsl.compile('resnet50', weights='DEFAULT')) or "
                            "use transfer_weights with a model you loaded")
        load_pretrained(model, spec, weights)
    return model


def load_model(spec: str | Path | Program, network: str | None = None, args: Mapping[str, Any] | None = None,
               *, allow_imports: Iterable[str | Path] = (), force: bool = False, input_size=None):
    """Compile a spec with its network arguments (strings are read as spec expressions, as `--set`
    writes them and runs save them), at `input_size` when given; returns (model, program)."""
    prog = load_program(spec, allow_imports)
    return compile(prog, network, force=force, input_size=input_size, **dict(args or {})), prog


def model_of(net: Net, g: nx.DiGraph, force: bool = False):
    """The torch module of a lowered net and its annotated graph (for a caller that needs both),
    refused before allocating when over the memory budget unless `force` (budget.check_memory)."""
    from .backend.compile import compile_graph

    with _bounded():
        return compile_graph(g, force)


__all__ = ["SpecError", "load_program", "load_spec", "graph", "graph_of", "compile", "load_model", "model_of", "parse_value"]
