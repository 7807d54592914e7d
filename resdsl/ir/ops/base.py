"""What an op kind is: one `Op` entry holding every facet of it (see ops/__init__.py).

Shapes are tuples (C, H, W) (an image), (C, L) (a sequence) or (C,) (a vector). Windowed ops
are written once for both spatial ranks: `sizes` gives a kernel or padding one value per
axis, and a resolved 1-D size is a 1-tuple `(k,)`, so the attributes alone say the rank. Attribute dicts passed to the facets are *resolved*
(`ops.make`): every default filled in, nothing left for a consumer to derive.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

Shape = tuple[int, ...]
Window = tuple[int, int, int]          # (kernel, stride, dilation) for the receptive field
NUM = (int, float)
SIZE = "size"        # attribute type: an int, or [height, width] (written 1x7 or [1, 7]), or [length] (1-D)

# How an attribute is named in messages, where its short name would not say what it is.
WORDS = {"out": "the number of output channels"}


class OpError(Exception):
    """A short fact about an op's inputs; the caller adds the source span."""

    def __init__(self, message: str):
        super().__init__(message)
        self.notes: list[str] = []

    def note(self, text: str) -> "OpError":
        self.notes.append(text)
        return self


class AttrError(OpError):
    """A bad attribute value; the caller points at the value when it knows where it was written."""

    def __init__(self, attr: str, message: str):
        super().__init__(message)
        self.attr = attr


@dataclass(frozen=True)
class Attr:
    name: str
    type: type | tuple[type, ...] | str
    default: Any = None          # None: required (positional) or resolved by the op
    short: str | None = None     # `k7` short form
    flag: bool = False           # `bias` alone means true
    check: Callable[[Any], str | None] | None = None   # a message when the value is out of range


def positive(v) -> str | None:
    return None if v is None or v > 0 else f"must be positive, got {v:g}"


def non_negative(v) -> str | None:
    return None if v is None or v >= 0 else f"must be >= 0, got {v:g}"


def probability(v) -> str | None:
    """A probability of dropping: 0 <= p < 1 (p = 1 would drop everything)."""
    return None if 0 <= v < 1 else f"must be in [0, 1), got {v:g}"


def fraction(v) -> str | None:
    return None if 0 <= v <= 1 else f"must be in [0, 1], got {v:g}"


def _zero(a: dict, ins: list[Shape], out: Shape) -> int:
    return 0


def _same_attrs(a: dict, ins: list[Shape]) -> dict:
    return a


def _pointwise(a: dict, ins: list[Shape]) -> Window | None:
    return (1, 1, 1)


@dataclass(frozen=True)
class Op:
    """Everything about one op kind but its torch module: schema, defaults, shape, cost, field, drawing.
    The module it builds is its entry in backend/builders.py (the registry does not import torch)."""
    kind: str
    doc: str                                         # one line, shown in `docs/language.md`
    positional: tuple[str, ...]
    attrs: tuple[Attr, ...]
    shape: Callable[[dict, list[Shape]], Shape]
    params: Callable[[dict, list[Shape], Shape], int] = _zero
    macs: Callable[[dict, list[Shape], Shape], int] = _zero
    resolve: Callable[[dict, list[Shape]], dict] = _same_attrs   # defaults that depend on other attrs
    window: Callable[[dict, list[Shape]], Window | None] = _pointwise   # None: sees the whole input
    label: Callable[[dict, bool], str] | None = None  # drawn text (brief: inside a shortcut); None: kind
    what: Callable[[dict], str] | None = None         # text of a cost-table row; None: kind
    n_inputs: int = 1                                 # -1: any number >= 1
    user: bool = True                                 # written in specs (vs. produced by lowering)
    weights: Literal["none", "trained", "norm"] = "none"   # what `share` ties: trained, and norm unless per_step_bn
    fold: bool = False              # drawn and shown after the op it follows ("3×3 conv 64 · BN · ReLU")
    merge: str | None = None        # a merge node: the symbol drawn for it ("+", "‖")
    needs_output: bool = False      # its backward reads its output: the next ReLU may not run in place
    fresh_output: bool = False      # its output is a new tensor nobody else reads: a merge may add into it
    per_channel: bool = False       # may sit in an `aggregate` path (C paths stack into one grouped op)
    aten: tuple[str, ...] = ()      # torch.utils.flop_counter ops whose FLOPs this kind's MACs are
    activation: bool = False        # an activation: a value of `se act ...` / `gate ...`
    parts: tuple[str, ...] = ()     # sublayers `init KIND PART ...` may address (attention: qkv, proj)

    @property
    def builds_module(self) -> bool:
        """A one-input op builds a module (backend/builders.py); a merge is run by its container."""
        return self.n_inputs == 1

    def attr(self, name: str) -> Attr | None:
        return next((a for a in self.attrs if a.name == name), None)

    def text(self, a: dict, brief: bool = False) -> str:
        return self.label(a, brief) if self.label else self.kind

    def row_what(self, a: dict) -> str:
        return self.what(a) if self.what else self.kind


class Tokens(tuple):
    """A token tensor: N×D tokens, or an H×W×D channels-last grid (Swin). Stored channels-first like
    every shape, (D, N) or (D, H, W), so `shape[0]` is always the width a norm or a merge reads; the
    runtime tensor is (B, N, D) or (B, H, W, D), the layout of torchvision's and timm's transformers.
    `prefix` counts the learned tokens written before the patch tokens (class, distillation,
    register), which a head may read and which a grid or a map cannot hold."""

    prefix: int

    def __new__(cls, dims, prefix: int = 0):
        t = super().__new__(cls, dims)
        t.prefix = prefix
        return t

    def __getnewargs__(self):
        return (tuple(self), self.prefix)

    def __repr__(self) -> str:
        return f"Tokens({tuple(self)!r}, prefix={self.prefix})"

    @property
    def runtime(self) -> tuple[int, ...]:
        """The tensor's shape at run time, without the batch: (N, D) or (H, W, D), channels last."""
        return (*self[1:], self[0])

    @property
    def grid(self) -> bool:
        """An H×W×D grid (a channels-last map) rather than a sequence of N tokens."""
        return len(self) == 3


