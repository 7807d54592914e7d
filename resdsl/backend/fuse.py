"""fuse(model) -> an equivalent inference module: BN folded, linear parallel branches merged.

A compiler pass, as torch.fx does it: the fusion pass (`fuse_graph.fuse_pass`) rewrites the
annotated graph the model was compiled from (`graph_of`), deciding every fold from the graph's
attributes (and, for a BN before a zero-padded conv, from the BN's values); the fused graph is
compiled by the normal backend (`compile.network`); its weights are the trained model's, by
module name, and each new conv's come from its recipe (`fold.evaluate`: BN folding, kernels
padded and summed). Nothing is changed where the result would not be exact; `report=True` says
what was folded and what was left. The result is for eval mode only (BN statistics and eval-time
drop-path scaling are baked in).
"""
from __future__ import annotations

import networkx as nx
import torch
from torch import nn

from ..ir.shapes import infer_shapes
from . import fold
from .fuse_graph import FuseReport, fuse_pass


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def graph_of(model: nn.Module) -> nx.DiGraph:
    """The annotated graph a model was compiled from (compile.network records it), or a clear error."""
    source = getattr(model, "source_graph", None)
    if source is None:
        raise ValueError(f"fuse needs a network compiled by resdsl (resdsl.compile), whose graph it rewrites; "
                         f"this {type(model).__name__} has none")
    if not source.outputs:
        return source.g
    h = source.g.copy()                            # a classifier replaced since: its new size, shapes again
    for node, out in source.outputs.items():
        if node not in h or "out" not in h.nodes[node]["attrs"]:
            raise ValueError(f"fuse: the graph has no layer {node} with outputs to change")
        h.nodes[node]["attrs"] = {**h.nodes[node]["attrs"], "out": out}
    return infer_shapes(h)


def fuse(model: nn.Module, report: bool = False, memory_format: torch.memory_format | None = torch.channels_last):
    """A new eval-mode module computing model.eval()'s function; (module, FuseReport) with report=True.

    Weights go to `memory_format` (None: as they are). channels_last is the default because oneDNN's
    convolutions run faster on NHWC activations on this CPU (ResNet-50, batch 16: 1.34× against
    NCHW; benchmarks/RESULTS.md); an NCHW input is accepted and the activations follow the weights.
    """
    from .compile import network

    g = graph_of(model)
    plan = fuse_pass(g, zero_shift=lambda bn: _zero_shift(model.get_submodule(bn)),
                     module_type=lambda path: type(model.get_submodule(path)).__name__)
    with torch.random.fork_rng(devices=[]):           # the modules' own init is overwritten: leave the RNG be
        out = network(plan.graph)
    with torch.no_grad():
        _load(out, model, plan.recipes)
    like = next(iter(model.parameters()), None)
    if like is not None and (like.device.type != "cpu" or like.dtype != torch.float32):
        out = out.to(device=like.device, dtype=like.dtype)
    if getattr(model, "frozen", ()):            # the same parts without gradient, as the trained model
        out.freeze(model.frozen)
    if memory_format is not None:
        out = out.to(memory_format=memory_format)
    out.eval()
    rep = plan.report(_params(model), _params(out))
    return (out, rep) if report else out


def _zero_shift(bn: nn.Module) -> bool:
    """Whether an eval-mode BN's shift β − μ·γ/σ is zero (fold.bn_then_conv's test)."""
    ab = fold.bn_affine(bn)
    return ab is not None and not bool((ab[1].abs() > 1e-7 * ab[0].abs()).any())


def _load(out: nn.Module, model: nn.Module, recipes: dict) -> None:
    """Every module of the fused network gets its tensors: a new conv's from its recipe, any other's
    from the module of the same name in the trained model (its names are the graph's nodes)."""
    done: dict = {}
    for name, m in out.named_modules():            # a shared module once
        own = [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]
        if name in recipes:
            src = fold.evaluate(recipes[name], model, done)
        elif own or not next(m.children(), None):  # a leaf says what runs: the model's must be the same
            src = _source(model, name, m)
        else:
            continue
        for k, t in own:
            s = getattr(src, k)
            if s is None or s.shape != t.shape:
                raise ValueError(f"fuse: {name}.{k} of the model does not match its graph "
                                 f"({None if s is None else tuple(s.shape)} against {tuple(t.shape)}); "
                                 "was the model changed after compiling?")
            t.copy_(s)


def _source(model: nn.Module, name: str, m: nn.Module) -> nn.Module:
    try:
        src = model.get_submodule(name)
    except AttributeError:
        src = None
    if type(src) is not type(m):
        raise ValueError(f"fuse: the model's {name or 'network'} is a {type(src).__name__}, its graph says "
                         f"{type(m).__name__}; was the model changed after compiling?")
    return src
