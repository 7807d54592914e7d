"""Fine-tuning a zoo net: another input size (the shape check runs again), weights through
torchvision's or timm's own loaders transferred by structure, and a partial transfer that says
what it copied, skipped and found shape-mismatched (everything but the classifier, typically).

    model = resdsl.compile("resnet50", input_size=32, classes=10, weights="DEFAULT")
    print(model.transfer_report)      # copied 160 tensors ..., shape-mismatched: head.fc1 (1000 -> 10)

The head is replaceable as torchvision users expect (`model.head.fc1 = nn.Linear(2048, 10)`), or
with timm's `model.reset_classifier(10)`; `resdsl.features(model, ["stages.2", "stages.3"])` gives
intermediate feature maps by stage name; `model.freeze(["stem", "stages.0"])` freezes by stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from resdsl.errors import SpecError


def parse_input_size(size, channels: int) -> tuple[int, ...]:
    """`32`, `(32, 32)`, `"32x32"` or `"3x32x32"` as a (C, H, W) shape (C from the spec when not given)."""
    if isinstance(size, str):
        try:
            parts = tuple(int(p) for p in size.lower().replace("×", "x").split("x"))
        except ValueError:
            raise SpecError(f"input size expects S, HxW or CxHxW (e.g. 32 or 3x32x32), got '{size}'") from None
    elif isinstance(size, int):
        parts = (size,)
    else:
        parts = tuple(int(p) for p in size)
    if len(parts) == 1:
        parts = (parts[0], parts[0])
    if len(parts) == 2:
        parts = (channels, *parts)
    if len(parts) != 3 or min(parts) < 1 or max(parts) > 1 << 16:
        raise SpecError(f"input size expects S, HxW or CxHxW with sizes 1..65536, got '{size}'")
    return parts


def with_input_size(net, size):
    """The lowered net taking `size` images instead of its spec's; shapes are inferred again by
    the caller (api.graph_of), so a map that would shrink to nothing is a located error."""
    shape = tuple(net.input_shape)
    if len(shape) != 3:
        raise SpecError(f"input size: network '{net.name}' takes {'x'.join(map(str, shape))} inputs, not images",
                        net.span)
    return net.model_copy(update={"input_shape": parse_input_size(size, shape[0])})


@dataclass
class PartialReport:
    """What a partial transfer did, module by module (destination names)."""

    copied: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str]] = field(default_factory=list)   # (dst module, "src shape -> dst shape")
    skipped: list[str] = field(default_factory=list)                  # dst modules with no counterpart
    unused: list[str] = field(default_factory=list)                   # src modules left over
    tensors: int = 0
    source: str = ""

    def __str__(self) -> str:
        lines = [f"weights{' from ' + self.source if self.source else ''}: copied {self.tensors} tensors in "
                 f"{len(self.copied)} modules; {len(self.mismatched)} shape-mismatched, {len(self.skipped)} skipped "
                 f"(kept at init), {len(self.unused)} unused in the source"]
        lines += [f"  shape mismatch {n}: {why}" for n, why in self.mismatched[:10]]
        if self.skipped:
            lines.append("  skipped: " + ", ".join(self.skipped[:10]) + (" ..." if len(self.skipped) > 10 else ""))
        return "\n".join(lines)


def _shapes(m: nn.Module) -> list[tuple[str, tuple]]:
    from resdsl.backend.transfer import _tensors

    return [(n, tuple(t.shape)) for n, t in _tensors(m)]


def transfer_partial(src: nn.Module, dst: nn.Module, source: str = "") -> PartialReport:
    """Copy what fits from `src` into `dst`: their weighted modules paired in registration order
    (transfer.weighted_leaves, as transfer_weights pairs them); a pair of one kind with the same
    tensor shapes is copied, one with other shapes (a 1000-class classifier into a 10-class one)
    is reported and left at init. At the first pair of different kinds the structures part:
    everything after it is skipped (reported), never copied into the wrong layer."""
    from resdsl.backend.transfer import _category, _tensors, weighted_leaves

    a, b = weighted_leaves(src), weighted_leaves(dst)
    report = PartialReport(source=source)
    apart = False
    with torch.no_grad():
        for i, (dname, dm) in enumerate(b):
            if apart or i >= len(a):
                report.skipped.append(dname)
                continue
            sname, sm = a[i]
            if _category(sm) != _category(dm):
                apart = True
                report.skipped.append(dname)
                continue
            if _shapes(sm) != _shapes(dm):
                why = ", ".join(f"{n} {list(s)} -> {list(t)}" for (n, s), (_, t) in zip(_shapes(sm), _shapes(dm)) if s != t)
                report.mismatched.append((dname, why or "different tensors"))
                continue
            for (_, s), (_, d) in zip(_tensors(sm), _tensors(dm)):
                d.copy_(s.to(d.dtype))
                report.tensors += 1
            report.copied.append(dname)
    report.unused = [n for n, _ in a[len(b):]] + ([n for n, _ in a[len(report.copied) + len(report.mismatched):]]
                                                   if apart else [])
    return report


def source_model(name: str, weights="DEFAULT") -> nn.Module:
    """A pretrained model through its library's own loader: `torchvision:NAME`, `timm:NAME`, or a
    plain NAME (torchvision first, then timm). The loaders download and cache on a user's machine."""
    lib, _, model = name.partition(":") if ":" in name else ("", "", name)
    if lib not in ("", "torchvision", "timm"):
        raise SpecError(f"pretrained weights come from torchvision:NAME or timm:NAME, not '{lib}:'")
    if lib in ("", "torchvision"):
        import torchvision

        if model in torchvision.models.list_models() or lib == "torchvision":
            try:
                return torchvision.models.get_model(model, weights=weights)
            except (ValueError, KeyError) as e:
                raise SpecError(f"torchvision has no weights {weights!r} for '{model}': {e}") from None
    try:
        import timm
    except ImportError:
        raise SpecError(f"'{model}' is not a torchvision model and timm is not installed") from None
    try:
        return timm.create_model(model, pretrained=True)
    except RuntimeError as e:
        raise SpecError(f"timm cannot load pretrained '{model}': {e}") from None


