"""transfer_weights(src, dst): copy parameters and buffers between models that compute the same net.

How modules are matched (docs/language.md, "Transferring weights"):

1. Each side is cut into its *weighted leaves*: the modules that own tensors (conv, bn, linear,
   layer scale, ...). A leaf's signature is its kind and the shape of every tensor it owns; kinds
   are base classes, so a subclass whose parameters mean the same (timm's `GroupNorm1` is an
   `nn.GroupNorm`, its `LayerNorm2d` an `nn.LayerNorm`, `ScaledStdConv2d` an `nn.Conv2d`) is
   the same kind. Names never have to match.
2. **By structure** (when an input shape is known: `input_shape=`, else the resdsl model's own):
   one forward pass of each model at that shape records which leaf's output reaches which leaf
   (a dataflow graph over leaves, through every functional op in between). The leaves are
   then listed in a canonical topological order: among the leaves ready at a point, the one
   with the smallest signature (kind, shapes, stride, dilation, groups) comes first, so the
   order in which either model registers or runs independent siblings (a shortcut before or
   after the residual) does not matter. Two ready leaves with equal signatures cannot be told
   apart by structure; they keep their forward order, and the report counts them as ties.
3. If the two structural lists do not line up, registration order, forward order and the two
   mixed orders are tried, in that order (the report says which one matched).

`match_in_order` and `tensor_pairs` are the one order matcher: `train --init` (train/warmstart.py)
uses them to pair a state dict's modules with a model's.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch
import torch.utils._pytree
from torch import nn

from .transfer_tokens import DERIVED, LearnedTensor, attention_category, split_free, unpack_attention


class TransferError(ValueError):
    """The two models differ in structure, or one cannot run; the message says where."""


@dataclass
class Leaf:
    """A module that owns tensors, or (from a state dict) a key prefix and its tensors."""
    name: str
    tensors: list[tuple[str, torch.Tensor]]
    module: nn.Module | None = None


@dataclass
class TransferReport:
    """What transfer_weights did: the module pairs (src name, dst name), counts, the order that
    matched, the ties structure could not decide, and (strict=False) the leaves left out."""
    pairs: list[tuple[str, str]] = field(default_factory=list)
    tensors: int = 0
    elements: int = 0
    order: str = "registration"
    ties: list[tuple[str, ...]] = field(default_factory=list)      # dst leaves with equal signatures
    skipped: list[tuple[str, str, str]] = field(default_factory=list)   # (src, dst, why), strict=False

    def __str__(self) -> str:
        lines = [f"copied {self.tensors} tensors ({self.elements:,} values) between {len(self.pairs)} "
                 f"modules, matched by {self.order}"]
        if self.ties:
            lines.append(f"  {len(self.ties)} group{'s' * (len(self.ties) != 1)} of modules equal in kind and "
                         f"shapes were matched in forward order: " + "; ".join(" = ".join(t) for t in self.ties[:3])
                         + (" ..." if len(self.ties) > 3 else ""))
        lines += [f"  skipped {s} -> {d}: {why}" for s, d, why in self.skipped[:10]]
        return "\n".join(lines)


_KINDS = ((nn.modules.conv._ConvNd, None), (nn.modules.batchnorm._BatchNorm, "bn"), (nn.Linear, "linear"),
          (nn.LayerNorm, "layer_norm"), (nn.GroupNorm, "group_norm"))


def _category(m: nn.Module | None) -> str:
    """The kind of a leaf by its torch base class (a subclass keeps the meaning of its parameters)."""
    if m is None:
        return "tensors"
    if isinstance(m, LearnedTensor):
        return "learned"
    if attention_category(m):
        return "attention"
    for base, name in _KINDS:
        if isinstance(m, base):
            return name or f"conv{len(m.kernel_size)}d"
    return "module"        # any other module: its tensors' names and shapes decide (LearnableAffineBlock = affine)


def _tensors(m: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """A module's own parameters and state-dict buffers, but not a non-persistent one (BlurPool's fixed
    filter) nor one an attention derives from its window (transfer_tokens.DERIVED)."""
    return [*m.named_parameters(recurse=False), *((n, b) for n, b in m.named_buffers(recurse=False)
                                                  if b is not None and n not in m._non_persistent_buffers_set
                                                  and n not in DERIVED)]


def weighted_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own tensors, in registration order; a module that has children too (ConvNeXt's
    CNBlock owns its layer scale) comes after them, where its tensor is used."""
    out: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()

    def walk(name: str, m: nn.Module) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        own = bool(_tensors(m))
        children = list(m.named_children())
        if own and not children:
            out.append((name, m))
        for child, c in children:
            walk(f"{name}.{child}" if name else child, c)
        if own and children:
            out.append((name, m))

    walk("", model)
    return out


