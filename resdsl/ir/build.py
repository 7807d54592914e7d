"""build(net) -> networkx.DiGraph of primitive ops, one node per op, named by module path.

Node attributes: kind, attrs (resolved: ops.make), span, scope, and where the node sits:
    scope     section (stem, stages.{i}, transitions.{i}, head, or input), block (the innermost
              residual unit, or None), role (stem/transition/head, or pre/residual/shortcut/gate/
              merge/post inside a unit)
    stage     the stage's name, or None outside stages
    unit      the stage-level unit the node belongs to (None in stem, transitions, head)
    branch    (group, index) of the outermost parallel branch (or `residuals.k`) within its unit
    in_branch whether any enclosing sequence is a branch
    parent    the module path of the container the node's module sits in
    tensor    (in a dataflow body) the name the spec gives the node's output (`-> h`, `split -> a b`)
infer_shapes adds in_shapes, out_shape, params, macs. Edge attributes: kind ("main" or
"shortcut"), shortcut (the drawn shortcut kind, on shortcut edges), port (input position).

Graph attributes: name, input_shape, span, init (directives), args (network arguments),
output (last node), stages
(name, block, blocks), blocks (name -> block, section, shortcut kind, merge, additive (ir/kinds.py), scale,
drop_prob, drop_mode, source, gate_bias, shares, share_bn, args, span) and containers (module
path -> type, parent, children in order, branch and in_branch of a node standing in for it, and
per type: role, mode; a `dataflow` container also has `steps`, (child path, input tensor names,
output tensor name) in order, and `output`, the tensor it returns): the module tree the compiler
builds. A node of a weight-sharing block has `shared_from` (the node whose
parameters it uses) and counts no parameters of its own.
"""
from __future__ import annotations

from typing import NamedTuple

import networkx as nx

from . import ops
from .kinds import MERGE_MODES, SHORTCUTS
from .net import Block, Dataflow, Item, Layer, Net, Parallel, Section


class Where(NamedTuple):
    """Where the builder is: the scope written on each node, and the container it fills (a tuple:
    the builder makes one per sequence and block, `_replace` is its cheap copy)."""
    section: str
    stage: str | None
    block: str | None
    unit: str | None
    role: str
    seq: str
    branch: tuple[str, int] | None = None
    in_branch: bool = False