def load_pretrained(model: nn.Module, name: str, weights="DEFAULT") -> PartialReport:
    """Weights of the pretrained `name` in `model`, by structure: all of them when the structures
    agree (transfer_weights), else what fits (transfer_partial); the report is also kept on the
    model as `model.transfer_report`."""
    from resdsl.backend.transfer import TransferError, transfer_weights

    src = source_model(name, weights)
    try:
        full = transfer_weights(src, model)
        report = PartialReport(copied=[d for _, d in full.pairs], tensors=full.tensors, source=name)
    except TransferError:
        report = transfer_partial(src, model, name)
        if not report.copied:
            raise SpecError(f"no layer of pretrained '{name}' fits this network\n{report}") from None
    model.transfer_report = report
    return report


class FeatureNet(nn.Module):
    """The outputs of the named parts of a Network (`stem`, `stages.i`, `transitions.i`), in
    execution order, as timm's features_only models return them: a list of tensors."""

    def __init__(self, model: nn.Module, names=None):
        super().__init__()
        parts = dict(model.named_parts())
        names = list(names) if names is not None else [n for n in parts if n.startswith("stages.")]
        unknown = [n for n in names if n not in parts or n == "head"]
        if unknown:
            raise SpecError(f"features: no part named {', '.join(unknown)}; the parts are "
                            f"{', '.join(n for n in parts if n != 'head')}")
        order = [n for n in parts if n != "head"]
        self.names = sorted(names, key=order.index)
        self.model = model
        self.last = order.index(self.names[-1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, (name, m) in enumerate(self.model.named_parts()):
            if i > self.last:
                break
            x = m(x)
            if name in self.names:
                out.append(x)
        return out


def features(model: nn.Module, names=None) -> FeatureNet:
    return FeatureNet(model, names)