def leaves_of_module(model: nn.Module) -> list[Leaf]:
    """The weighted leaves, torchvision's packed attention shown as its `in_proj` Linear (before
    `out_proj`) and each free learned tensor (class token, position embedding) a leaf of its own."""
    return [Leaf(n, _tensors(m), m) for n, m in split_free(unpack_attention(weighted_leaves(model)), _tensors)]


def leaves_of_state(state: dict[str, torch.Tensor]) -> list[Leaf]:
    """A state dict's modules: its keys grouped by prefix, in the file's order."""
    groups: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for k, t in state.items():
        prefix, _, short = k.rpartition(".")
        groups.setdefault(prefix, []).append((short, t))
    return [Leaf(p, ts) for p, ts in groups.items()]


# ---------------------------------------------------------------- signatures

def _is_scale(m: nn.Module) -> bool:
    """A module owning exactly one tensor, a parameter shaped (C,), (C, 1, 1) or (1, C, 1, 1), that is
    not a standard layer: a layer scale (torchvision's CNBlock.layer_scale, resdsl's LayerScale)."""
    own = _tensors(m)
    return (len(own) == 1 and _category(m) not in ("conv1d", "conv2d", "conv3d", "bn", "linear", "layer_norm", "group_norm")
            and isinstance(own[0][1], nn.Parameter) and own[0][1].numel() == max(own[0][1].shape))


def _is_dense(m: nn.Module) -> bool:
    """Linear, or an ungrouped, unstrided, unpadded 1×1 conv2d with bias: the same map on a C×1×1 input."""
    if isinstance(m, nn.Linear):
        return True
    return (_category(m) == "conv2d" and m.kernel_size == (1, 1) and m.groups == 1 and m.bias is not None
            and m.stride == (1, 1) and m.padding == (0, 0))


def signature(leaf: Leaf) -> tuple:
    """What must agree for two leaves to correspond: kind and tensor shapes."""
    m = leaf.module
    if isinstance(m, LearnedTensor):      # a class token or position embedding, whatever its name
        return ("learned", tuple(tuple(t.shape) for _, t in leaf.tensors))
    if m is not None and _is_scale(m):     # one learnable per-channel scale, whatever the module calls it
        return ("scale", tuple(t.numel() for _, t in leaf.tensors))
    if m is not None and _is_dense(m):     # a classifier written as Linear or as a 1×1 conv (timm's ResNetV2 head)
        return ("linear", tuple((n, (t.shape[0], t[0].numel()) if n == "weight" else tuple(t.shape))
                                for n, t in leaf.tensors))
    return (_category(m), tuple((n, tuple(t.shape)) for n, t in leaf.tensors))


def _key(leaf: Leaf) -> str:
    """Signature plus the hyperparameters that tell convs of equal shapes apart: the order key."""
    m, sig = leaf.module, signature(leaf)
    if sig[0].startswith("conv"):
        sig = sig + (tuple(getattr(m, "stride", ())), tuple(getattr(m, "dilation", ())), getattr(m, "groups", 1))
    return repr(sig)


def _at(i: int, src: list[Leaf], dst: list[Leaf]) -> str:
    shapes = lambda lf: ", ".join(f"{n} {tuple(t.shape)}" for n, t in lf.tensors)  # noqa: E731
    s, d = src[i], dst[i]
    return (f"module #{i} differs: source '{s.name}' is {_category(s.module)} [{shapes(s)}], "
            f"destination '{d.name}' is {_category(d.module)} [{shapes(d)}]")


def mismatch(src: list[Leaf], dst: list[Leaf]) -> str | None:
    """Why two leaf lists do not line up one to one, or None when they do."""
    n = min(len(src), len(dst))
    first = next((i for i in range(n) if signature(src[i]) != signature(dst[i])), None)
    if first is not None:
        return _at(first, src, dst)
    if len(src) != len(dst):
        extra = src[n] if len(src) > n else dst[n]
        return (f"source has {len(src)} weighted modules, destination {len(dst)}; "
                f"first unmatched: {extra.name} ({_category(extra.module)})")
    return None