def is_tokens(shape) -> bool:
    return isinstance(shape, Tokens)


def runtime_shape(shape: Shape) -> tuple[int, ...]:
    """A shape as the compiled model's tensor has it, without the batch (tokens are channels last)."""
    return shape.runtime if isinstance(shape, Tokens) else tuple(shape)


def like(shape: Shape, dims) -> Shape:
    """`dims` in the layout of `shape` (tokens stay tokens, with their prefix)."""
    return Tokens(dims, shape.prefix) if isinstance(shape, Tokens) else tuple(dims)


def fmt(shape: Shape) -> str:
    if isinstance(shape, Tokens):
        if shape.grid:
            return f"{shape[1]}×{shape[2]}×{shape[0]} grid"
        return f"{shape[1]}×{shape[0]} tokens"
    return "×".join(str(d) for d in shape)


def layout(shape: Shape) -> str:
    """What a shape is, in words, for messages: a map, a sequence, a vector, tokens, a grid."""
    if isinstance(shape, Tokens):
        return fmt(shape)
    return {1: "a vector ", 2: "a C×L sequence ", 3: "a C×H×W map "}.get(len(shape), "") + fmt(shape)


TOKEN_NOTE = ("tokens become a map again with 'to_map HxW' (a grid with 'channels_first'); "
              "a map becomes tokens with 'tokens' (a grid with 'channels_last')")


def no_tokens(shape: Shape, what: str) -> None:
    """A token tensor where a map, a sequence or a vector is needed: a located error with the way out."""
    if isinstance(shape, Tokens):
        raise OpError(f"{what} needs a map or a sequence, not tokens: got {layout(shape)}").note(TOKEN_NOTE)


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    """A size given as one int (square) or as (height, width)."""
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def spatial(shape: Shape, what: str) -> tuple[int, int, int]:
    no_tokens(shape, what)
    if len(shape) != 3:
        raise OpError(f"{what} needs a C×H×W input, got {fmt(shape)}" + (
            " (a C×L sequence)" if len(shape) == 2 else ""))
    return shape  # type: ignore[return-value]


def windowed(shape: Shape, what: str) -> int:
    """The spatial rank of a windowed op's input: 1 for a C×L sequence, 2 for a C×H×W map."""
    no_tokens(shape, what)
    if len(shape) not in (2, 3):
        raise OpError(f"{what} needs a C×L sequence or a C×H×W map, got {fmt(shape)}" + (
            " (a vector)" if len(shape) == 1 else ""))
    return len(shape) - 1


def sizes(v: int | tuple[int, ...], rank: int | None = None) -> tuple[int, ...]:
    """A kernel, stride or padding as one value per spatial axis: an int is square (or a 1-tuple
    when rank is 1); a tuple keeps its own length, and must have `rank` of them when rank is given."""
    if isinstance(v, int):
        return (v,) * (2 if rank is None else rank)
    v = tuple(v)
    if rank is not None and len(v) != rank:
        raise OpError(f"{fmt(v)} gives {len(v)} size{'s' * (len(v) != 1)} for a {rank}-D input" + (
            "; a C×L sequence takes one size (k3)" if rank == 1 else "; a C×H×W map takes k3 or HxW (k1x7)"))
    return v


def window_text(v: int | tuple[int, ...]) -> str:
    """A window as drawn: "3×3" on a map, "k3" on a sequence (a resolved 1-tuple)."""
    return f"k{v[0]}" if rank_of(v) == 1 else fmt(sizes(v))


def rank_of(v: int | tuple[int, ...]) -> int:
    """The spatial rank a resolved size says: a 1-tuple is 1-D, anything else 2-D."""
    return 1 if isinstance(v, tuple) and len(v) == 1 else 2


def window_size(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    """Output length of a sliding window (PyTorch's formula, ceil mode included)."""
    span = d * (k - 1) + 1
    num = size + 2 * p - span
    if num < 0:
        return 0
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p:   # PyTorch: last window must start inside the input
        out -= 1
    return out


def require_positive(attrs: dict, *names: str) -> None:
    for n in names:
        v = attrs.get(n)
        if v is not None and v <= 0:
            raise OpError(f"{WORDS.get(n, n)} must be positive, got {v}")


def same_shape(a: dict, ins: list[Shape]) -> Shape:   # keeps the layout (a Tokens stays Tokens)
    return ins[0]


def channels_of(shape: Shape, what: str, tokens: bool = False) -> int:
    """The channels of a C, C×L or C×H×W input (the width D of tokens where `tokens` allows them)."""
    if not tokens:
        no_tokens(shape, what)
    if len(shape) not in (1, 2, 3):
        raise OpError(f"{what} needs a C, C×L or C×H×W input, got {fmt(shape)}")
    return shape[0]


def divides(what: str, groups: int, c: int) -> None:
    if groups <= 0 or c % groups:
        raise OpError(f"{what}: {groups} groups must divide the {c} channels")



def strided(s: int) -> str:
    """The `, s2` tail of a label (nothing for stride 1)."""
    return f", s{s}" if s != 1 else ""
