"""emit_source(model) -> standalone PyTorch source for a compiled network (torch.fx codegen's idea).

The compiled nn.Module tree is walked once: every plain layer becomes its `nn.Conv2d(...)`-style
constructor, every residual block a class of its own per distinct block shape whose `forward`
is the straight-line code of that block (no flags tested at run time), and the network a class
whose `forward` calls stem, stages, transitions and head in order. Module names, and so the
state_dict keys, are those of the compiled model; after `load_state_dict` the outputs are equal
bit for bit. The file imports torch only (resdsl's few custom layers are copied into it).
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from . import layers as L
from . import modules as M
from . import tokens as T
from .pynames import Names, attr
from .unit import forward_lines

# resdsl's own layers, copied into the generated file by their source when used
HELPERS = (M.FlattenLinear, M.ZeroPadShortcut, M.SqueezeExcite, M.CReLU, M.Branches, M.Stage, L.LayerNorm2d,
           L.LayerScale, L.ChannelShuffle, L.ChannelSlice, L.GroupSoftmax, L.ZeroPadChannels, L.Multiply,
           L.SqueezeExcitation, L.CausalConv1d, L.Negate)


def _pair(v):
    """A conv/pool size: `3` for (3, 3) or (3,), else the tuple."""
    if isinstance(v, tuple) and len(v) in (1, 2) and v[0] == v[-1]:
        return v[0]
    return v


def _conv(m: nn.Conv2d | nn.Conv1d) -> str:
    if isinstance(m, L.CausalConv1d):
        return (f"CausalConv1d({m.in_channels}, {m.out_channels}, {m.kernel_size[0]}, {m.stride[0]}, "
                f"{m.dilation[0]}, {m.groups}, {m.bias is not None})")
    args = [str(m.in_channels), str(m.out_channels), f"kernel_size={_pair(m.kernel_size)}"]
    args += [f"{k}={_pair(getattr(m, k))}" for k, d in (("stride", 1), ("padding", 0), ("dilation", 1))
             if _pair(getattr(m, k)) != d]
    args += [f"groups={m.groups}"] * (m.groups != 1) + [f"bias={m.bias is not None}"]
    args += [f"padding_mode={m.padding_mode!r}"] * (m.padding_mode != "zeros")
    return f"nn.{type(m).__name__}({', '.join(args)})"


def _bn(m: nn.BatchNorm2d) -> str:
    args = [str(m.num_features), f"eps={m.eps!r}", f"momentum={m.momentum!r}"]
    args += [f"affine={m.affine}"] * (not m.affine) + [f"track_running_stats={m.track_running_stats}"] * (
        not m.track_running_stats)
    return f"nn.{type(m).__name__}({', '.join(args)})"


def _linear(m: nn.Linear) -> str:
    cls = "FlattenLinear" if isinstance(m, M.FlattenLinear) else "nn.Linear"
    return f"{cls}({m.in_features}, {m.out_features}, bias={m.bias is not None})"


def _maxpool(m: nn.MaxPool2d) -> str:
    return (f"nn.{type(m).__name__}({m.kernel_size!r}, stride={m.stride!r}, padding={m.padding!r}, "
            f"dilation={m.dilation!r}, ceil_mode={m.ceil_mode})")


def _avgpool(m: nn.AvgPool2d) -> str:
    return (f"nn.{type(m).__name__}({m.kernel_size!r}, stride={m.stride!r}, padding={m.padding!r}, ceil_mode={m.ceil_mode}, "
            f"count_include_pad={m.count_include_pad}, divisor_override={m.divisor_override!r})")


def _inplace(cls: str):
    return lambda m: f"nn.{cls}(inplace={m.inplace})"


def _layer_norm(m: L.LayerNorm2d) -> str:
    bias = getattr(m, "bias", None) is not None
    return (f"LayerNorm2d({tuple(m.normalized_shape)!r}, eps={m.eps!r}, elementwise_affine={m.elementwise_affine}"
            + ("" if bias or not m.elementwise_affine else ", bias=False") + ")")


def _layer_scale(m: L.LayerScale) -> str:
    g = m.layer_scale     # the spec's init, not trained γ (which made one class per block)
    init = m.init if hasattr(m, "init") else float(g.detach().flatten()[0])
    return f"LayerScale({g.shape[0]}, {init!r}, spatial={g.dim() - 1})"


def _se(m: L.SqueezeExcitation) -> str:
    """SE with its activation and gate modules written as constructors (both parameter-free)."""
    return (f"SqueezeExcitation({m.fc1.in_channels}, {m.fc1.out_channels}, act={LAYERS[type(m.act)](m.act)}, "
            f"gate={LAYERS[type(m.gate)](m.gate)}, bias={m.fc1.bias is not None})")


# one constructor per layer type (a new layer type is one entry)
LAYERS = {
    nn.ReLU6: _inplace("ReLU6"),
    nn.SiLU: _inplace("SiLU"),
    nn.Hardswish: _inplace("Hardswish"),
    nn.Hardsigmoid: _inplace("Hardsigmoid"),
    nn.GELU: lambda m: f"nn.GELU(approximate={m.approximate!r})",
    nn.Tanh: lambda m: "nn.Tanh()",
    nn.LeakyReLU: lambda m: f"nn.LeakyReLU({m.negative_slope!r}, inplace={m.inplace})",
    nn.GroupNorm: lambda m: f"nn.GroupNorm({m.num_groups}, {m.num_channels}, eps={m.eps!r}, affine={m.affine})",
    L.LayerNorm2d: _layer_norm,
    L.LayerScale: _layer_scale,
    L.ChannelShuffle: lambda m: f"ChannelShuffle({m.groups})",
    L.ChannelSlice: lambda m: f"ChannelSlice({m.start}, {m.stop})",
    L.GroupSoftmax: lambda m: f"GroupSoftmax({m.groups})",
    L.ZeroPadChannels: lambda m: f"ZeroPadChannels({m.extra})",
    L.Multiply: lambda m: "Multiply()",
    L.Negate: lambda m: "Negate()",
    nn.Flatten: lambda m: f"nn.Flatten({m.start_dim}, {m.end_dim})",
    nn.Upsample: lambda m: (f"nn.Upsample(size={m.size!r}, scale_factor={m.scale_factor!r}, mode={m.mode!r}, "
                            f"align_corners={m.align_corners!r})"),
    L.SqueezeExcitation: _se,
    nn.Conv2d: _conv,
    nn.BatchNorm2d: _bn,
    nn.Linear: _linear,
    M.FlattenLinear: _linear,
    nn.ReLU: lambda m: f"nn.ReLU(inplace={m.inplace})",
    nn.Sigmoid: lambda m: "nn.Sigmoid()",
    nn.Identity: lambda m: "nn.Identity()",
    nn.MaxPool2d: _maxpool,
    nn.AvgPool2d: _avgpool,
    nn.AdaptiveAvgPool2d: lambda m: f"nn.AdaptiveAvgPool2d({m.output_size!r})",
    nn.Conv1d: _conv,                  # sequences (C×L)
    L.CausalConv1d: _conv,
    nn.BatchNorm1d: _bn,
    nn.MaxPool1d: _maxpool,
    nn.AvgPool1d: lambda m: (f"nn.AvgPool1d({m.kernel_size!r}, stride={m.stride!r}, padding={m.padding!r}, "
                             f"ceil_mode={m.ceil_mode}, count_include_pad={m.count_include_pad})"),
    nn.AdaptiveAvgPool1d: lambda m: f"nn.AdaptiveAvgPool1d({m.output_size!r})",
    nn.Dropout: lambda m: f"nn.Dropout(p={m.p!r}, inplace={m.inplace})",
    M.ZeroPadShortcut: lambda m: f"ZeroPadShortcut({m.stride}, {m.extra_channels})",
    M.SqueezeExcite: lambda m: f"SqueezeExcite({m.fc1.in_channels}, {m.fc1.out_channels}, "
                               f"bias={m.fc1.bias is not None})",
    M.CReLU: lambda m: "CReLU()",
}


class Emitter:
    def __init__(self, block_names: dict[str, str] | None = None):
        self.classes: dict[str, str] = {}     # class source -> class name (one per block shape)
        self.block_names = block_names or {}  # module path -> block definition name (from the Net)
        self.helpers: set[type] = set()
        self.own: dict[type, None] = {}       # layers with a `source_ctor`, copied in first-use order
        self.seen: dict[int, str] = {}        # id(module) -> first path (shared weights)
        self.ties: list[tuple[str, str]] = []

    def ctor(self, m: nn.Module, path: str, indent: int) -> str:
        """The expression that builds `m` (at `path` in the network)."""
        if id(m) in self.seen and not isinstance(m, (nn.ReLU, nn.Sigmoid, M.CReLU)):
            self.ties.append((path, self.seen[id(m)]))
        self.seen.setdefault(id(m), path)
        if type(m) in HELPERS or type(m) in T.SOURCE:
            self.helpers.add(type(m))
        if type(m) in T.SOURCE:
            return T.SOURCE[type(m)](m)
        if type(m) in LAYERS:
            return LAYERS[type(m)](m)
        if isinstance(m, M.ResidualBlock):
            return self.block_class(m, path) + "()"
        if isinstance(m, M.Dataflow):
            return self.flow_class(m, path) + "()"
        if isinstance(m, M.Stage):
            return "Stage([" + self.children(list(m.blocks.named_children()), path + ".blocks", indent) + "])"
        if isinstance(m, M.Branches):
            return ("Branches([" + self.children(list(m.named_children()), path, indent)
                    + f"], mode={m.mode!r})")
        if isinstance(m, nn.Sequential):
            kids = list(m.named_children())
            if all(k == str(i) for i, (k, _) in enumerate(kids)):
                return "nn.Sequential(" + self.children(kids, path, indent) + ")"
            return "nn.Sequential(OrderedDict([" + self.children(kids, path, indent, named=True) + "]))"
        if isinstance(m, nn.ModuleList):
            return "nn.ModuleList([" + self.children(list(m.named_children()), path, indent) + "])"
        if hasattr(m, "source_ctor"):        # a layer that writes its own constructor (backend/layers_cnn.py)
            self.own.setdefault(type(m), None)
            return m.source_ctor(lambda child, name: self.ctor(child, f"{path}.{name}", indent))
        raise TypeError(f"emit_source: no source form for {type(m).__name__} at '{path}'")

    def children(self, kids, path: str, indent: int, named: bool = False) -> str:
        pad = "    " * (indent + 1)
        parts = []
        for k, c in kids:
            expr = self.ctor(c, f"{path}.{k}", indent + 1)
            parts.append(f"({k!r}, {expr})" if named else expr)
        if sum(len(p) + 2 for p in parts) < 80 and all("\n" not in p for p in parts):
            return ", ".join(parts)
        return "\n" + "".join(f"{pad}{p},\n" for p in parts) + "    " * indent

    def block_class(self, b: M.ResidualBlock, path: str) -> str:
        """One class per distinct block: its submodules in __init__ and its straight-line forward."""
        init = []
        for attr in ("pre", "residual", "residuals", "shortcut", "gate", "post"):
            sub = getattr(b, attr)
            if sub is not None:
                init.append(f"        self.{attr} = {self.ctor(sub, f'{path}.{attr}', 2)}")
        body = "\n".join(init) + "\n\n    def forward(self, x):\n" + "\n".join(
            "        " + ln for ln in block_forward(b))
        if body not in self.classes:
            base = _camel(self.block_names.get(path, "block"))
            taken = set(self.classes.values())
            self.classes[body] = next(n for k in range(1, len(taken) + 2)
                                      if (n := base + (str(k) if k > 1 or base == "Block" else "")) not in taken)
        return self.classes[body]


    def flow_class(self, d: M.Dataflow, path: str) -> str:
        """A dataflow body as a class: its modules in __init__, one line per step in forward."""
        init = [f"        {attr(name)} = {self.ctor(m, f'{path}.{name}', 2)}" for name, m in d.named_children()]
        body = "\n".join(init) + "\n\n    def forward(self, x):\n" + "\n".join(
            "        " + ln for ln in flow_forward(d))
        if body not in self.classes:
            taken = set(self.classes.values())
            self.classes[body] = next(n for k in range(1, len(taken) + 2)
                                      if (n := "Flow" + (str(k) if k > 1 else "")) not in taken)
        return self.classes[body]


def flow_forward(d: M.Dataflow) -> list[str]:
    """The lines of a dataflow body's forward, the same operations in the same order as Dataflow.
    Tensor names become variables through one allocator (backend/pynames.py): distinct by construction."""
    lines = []
    _var = Names(fixed={"x": "x"})
    for name, merge, inputs, out in d.wiring:
        args = [_var(i) for i in inputs]
        if merge is None:
            expr = f"{attr(name)}({', '.join(args)})"
        elif merge == "concat":
            expr = f"torch.cat([{', '.join(args)}], 1)"
        else:
            expr = {"add": " + ", "mul": " * ", "sub": " - "}[merge].join(args)
        lines.append(f"{_var(out)} = {expr}")
    return lines + [f"return {_var(d.output)}"]


_RESERVED = {"Network", "OrderedDict", *(h.__name__ for h in HELPERS)}


def _camel(name: str) -> str:
    """`preact_bottleneck` -> `PreactBottleneck` (a name the helpers or torch use gets `Block` added)."""
    out = "".join(w[:1].upper() + w[1:] for w in name.split("_") if w) or "Block"
    return out + "Block" if out in _RESERVED or not out.isidentifier() else out


def block_forward(b: M.ResidualBlock) -> list[str]:
    """The lines of one block's forward: the very code ResidualBlock runs (unit.py)."""
    return forward_lines(b.unit, b.parts())