def match_in_order(src: list[Leaf], dst: list[Leaf]) -> list[tuple[Leaf, Leaf]]:
    """The one order matcher: leaf i of src with leaf i of dst (extra leaves on either side unpaired)."""
    return list(zip(src, dst))


def tensor_pairs(s: Leaf, d: Leaf) -> list[tuple[str, torch.Tensor, str, torch.Tensor]]:
    """(src name, src tensor, dst name, dst tensor) of two paired leaves: by name where every name
    agrees, else by position (a layer scale's `gamma` is another module's `weight`)."""
    sn, dn = [n for n, _ in s.tensors], [n for n, _ in d.tensors]
    if sorted(sn) == sorted(dn):
        st = dict(s.tensors)
        return [(n, st[n], n, t) for n, t in d.tensors]
    if s.module is None:           # a state dict group: only the names it shares are trusted
        st = dict(s.tensors)
        return [(n, st[n], n, t) for n, t in d.tensors if n in st]
    return [(a, x, b, y) for (a, x), (b, y) in zip(s.tensors, d.tensors)]


# ---------------------------------------------------------------- dataflow between leaves

class _Flow(torch.overrides.TorchFunctionMode):
    """Records, for every torch function a forward pass calls, which leaves its tensors came from."""

    INPUT = -1

    def __init__(self, owner: dict[int, int]):
        super().__init__()
        self.owner = owner                       # id(parameter or buffer) -> leaf index
        self.prov: dict[int, tuple] = {}         # id(tensor) -> ("param", leaves) | ("data", frozenset of leaves)
        self.keep: list[torch.Tensor] = []       # keeps ids unique while the pass runs
        self.preds: dict[int, set[int]] = defaultdict(set)
        self.first: dict[int, int] = {}          # leaf -> index of its first use

    def mark(self, t: torch.Tensor, prov: tuple) -> None:
        self.prov[id(t)] = prov
        self.keep.append(t)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        flat = torch.utils._pytree.tree_leaves((args, kwargs))
        owners, data = [], set()
        for t in flat:
            if not isinstance(t, torch.Tensor):
                continue
            if id(t) in self.owner:
                owners.append(self.owner[id(t)])
                continue
            p = self.prov.get(id(t))
            if p is None:
                continue
            if p[0] == "param":
                owners += p[1]
            else:
                data |= p[1]
        if owners and data:                       # a leaf's tensor meets data: the leaf runs
            # several leaves at once run in argument order: torchvision's MultiheadAttention hands
            # in_proj_weight and out_proj.weight to one F.multi_head_attention_forward; Swin V2's
            # position MLP (two Linears on a fixed table) meets the data only as the attention's bias
            before: set[int] = set()
            for o in dict.fromkeys(owners):
                self.preds[o] |= (data | before) - {o}
                self.first.setdefault(o, len(self.first))
                before.add(o)
            prov = ("data", frozenset(owners))
        elif owners:                              # tensors alone (a standardised weight, a view, a table's MLP)
            prov = ("param", tuple(dict.fromkeys(owners)))
        elif data:
            prov = ("data", frozenset(data))
        else:
            return out
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.mark(t, prov)
        if getattr(func, "__name__", "") == "__setitem__" and args and isinstance(args[0], torch.Tensor):
            self.mark(args[0], prov)              # written in place: it now holds what was written too
        return out


