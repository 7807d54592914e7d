"""The nn.Modules a compiled network is made of: plain PyTorch, nothing resdsl-specific at run time."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .unit import Parts, Unit, compiled_forward


class FlattenLinear(nn.Linear):
    """A Linear layer that flattens a C×1×1 input first (keeps the name `fc1`, no extra module)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight, self.bias)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut (He et al. 2015): subsample by `stride`, pad the new channels with zeros."""

    def __init__(self, stride: int, extra_channels: int):
        super().__init__()
        self.stride, self.extra_channels = stride, extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:                  # every spatial axis (H, W or L)
            x = x[(slice(None), slice(None)) + (slice(None, None, self.stride),) * (x.dim() - 2)]
        return F.pad(x, (0, 0) * (x.dim() - 2) + (0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al.): y = x · σ(fc2(relu(fc1(mean_hw(x))))), fcs as 1×1 convs."""

    def __init__(self, channels: int, reduced: int, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=bias)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc2(self.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * s.sigmoid()


class CReLU(nn.Module):
    """Concatenated ReLU (Shang et al.; Balduzzi et al.'s looks-linear nets): [relu(x), relu(−x)]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((F.relu(x), F.relu(-x)), 1)


class Branches(nn.ModuleList):
    """Parallel branches on one input, merged by channel concatenation or sum."""

    def __init__(self, branches: list[nn.Module], mode: str):
        super().__init__(branches)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self]
        if self.mode == "concat":
            return torch.cat(outs, 1)
        y = outs[0]
        for o in outs[1:]:
            y = y + o
        return y

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


def merged(kind: str, xs: list[torch.Tensor]) -> torch.Tensor:
    """A merge of a dataflow body: sum, channel concatenation, (broadcast) product or difference."""
    if kind == "concat":
        return torch.cat(xs, 1)
    if kind == "sub":
        return xs[0] - xs[1]
    y = xs[0]
    for x in xs[1:]:
        y = y + x if kind == "add" else y * x
    return y


class Dataflow(nn.Module):
    """A body with named tensors: each step runs a module (or a merge) on the tensors it names and
    names its result; `x` is the body's input. Modules are registered in step order, so the
    state_dict reads as a sequence's (`residual.flow.conv1`)."""

    def __init__(self, steps: list[tuple[str, nn.Module | str, tuple[str, ...], str]], output: str):
        super().__init__()
        self.wiring = []
        for name, m, inputs, out in steps:
            if isinstance(m, nn.Module):
                self.add_module(name, m)
                self.wiring.append((name, None, tuple(inputs), out))
            else:
                self.wiring.append((name, m, tuple(inputs), out))
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tensors = {"x": x}
        for name, merge, inputs, out in self.wiring:
            ins = [tensors[i] for i in inputs]
            tensors[out] = merged(merge, ins) if merge is not None else self._modules[name](*ins)
        return tensors[self.output]

    def extra_repr(self) -> str:
        return "; ".join(f"{out} = {merge or name}({', '.join(ins)})" for name, merge, ins, out in self.wiring)


class ResidualBlock(nn.Module):
    """Residual unit: y = post(merge(scale · sum_k residual_k(pre(x)), shortcut(x))).

    What it does is its record `unit` (unit.py: merge, scale, stochastic depth, ...); its forward
    is `unit.forward_lines`, the code `resdsl compile -o model.py` prints, compiled once per distinct
    unit and rebuilt whenever the record or a part is replaced (as `fuse` does).
    """

    PARTS = ("pre", "residual", "residuals", "shortcut", "gate", "post")

    def __init__(self, unit: Unit, residuals: list[nn.Module], pre: nn.Module | None = None,
                 shortcut: nn.Module | None = None, gate: nn.Module | None = None, post: nn.Module | None = None):
        super().__init__()
        self.pre = pre
        if len(residuals) == 1:
            self.residual, self.residuals = residuals[0], None
        else:
            self.residual, self.residuals = None, nn.ModuleList(residuals)
        self.shortcut = shortcut
        self.gate = gate
        self.post = post
        self.unit = unit

    # The record's facts, read-only (ResidualBlock.scale and .drop_prob were attributes before the
    # record; to change one, replace the record: `block.unit = dataclasses.replace(block.unit, scale=s)`)
    scale = property(lambda self: self.unit.scale, doc="The residual's scale s in y = s·F(x) + x.")
    drop_prob = property(lambda self: self.unit.drop_prob, doc="Stochastic depth: the probability of dropping F.")
    drop_mode = property(lambda self: self.unit.drop_mode, doc="Stochastic depth mode: batch or sample.")
    merge = property(lambda self: self.unit.merge, doc="How residual and shortcut are joined (ir/kinds.py MERGE_MODES).")

    def parts(self) -> Parts:
        return Parts(self.pre is not None, self.shortcut is not None,
                     None if self.residuals is None else len(self.residuals), self.post is not None)

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if (name == "unit" or name in self.PARTS) and "unit" in self.__dict__:
            self.__dict__["_forward"] = compiled_forward(self.unit, self.parts())

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_forward", None)                # a generated function: rebuilt on load
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__["_forward"] = compiled_forward(self.unit, self.parts())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(self, x)

    def extra_repr(self) -> str:
        return self.unit.describe()


class Stage(nn.Module):
    """A stage: its blocks in order (`stages.{i}.blocks.{j}`)."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class SourceGraph:
    """The annotated graph a Network was compiled from (`model.source_graph`; `fuse` rewrites it):
    shared, not copied, by copy.deepcopy (a graph is not changed in place after shape inference).
    `outputs`: nodes given another output count since (reset_classifier), applied by `fuse`."""

    __slots__ = ("g", "outputs")

    def __init__(self, g, outputs: dict[str, int] | None = None):
        self.g, self.outputs = g, dict(outputs or {})

    def __deepcopy__(self, memo) -> "SourceGraph":
        return self

    def __repr__(self) -> str:
        return f"SourceGraph({self.g.graph.get('name')!r}, {self.g.number_of_nodes()} nodes)"


class Network(nn.Module):
    """A compiled resdsl network: stem, stages (and transitions between them), head."""

    def __init__(self, name: str, input_shape: tuple[int, ...], num_classes: int, stem: nn.Module,
                 body: list[tuple[str, nn.Module]], head: nn.Module, aux_weights: list[float] = ()):
        super().__init__()
        self.spec_name, self.input_shape, self.num_classes = name, tuple(input_shape), num_classes
        self.stem = stem
        self.stages = nn.ModuleList([m for kind, m in body if kind == "stage"])
        self.transitions = nn.ModuleList([m for kind, m in body if kind == "transition"])
        self.head = head
        self._body = [m for kind, m in body if kind != "aux"]     # execution order; registered above
        if aux_weights:                       # auxiliary classifiers (`aux`): side outputs in training
            self.aux = nn.ModuleList([m for kind, m in body if kind == "aux"])
            self.aux_weights = list(aux_weights)
            self.aux_outputs: list[torch.Tensor] = []
            self._body = [m for _, m in body]

        self._names = [f"{kind}s.{[k for k, _ in body[:i]].count(kind)}" for i, (kind, _) in enumerate(body)]
        self.frozen: tuple[str, ...] = ()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if hasattr(self, "aux"):
            return self._with_aux(x)
        for m in self._body:
            x = m(x)
        return x

    def _with_aux(self, x: torch.Tensor) -> torch.Tensor:
        """The body with its aux heads: in training each one's output goes to `aux_outputs` (in
        order; `train` adds weight · its loss); in eval mode they do not run (torchvision's rule)."""
        outs = []
        for m in self._body:
            if any(m is a for a in self.aux):
                if self.training:
                    outs.append(m(x))
            else:
                x = m(x)
        if self.training:
            self.aux_outputs = outs
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        if not isinstance(self.head, nn.Sequential):
            return self.head(x)
        for m in self.head:      # a plain nn.Linear put in place of the head's linear takes the pooled map flat
            if type(m) is nn.Linear and x.dim() > 2 and x.shape[2:].numel() == 1:
                x = x.flatten(1)
            x = m(x)
        return x

    # -- fine-tuning (backend/finetune.py) -----------------------------------------------------
    def named_parts(self) -> list[tuple[str, nn.Module]]:
        """stem, stages.i and transitions.i in execution order, then head."""
        return [("stem", self.stem), *zip(self._names, self._body), ("head", self.head)]

    def get_classifier(self) -> nn.Module | None:
        """The head's last linear layer (timm's name for it)."""
        return next((m for m in reversed(list(self.head.modules())) if isinstance(m, nn.Linear)), None)

    def reset_classifier(self, num_classes: int) -> None:
        """A new, freshly initialised last linear layer with `num_classes` outputs (as timm's)."""
        old = self.get_classifier()
        if old is None:
            raise ValueError(f"network '{self.spec_name}' has no linear classifier in its head")
        name = next(n for n, m in self.head.named_modules() if m is old)
        parent, _, leaf = name.rpartition(".")
        new = type(old)(old.in_features, num_classes, bias=old.bias is not None).to(old.weight.device, old.weight.dtype)
        setattr(self.head.get_submodule(parent) if parent else self.head, leaf, new)
        self.num_classes = num_classes
        source = getattr(self, "source_graph", None)
        if source is not None:                     # the graph's classifier has new outputs too (`fuse` reads it)
            self.source_graph = SourceGraph(source.g, {**source.outputs, f"head.{name}": num_classes})

    def freeze(self, names) -> None:
        """No gradient for the named parts (stem, stages.i, ...) and their batch norms kept in eval mode."""
        parts = dict(self.named_parts())
        unknown = [n for n in names if n not in parts]
        if unknown:
            raise ValueError(f"freeze: no part named {', '.join(unknown)}; the parts are {', '.join(parts)}")
        for n in names:
            for p in parts[n].parameters():
                p.requires_grad_(False)
        self.frozen = tuple(dict.fromkeys((*self.frozen, *names)))
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        parts = dict(self.named_parts()) if self.frozen else {}
        for n in self.frozen:
            parts[n].eval()
        return self
