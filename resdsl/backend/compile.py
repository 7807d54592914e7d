"""compile_graph(g) -> Network: one nn.Module per op node, built by walking the graph's module tree.

The annotated graph holds everything the compiler needs: each op node's resolved attributes and
input shapes, and `g.graph["containers"]` (module path -> sequence, block, branches, stage or
section, with its children in order). Node names are the module paths (see ir/net.py), so the
compiled model's state_dict keys are the graph's node names. Block semantics live in the graph
builder (ir/build.py) and ResidualBlock.forward; this file only assembles modules.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import networkx as nx
from torch import nn

from ..budget import check_memory
from ..ir import ops
from ..ir.kinds import MERGE_MODES, SHORTCUTS
from .builders import build_op
from .init import apply_init
from .modules import Branches, Dataflow, Network, ResidualBlock, SourceGraph, Stage
from .unit import Unit


@dataclass
class Context:
    """The graph being compiled; what the builders below read."""
    g: nx.DiGraph

    def container(self, path: str) -> dict:
        return self.g.graph["containers"][path]

    def is_node(self, child: str) -> bool:
        return child not in self.g.graph["containers"]


def layer(ctx: Context, n: str, inplace: bool) -> nn.Module:
    """The module of one op node, from its registry entry."""
    d = ctx.g.nodes[n]
    return build_op(d["kind"], d["attrs"], d["in_shapes"], inplace)


def sequence(ctx: Context, path: str) -> nn.Sequential:
    """Children in order; a ReLU runs in place unless it would overwrite a tensor someone else reads
    (the sequence's input, unless it is a unit's `post`; an output a backward needs)."""
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    owns_input = ctx.container(path).get("role") == "post"
    prev_needs_output = False
    for i, child in enumerate(ctx.container(path)["children"]):
        if ctx.is_node(child):
            mods[child.rsplit(".", 1)[-1]] = layer(ctx, child, (i > 0 or owns_input) and not prev_needs_output)
            prev_needs_output = ops.OPS[ctx.g.nodes[child]["kind"]].needs_output
        else:
            mods[child.rsplit(".", 1)[-1]] = module(ctx, child)
            prev_needs_output = False
    return nn.Sequential(mods)


def branches(ctx: Context, path: str) -> Branches:
    c = ctx.container(path)
    return Branches([sequence(ctx, b) for b in c["children"]], c["mode"])


def dataflow(ctx: Context, path: str) -> Dataflow:
    """A body with named tensors: its steps' modules (a merge runs in the Dataflow module), wired by
    name. A ReLU runs in place only on a fresh tensor (a conv's, a BN's) that it alone reads."""
    c = ctx.container(path)
    reads: dict[str, int] = {}
    for _, inputs, _ in c["steps"]:
        for t in inputs:
            reads[t] = reads.get(t, 0) + 1
    made: dict[str, str] = {}
    steps = []
    for child, inputs, out in c["steps"]:
        local = child.rsplit(".", 1)[-1]
        if not ctx.is_node(child):
            steps.append((local, module(ctx, child), inputs, out))
        elif not ops.OPS[ctx.g.nodes[child]["kind"]].builds_module:
            steps.append((local, ctx.g.nodes[child]["kind"], inputs, out))
        else:
            src = made.get(inputs[0])
            inplace = (src is not None and ctx.is_node(src) and ops.OPS[ctx.g.nodes[src]["kind"]].fresh_output
                       and reads[inputs[0]] == 1 and inputs[0] != c["output"])
            steps.append((local, layer(ctx, child, inplace), inputs, out))
        made[out] = child
    return Dataflow(steps, c["output"])


def block(ctx: Context, path: str) -> ResidualBlock:
    """A residual unit from its graph record: y = post(merge(scale · Σ_k residual_k(pre(x)), shortcut(x)))."""
    info = ctx.g.graph["blocks"][path]
    parts = {"pre": None, "shortcut": None, "gate": None, "post": None}
    residuals: list[tuple[str, nn.Module]] = []
    for child in ctx.container(path)["children"]:
        role = ctx.container(child)["role"]
        if role == "residual":
            residuals.append((child, sequence(ctx, child)))
        else:
            parts[role] = sequence(ctx, child)
    add_inplace = fresh(ctx, residuals[0][0]) or info["scale"] != 1.0 or len(residuals) > 1
    unit = Unit(shortcut=info["shortcut"], has_shortcut=SHORTCUTS[info["shortcut"]].carries, merge=info["merge"],
                additive=info["additive"], from_pre=info["source"] == "pre", scale=float(info["scale"]),
                drop_prob=float(info["drop_prob"]), drop_mode=info["drop_mode"], add_inplace=add_inplace)
    return ResidualBlock(unit, [m for _, m in residuals], pre=parts["pre"],
                         shortcut=parts["shortcut"], gate=parts["gate"], post=parts["post"])


def fresh(ctx: Context, path: str) -> bool:
    """Whether a branch ends in an op whose output nobody else reads (the merge may add into it)."""
    children = ctx.container(path)["children"]
    last = children[-1] if children else None
    return last is not None and ctx.is_node(last) and ops.OPS[ctx.g.nodes[last]["kind"]].fresh_output


def stage(ctx: Context, path: str) -> Stage:
    return Stage([module(ctx, b) for b in ctx.container(path)["children"]])   # a block (fused: a sequence)


BUILDERS = {"sequence": sequence, "section": sequence, "branches": branches, "block": block, "stage": stage,
            "dataflow": dataflow}


def module(ctx: Context, path: str) -> nn.Module:
    return BUILDERS[ctx.container(path)["type"]](ctx, path)


def tie_shared(model: nn.Module, g: nx.DiGraph) -> None:
    """A node with `shared_from` runs the very module of the node it names (ir/build.py marks them)."""
    for n, d in g.nodes(data=True):
        if d.get("shared_from"):
            parent, _, leaf = n.rpartition(".")
            setattr(model.get_submodule(parent), leaf, model.get_submodule(d["shared_from"]))


def network(g: nx.DiGraph) -> Network:
    ctx = Context(g)
    stem, head, body = nn.Sequential(), nn.Sequential(), []
    for path, c in g.graph["containers"].items():
        if c["parent"] is not None:
            continue
        if c["type"] == "stage":
            body.append(("stage", stage(ctx, path)))
        elif c["role"] in ("transition", "aux"):
            body.append((c["role"], sequence(ctx, path)))
        elif c["role"] == "stem":
            stem = sequence(ctx, path)
        else:
            head = sequence(ctx, path)
    out = g.nodes[g.graph["output"]]["out_shape"]
    model = Network(g.graph["name"], g.graph["input_shape"], out[0], stem, body, head,
                    aux_weights=[a["weight"] for a in g.graph.get("aux", ())])
    model.output_shape = tuple(out)                                # C, or C×1×1: one score per class
    model.output_span = g.nodes[g.graph["output"]].get("span")     # where the output is made (train's check)
    tie_shared(model, g)
    model.source_graph = SourceGraph(g)
    return model


def init_weights(model: nn.Module) -> None:
    """torchvision's ResNet initialisation: He-normal (fan_out) convs, BN γ=1 β=0, default Linear."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def gate_biases(model: nn.Module, g: nx.DiGraph) -> None:
    """Highway gate biases come from the spec (`merge gate bias -2`), set after init_weights."""
    for name, info in g.graph["blocks"].items():
        if MERGE_MODES[info["merge"]].needs_gate:
            nn.init.constant_(model.get_submodule(f"{name}.gate")[0].bias, info["gate_bias"])


def compile_graph(g: nx.DiGraph, force: bool = False) -> Network:
    """The annotated graph as a torch module, initialised as torchvision does, then as the spec says;
    refused before allocating when over the memory budget unless `force` (budget.check_memory)."""
    check_memory(g, force)
    model = network(g)
    init_weights(model)
    gate_biases(model, g)
    apply_init(model, g.graph["init"], g)
    return model