def dataflow(model: nn.Module, leaves: list[Leaf], input_shape, side: str) -> tuple[dict, dict]:
    """(preds, first): for each leaf index the leaves whose outputs reach it, and its first-use rank,
    from one eval-mode forward pass on zeros of `input_shape` (batch 1)."""
    owner = {id(t): i for i, lf in enumerate(leaves) for _, t in lf.tensors}
    flow = _Flow(owner)
    p = next(iter(model.parameters()), None)
    x = torch.zeros(1, *input_shape, device=p.device if p is not None else None,
                    dtype=p.dtype if p is not None and p.is_floating_point() else None)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), flow:
            flow.mark(x, ("data", frozenset({_Flow.INPUT})))
            model(x)
    except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as e:    # timm asserts input sizes
        size = "×".join(str(d) for d in input_shape)
        raise TransferError(f"the {side} model cannot run on an input of {size} (batch 1), the size transfer_weights "
                            f"used to match modules by structure; pass input_shape= with a size it accepts "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
    finally:
        model.train(was_training)
    return flow.preds, flow.first


def structural_order(leaves: list[Leaf], preds: dict, first: dict) -> tuple[list[Leaf], list[tuple[str, ...]]]:
    """The leaves in canonical topological order (see the module doc), and the ties met."""
    called = sorted(first, key=first.get)
    todo = set(called)
    deps = {i: {p for p in preds.get(i, ()) if p in todo and p != i} for i in called}
    keys = {i: _key(leaves[i]) for i in called}
    order, ties = [], []
    while todo:
        ready = [i for i in todo if not deps[i]] or [min(todo, key=first.get)]   # a cycle: shared weights
        best = min(keys[i] for i in ready)
        same = sorted((i for i in ready if keys[i] == best), key=first.get)
        if len(same) > 1:
            ties.append(tuple(leaves[i].name for i in same))
        i = same[0]
        order.append(i)
        todo.discard(i)
        for j in todo:
            deps[j].discard(i)
    unused = [i for i in range(len(leaves)) if i not in first]
    return [leaves[i] for i in order + unused], ties


# ---------------------------------------------------------------- transfer

def transfer_weights(src: nn.Module, dst: nn.Module, input_shape=None, strict: bool = True) -> TransferReport:
    """Copy every parameter and buffer of `src` into `dst`, module by module, matched by structure.

    `input_shape` (C×H×W without the batch; default: `dst.input_shape`, then `src.input_shape`, which
    a compiled resdsl network has) is the size of the one forward pass each model makes so that
    modules are matched by dataflow; without any, modules are matched in registration order.
    Raises TransferError when the models differ (the message names the first modules that do), or
    when a model cannot run at that size (the message gives the size). With `strict=False` nothing
    is raised for a difference: the leaves that agree position by position in the best order are
    copied and the others listed in `report.skipped`."""
    s_leaves, d_leaves = leaves_of_module(src), leaves_of_module(dst)
    shape = input_shape or getattr(dst, "input_shape", None) or getattr(src, "input_shape", None)
    tries: list[tuple[str, list[Leaf], list[Leaf], list]] = []
    if shape is not None:
        s_flow = dataflow(src, s_leaves, tuple(shape), "source")
        d_flow = dataflow(dst, d_leaves, tuple(shape), "destination")
        s_struct, _ = structural_order(s_leaves, *s_flow)
        d_struct, ties = structural_order(d_leaves, *d_flow)
        s_exec = [s_leaves[i] for i in sorted(s_flow[1], key=s_flow[1].get)] + [lf for i, lf in enumerate(s_leaves) if i not in s_flow[1]]
        d_exec = [d_leaves[i] for i in sorted(d_flow[1], key=d_flow[1].get)] + [lf for i, lf in enumerate(d_leaves) if i not in d_flow[1]]
        tries = [("structure", s_struct, d_struct, ties), ("registration order", s_leaves, d_leaves, []),
                 ("forward order", s_exec, d_exec, []),
                 # one side's forward order against the other's registration order (timm's Res2Net
                 # registers its convs and BNs as two lists, and runs its shortcut last)
                 ("source forward order", s_exec, d_leaves, []), ("destination forward order", s_leaves, d_exec, [])]
    else:
        tries = [("registration order", s_leaves, d_leaves, [])]
    chosen = next((t for t in tries if mismatch(t[1], t[2]) is None), None)
    if chosen is None:
        problem = mismatch(s_leaves, d_leaves) or mismatch(tries[0][1], tries[0][2])
        if strict:
            hint = "" if shape is not None else " (pass input_shape= to also match by structure)"
            raise TransferError(f"models differ in structure: {problem}{hint}")
        chosen = tries[0]
    order, s_list, d_list, ties = chosen
    report = TransferReport(order=order, ties=ties)
    with torch.no_grad():
        for s, d in match_in_order(s_list, d_list):
            if signature(s) != signature(d):
                report.skipped.append((s.name, d.name, "kind or shapes differ"))
                continue
            for _, st, _, dt in tensor_pairs(s, d):
                dt.copy_(st.reshape(dt.shape))
                report.tensors += 1
                report.elements += st.numel()
            report.pairs.append((s.name, d.name))
    for extra in s_list[len(d_list):]:
        report.skipped.append((extra.name, "-", "no destination module left"))
    for extra in d_list[len(s_list):]:
        report.skipped.append(("-", extra.name, "no source module left"))
    return report
