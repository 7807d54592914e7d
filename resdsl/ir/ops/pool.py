"""Pooling on C×H×W maps and C×L sequences: maxpool and avgpool (global without a kernel)."""
from __future__ import annotations

from typing import Callable

from .base import (SIZE, Attr, AttrError, Op, OpError, Shape, fmt, rank_of, require_positive, sizes, strided,
                   window_size, window_text, windowed)
from .base import is_tokens


def pool_resolve(kind: str) -> Callable[[dict, list[Shape]], dict]:
    """Kernel one value per axis on a C×L sequence ((k,)); stride defaults to the kernel; padding
    to (k − 1)/2 for maxpool, 0 for avgpool."""
    def resolve(a: dict, ins: list[Shape] | None) -> dict:
        k = a["kernel"]
        if a.get("size") is not None:          # adaptive pooling to a size
            if k is not None:
                raise AttrError("size", f"{kind} takes a kernel or an output size, not both")
            rank = len(ins[0]) - 1 if ins and len(ins[0]) in (2, 3) else rank_of(a["size"])
            try:
                return {**a, "size": sizes(a["size"], rank)}
            except OpError as e:
                raise AttrError("size", f"{kind} size {e}") from None
        if k is None:                          # global pooling
            return a
        rank = len(ins[0]) - 1 if ins and len(ins[0]) in (2, 3) else rank_of(k)
        try:
            ks = sizes(k, rank)
        except OpError as e:
            raise AttrError("kernel", f"{kind} kernel {e}") from None
        k = ks if rank == 1 else k
        big = max(sizes(k))
        stride = big if a["stride"] is None else a["stride"]
        padding = a["padding"] if a["padding"] is not None else ((big - 1) // 2 if kind == "maxpool" else 0)
        return {**a, "kernel": k, "stride": stride, "padding": padding}
    return resolve


def pool_shape(kind: str) -> Callable[[dict, list[Shape]], Shape]:
    def shape(a: dict, ins: list[Shape]) -> Shape:
        if is_tokens(ins[0]) and a["kernel"] is None and kind == "avgpool":   # the mean of the tokens
            return (ins[0][0],)
        rank = windowed(ins[0], kind)
        c, *dims = ins[0]
        if a.get("size") is not None:          # adaptive: any input size gives this one (AlexNet, VGG)
            size = sizes(a["size"], rank)
            if min(size) < 1:
                raise OpError(f"{kind} size must be positive, got {fmt(size)}")
            return (c, *size)
        if a["kernel"] is None:                # global pooling
            return (c,) + (1,) * rank
        require_positive(a, "stride")
        ks, s, p = sizes(a["kernel"], rank), a["stride"], a["padding"]
        written = a["kernel"] if isinstance(a["kernel"], int) else fmt(a["kernel"])     # 3, 1×7 or (1-D) 3
        if min(ks) <= 0:
            raise OpError(f"kernel must be positive, got {written}")
        if p > min(ks) // 2:
            raise OpError(f"padding {p} must be at most half the kernel {written}")
        out = [window_size(x, k, s, p, 1, a["ceil"]) for x, k in zip(dims, ks)]
        if min(out) < 1:
            raise OpError(f"{'sequence' if rank == 1 else 'feature map'} {fmt(tuple(dims))} shrinks below "
                          f"{fmt((1,) * rank)} ({kind} kernel {written}, stride {s})")
        return (c, *out)
    return shape


def pool_facets(kind: str) -> dict:
    """Window, label and row text shared by both pools."""
    def label(a: dict, brief: bool) -> str:
        k = a["kernel"]
        if a.get("size") is not None:
            return f"adaptive {kind} to {fmt(a['size'])}"
        return f"global {kind}" if k is None else f"{window_text(k)} {kind}{strided(a['stride'])}"

    def what(a: dict) -> str:
        if a.get("size") is not None:
            return f"{kind} (adaptive {fmt(a['size'])})"
        if a["kernel"] is None:
            return kind + (" (global)" if kind == "avgpool" else "")
        return " ".join([kind, window_text(a["kernel"])] + ([f"s{a['stride']}"] if a["stride"] != 1 else []))

    return dict(resolve=pool_resolve(kind), label=label, what=what, window=pool_window)


def pool_window(a: dict, ins: list[Shape]):
    """The kernel's window; global pooling sees everything; adaptive pooling to a size is the
    identity where the input has that size, else windows of about input/size (torch's bins)."""
    if a.get("size") is not None:
        dims, size = ins[0][1:], a["size"]
        if tuple(dims) == tuple(size):
            return (1, 1, 1)
        return (max(-(-d // o) for d, o in zip(dims, size)), max(1, min(d // o for d, o in zip(dims, size))), 1)
    return None if a["kernel"] is None else (max(sizes(a["kernel"])), a["stride"], 1)


OPS = (
    Op("maxpool", "max pooling: maxpool k K s S [p P] [ceil]", (),
       (Attr("kernel", SIZE, 3, short="k"), Attr("stride", int, None, short="s"),
        Attr("padding", int, None, short="p"), Attr("ceil", bool, False, flag=True)),
       pool_shape("maxpool"), **pool_facets("maxpool")),
    Op("avgpool", "average pooling: global without a kernel (on tokens: their mean, learned tokens left out), else avgpool k K s S; avgpool size 7: adaptive to 7×7", (),
       (Attr("kernel", SIZE, None, short="k"), Attr("stride", int, None, short="s"),
        Attr("padding", int, None, short="p"), Attr("ceil", bool, False, flag=True),
        Attr("count_pad", bool, True), Attr("size", SIZE, None)),
       pool_shape("avgpool"), **pool_facets("avgpool")),
)
