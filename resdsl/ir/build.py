"""build(net) -> networkx.DiGraph of primitive ops, one node per op, named by module path.

Node attributes: kind, attrs, scope (section, block, role), span; infer_shapes adds
in_shapes, out_shape, params, macs. Edge attributes: kind ("main" or "shortcut"),
shortcut (the shortcut kind, on shortcut edges), port (input position, for concat).
Graph attributes: name, input_shape, params (network parameters), output (last node),
stages (name, block, blocks), blocks (name -> block, section, shortcut kind, combine, scale,
drop_prob, shares, args, span). A node of a weight-sharing block has `shared_from` (the node
whose parameters it uses) and counts no parameters of its own.
"""
from __future__ import annotations

import networkx as nx

from .net import Block, Dataflow, Item, Layer, Net, Parallel, Section


class GraphBuilder:
    def __init__(self, net: Net):
        self.g = nx.DiGraph(name=net.name, input_shape=net.input_shape, params=dict(net.params),
                            stages=[], blocks={})
        self.g.add_node("input", kind="input", attrs={}, scope={"section": "input", "block": None, "role": "input"},
                        span=net.span)

    def node(self, name: str, kind: str, attrs: dict, span, scope: dict, *inputs: str, edge: dict | None = None) -> str:
        self.g.add_node(name, kind=kind, attrs=attrs, scope=scope, span=span)
        for port, src in enumerate(inputs):
            self.g.add_edge(src, name, port=port, **(edge or {"kind": "main"}))
        return name

    def items(self, items: tuple[Item, ...], x: str, scope: dict) -> str:
        for it in items:
            if isinstance(it, Layer):
                x = self.node(it.name, it.kind, it.attrs, it.span, scope, x)
            elif isinstance(it, Parallel):
                outs = [self.items(br, x, scope) for br in it.branches]
                x = self.node(f"{it.name}.merge", "concat" if it.mode == "concat" else "add",
                              {} if it.mode == "concat" else {"scale": 1.0}, it.span, scope, *outs)
            elif isinstance(it, Dataflow):
                x = self.dataflow(it, x, scope)
            else:
                x = self.block(it, x, scope["section"])
        return x

    def dataflow(self, d: Dataflow, x: str, scope: dict) -> str:
        """Named tensors: each step reads the nodes its input names stand for (`x`: the input)."""
        nodes = {"x": x}
        for step in d.steps:
            ins = [nodes[n] for n in step.inputs]
            if isinstance(step.item, Layer):
                nodes[step.output] = self.node(step.item.name, step.item.kind, step.item.attrs, step.item.span,
                                               scope, *ins)
            else:
                nodes[step.output] = self.items((step.item,), ins[0], scope)
        return nodes[d.output]

    def block(self, b: Block, x: str, section: str) -> str:
        """Residual unit: y = post(merge(scale * sum_k residual_k(pre(x)), shortcut(x)))."""
        scope = lambda role: {"section": section, "block": b.name, "role": role}  # noqa: E731
        first = self.g.number_of_nodes()
        self.g.graph["blocks"][b.name] = {"block": b.block, "section": section, "shortcut": b.shortcut.kind,
                                          "combine": b.combine, "scale": b.scale, "drop_prob": b.drop_prob,
                                          "shares": b.shares, "args": b.args, "span": b.span}
        a = self.items(b.pre, x, scope("pre"))
        outs = [self.items(r, a, scope("residual")) for r in b.residuals]
        sc = b.shortcut
        merge_attrs = {"scale": b.scale, "drop_prob": b.drop_prob, "drop_mode": b.drop_mode}
        if sc.kind == "none" and len(outs) == 1 and b.scale == 1.0 and b.drop_prob == 0:
            y = outs[0]
        elif sc.kind == "none":
            y = self.node(f"{b.name}.add", "add", merge_attrs, b.span, scope("merge"), *outs)
        else:
            src = self.items(sc.layers, a if sc.source == "pre" else x, scope("shortcut"))
            edge = {"kind": "shortcut", "shortcut": {"add": sc.kind, "gate": "gated", "concat": "concat"}[b.combine]}
            if b.combine == "concat":      # y = concat(x, F(x)): the input comes first
                y = self.node(f"{b.name}.concat", "concat", {}, b.span, scope("merge"))
                self.g.add_edge(src, y, port=0, **edge)
                self.g.add_edge(outs[0], y, port=1, kind="main")
            elif b.combine == "gate":      # y = H(x)·T(x) + x·(1 − T(x))
                t = self.items(b.gate, x, scope("gate"))
                y = self.node(f"{b.name}.highway", "highway", {}, b.span, scope("merge"), outs[0])
                self.g.add_edge(src, y, port=1, **edge)
                self.g.add_edge(t, y, port=2, kind="main")
            else:
                y = self.node(f"{b.name}.add", "add", merge_attrs, b.span, scope("merge"), *outs)
                self.g.add_edge(src, y, port=len(outs), **edge)
        out = self.items(b.post, y, scope("post"))
        if b.shares is not None:
            self.mark_shared(list(self.g.nodes)[first:], b)
        return out

    def mark_shared(self, nodes: list[str], b: Block) -> None:
        """Nodes of a weight-sharing block point at the node whose parameters they use."""
        for n in nodes:
            kind = self.g.nodes[n]["kind"]
            if kind in ("conv", "fc", "se") or (kind == "bn" and b.share_bn):
                self.g.nodes[n]["shared_from"] = b.shares + n[len(b.name):]

    def build(self, net: Net) -> nx.DiGraph:
        x = "input"
        for part in net.body:
            if isinstance(part, Section):
                x = self.items(part.items, x, {"section": part.name, "block": None, "role": part.role})
            else:
                self.g.graph["stages"].append({"name": part.name, "block": part.block,
                                               "blocks": [b.name for b in part.blocks], "span": part.span})
                for b in part.blocks:
                    x = self.block(b, x, part.name)
        self.g.graph["output"] = x
        return self.g


def build(net: Net) -> nx.DiGraph:
    return GraphBuilder(net).build(net)
