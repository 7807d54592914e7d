"""Memory from the graph: parameters at a precision and training activations at a batch size.

Convention for activations (stated once, here): the training graph keeps every op's output
until the backward pass reaches it, so activation memory = batch × Σ over ops of the output's
element count × bytes per element (the input image is not counted). That is what an un-fused
framework without in-place ops stores; PyTorch's in-place ReLU and the adds that reuse a
buffer make the real figure lower, recomputation (checkpointing) much lower. Gradients and
optimizer state are not activations and are not included.
"""
from __future__ import annotations

import math
from typing import Iterable

import networkx as nx

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


def activation_elements(g: nx.DiGraph, nodes: Iterable[str]) -> int:
    """Elements of one sample's op outputs among `nodes` (see the module docstring)."""
    return sum(math.prod(g.nodes[n]["out_shape"]) for n in nodes if g.nodes[n]["kind"] != "input")


def activation_bytes(g: nx.DiGraph, nodes: Iterable[str], batch_size: int, precision: str = "fp32") -> int:
    return activation_elements(g, nodes) * batch_size * BYTES[precision]


def parameter_bytes(params: int, precision: str = "fp32") -> int:
    return params * BYTES[precision]