class GraphBuilder:
    def __init__(self, net: Net):
        self.g = nx.DiGraph(name=net.name, input_shape=net.input_shape, args=dict(net.args),
                            stages=[], blocks={}, containers={}, init=net.init, span=net.span, aux=[])
        where = Where("input", None, None, None, "input", "")
        self._add(where, "input", "input", {}, net.span)

    def container(self, path: str, parent: str | None, type_: str, stand_in: Where | None = None, **info) -> str:
        """A module of the tree; `stand_in`: the branch and in_branch a node replacing it would have."""
        self.g.graph["containers"][path] = {"type": type_, "parent": parent, "children": [],
                                            "branch": stand_in.branch if stand_in else None,
                                            "in_branch": stand_in.in_branch if stand_in else False, **info}
        if parent is not None:
            self.g.graph["containers"][parent]["children"].append(path)
        return path

    def _add(self, w: Where, name: str, kind: str, attrs: dict, span) -> None:
        """The node with its scope and place (module docstring) written from `w`."""
        self.g.add_node(name, kind=kind, attrs=attrs, span=span,
                        scope={"section": w.section, "block": w.block, "role": w.role},
                        stage=w.stage, unit=w.unit, branch=w.branch, in_branch=w.in_branch, parent=w.seq)

    def node(self, name: str, kind: str, attrs: dict, span, w: Where, *inputs: str, edge: dict | None = None) -> str:
        self._add(w, name, kind, attrs, span)
        if ops.OPS[kind].builds_module:
            self.g.graph["containers"][w.seq]["children"].append(name)
        for port, src in enumerate(inputs):
            self.g.add_edge(src, name, port=port, **(edge or {"kind": "main"}))
        return name

    def seq(self, path: str, parent: str, items: tuple[Item, ...], x: str, w: Where, **info) -> str:
        """A sequence of items as one container (an nn.Sequential)."""
        self.container(path, parent, "sequence", w, role=w.role, **info)
        return self.items(items, x, w._replace(seq=path))

    def items(self, items: tuple[Item, ...], x: str, w: Where) -> str:
        for it in items:
            if isinstance(it, Layer):
                x = self.node(it.name, it.kind, it.attrs, it.span, w, x)
            elif isinstance(it, Parallel):
                x = self.parallel(it, x, w)
            elif isinstance(it, Dataflow):
                x = self.dataflow(it, x, w)
            else:
                x = self.block(it, x, w)
        return x

    def parallel(self, p: Parallel, x: str, w: Where) -> str:
        self.container(p.name, w.seq, "branches", w, mode=p.mode)
        outs = [self.seq(f"{p.name}.{i}", p.name, br, x, w._replace(branch=w.branch or (p.name, i), in_branch=True))
                for i, br in enumerate(p.branches)]
        kind, attrs = ("concat", {}) if p.mode == "concat" else ("add", {"scale": 1.0})
        return self.node(f"{p.name}.merge", kind, attrs, p.span, w, *outs)

    def dataflow(self, d: Dataflow, x: str, w: Where) -> str:
        """Named tensors: each step reads the nodes its inputs name (`x`: the body's input). The
        container's `steps` (child, input tensors, output tensor) and `output` wire its module."""
        self.container(d.name, w.seq, "dataflow", w, role=w.role, output=d.output, steps=[])
        w = w._replace(seq=d.name)
        nodes = {"x": x}
        for step in d.steps:
            ins = [nodes[n] for n in step.inputs]
            it = step.item
            if isinstance(it, Layer):
                nodes[step.output] = self.node(it.name, it.kind, it.attrs, it.span, w, *ins)
            else:
                nodes[step.output] = self.items((it,), ins[0], w)
            shown = step.output.split("%")[0]            # `h%3`: h given again; `%3`: unnamed
            if shown:
                self.g.nodes[nodes[step.output]]["tensor"] = shown
            self.g.graph["containers"][d.name]["steps"].append((it.name, step.inputs, step.output))
        return nodes[d.output]

    def block(self, b: Block, x: str, outer: Where) -> str:
        """Residual unit: y = post(merge(scale * sum_k residual_k(pre(x)), shortcut(x)))."""
        first = self.g.number_of_nodes()
        sc = b.shortcut
        self.g.graph["blocks"][b.name] = {
            "block": b.block, "section": outer.section, "shortcut": sc.kind, "merge": b.merge, "additive": b.additive,
            "scale": b.scale,
            "drop_prob": b.drop_prob, "drop_mode": b.drop_mode, "source": sc.source, "gate_bias": b.gate_bias,
            "shares": b.shares, "share_bn": b.share_bn, "args": b.args, "span": b.span}
        self.container(b.name, outer.seq, "block", outer._replace(branch=None))
        w = outer._replace(block=b.name, unit=outer.unit or (b.name if outer.stage else None), branch=None)
        role = lambda r, **kw: w._replace(role=r, **kw)  # noqa: E731
        a = self.seq(f"{b.name}.pre", b.name, b.pre, x, role("pre")) if b.pre else x
        outs = [self.residual(b, k, r, a, role("residual")) for k, r in enumerate(b.residuals)]
        y = self.merge(b, x, a, outs, role)
        out = self.seq(f"{b.name}.post", b.name, b.post, y, role("post")) if b.post else y
        if b.shares is not None:
            self.mark_shared(list(self.g.nodes)[first:], b)
        return out

    def residual(self, b: Block, k: int, items: tuple[Item, ...], a: str, w: Where) -> str:
        if len(b.residuals) == 1:
            return self.seq(f"{b.name}.residual", b.name, items, a, w)
        return self.seq(f"{b.name}.residuals.{k}", b.name, items, a,
                        w._replace(branch=(f"{b.name}.residuals", k), in_branch=True))

    def merge(self, b: Block, x: str, a: str, outs: list[str], role) -> str:
        """The merge node: add (with scale and drop), concat([x, F(x)]) or highway(F(x), x, T(x))."""
        sc, mode = b.shortcut, MERGE_MODES[b.merge]
        add = {"scale": b.scale, "drop_prob": b.drop_prob, "drop_mode": b.drop_mode}
        if not SHORTCUTS[sc.kind].carries:
            if len(outs) == 1 and b.scale == 1.0 and b.drop_prob == 0:
                return outs[0]
            return self.node(f"{b.name}.add", "add", add, b.span, role("merge"), *outs)
        src = a if sc.source == "pre" else x
        if sc.layers:
            src = self.seq(f"{b.name}.shortcut", b.name, sc.layers, src, role("shortcut"))
        edge = {"kind": "shortcut", "shortcut": mode.drawn or sc.kind}
        name = f"{b.name}.{mode.node}"
        if mode.name == "concat":      # y = concat(x, F(x)): the input comes first
            y = self.node(name, "concat", {}, b.span, role("merge"))
            self.g.add_edge(src, y, port=0, **edge)
            self.g.add_edge(outs[0], y, port=1, kind="main")
        elif mode.name == "gate":      # y = H(x)·T(x) + x·(1 − T(x))
            t = self.seq(f"{b.name}.gate", b.name, b.gate, x, role("gate"))
            y = self.node(name, "highway", {}, b.span, role("merge"), outs[0])
            self.g.add_edge(src, y, port=1, **edge)
            self.g.add_edge(t, y, port=2, kind="main")
        else:
            y = self.node(name, "add", add, b.span, role("merge"), *outs)
            self.g.add_edge(src, y, port=len(outs), **edge)
        return y

    def mark_shared(self, nodes: list[str], b: Block) -> None:
        """Nodes of a weight-sharing block point at the node whose parameters they use."""
        for n in nodes:
            weights = ops.OPS[self.g.nodes[n]["kind"]].weights
            if weights == "trained" or (weights == "norm" and b.share_bn):
                self.g.nodes[n]["shared_from"] = b.shares + n[len(b.name):]

    def build(self, net: Net) -> nx.DiGraph:
        x = "input"
        for part in net.body:
            if isinstance(part, Section):
                self.container(part.name, None, "section", role=part.role)
                y = self.items(part.items, x, Where(part.name, None, None, None, part.role, part.name))
                if part.role == "aux":          # a side output: the network goes on from x
                    self.g.graph["aux"].append({"name": part.name, "output": y, "weight": part.weight})
                else:
                    x = y
                continue
            self.g.graph["stages"].append({"name": part.name, "block": part.block,
                                           "blocks": [b.name for b in part.blocks], "span": part.span})
            self.container(part.name, None, "stage")
            for b in part.blocks:
                x = self.block(b, x, Where(part.name, part.name, None, None, "residual", part.name))
        self.g.graph["output"] = x
        return self.g


def build(net: Net) -> nx.DiGraph:
    return GraphBuilder(net).build(net)