def _attr_path(path: str) -> str:
    """`stages.0.blocks.1.residual.conv1` -> `self.stages[0].blocks[1].residual.conv1`."""
    return "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path.split("."))


def emit_source(model: M.Network, net=None) -> str:
    """Standalone PyTorch source of a compiled network: classes, a Network, and `build()`.
    With the explicit net it was compiled from, block classes are named after their definitions."""
    names = {b.name: b.block for st in net.stages for b in st.blocks} if net is not None else {}
    e = Emitter(names)
    init = [f"        self.stem = {e.ctor(model.stem, 'stem', 2)}",
            f"        self.stages = {e.ctor(model.stages, 'stages', 2)}"]
    if len(model.transitions):
        init.append(f"        self.transitions = {e.ctor(model.transitions, 'transitions', 2)}")
    init.append(f"        self.head = {e.ctor(model.head, 'head', 2)}")
    aux = list(getattr(model, "aux", ()))
    if aux:                                   # auxiliary classifiers: side outputs in training only
        init.append(f"        self.aux = {e.ctor(model.aux, 'aux', 2)}")
        init.append(f"        self.aux_weights = {model.aux_weights!r}")
    init += [f"        {_attr_path(dst)} = {_attr_path(src)}  # shared weights" for dst, src in e.ties]
    fwd = ["        x = self.stem(x)"] + ["        aux = []"] * bool(aux)
    for m in model._body:
        if any(m is a for a in aux):
            i = next(i for i, a in enumerate(aux) if a is m)
            fwd.append(f"        if self.training:\n            aux.append(self.aux[{i}](x))")
            continue
        kind = "stages" if any(m is s for s in model.stages) else "transitions"
        i = next(i for i, s in enumerate(getattr(model, kind)) if s is m)
        fwd.append(f"        x = self.{kind}[{i}](x)")
    fwd += ["        if self.training:\n            self.aux_outputs = aux"] * bool(aux)
    fwd.append("        return self.head(x)")
    out = [_HEADER.format(name=model.spec_name, shape=tuple(model.input_shape), torch=torch.__version__)]
    out += [inspect.getsource(h) for h in HELPERS if h in e.helpers] + [inspect.getsource(h) for h in e.own]
    if e.helpers & set(T.SOURCE):           # token modules: their helper functions and classes
        out += [inspect.getsource(h) for h in T.HELPERS if h in e.helpers or not isinstance(h, type)]
    for body, name in e.classes.items():
        out.append(f"class {name}(nn.Module):\n    def __init__(self):\n        super().__init__()\n{body}\n")
    out.append(f"class Network(nn.Module):\n    \"\"\"{model.spec_name}, input {tuple(model.input_shape)}.\"\"\"\n\n"
               "    def __init__(self):\n        super().__init__()\n" + "\n".join(init)
               + "\n\n    def forward(self, x):\n" + "\n".join(fwd) + "\n")
    out.append(_FOOTER)
    return "\n\n\n".join(s.rstrip("\n") for s in out) + "\n"


_HEADER = '''"""{name}: standalone PyTorch source written by `resdsl compile -o FILE.py` (torch {torch}).

No resdsl needed: `model = build(); model.load_state_dict(state)`; input shape {shape}.
Module names (state_dict keys) are those of resdsl.compile; weights are PyTorch's default init.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SHAPE = {shape}'''

_FOOTER = '''def build() -> Network:
    """The network, with PyTorch's default initialisation (load a state_dict for trained weights)."""
    return Network()'''
