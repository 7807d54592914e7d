"""Shortcuts: what a unit adds to its residual branch. One function per kind of ir/kinds.py."""
from __future__ import annotations

from ..errors import Span, SpecError
from ..ir import ops
from ..ir.kinds import SHORTCUTS, USER_SHORTCUTS
from ..ir.net import Shortcut
from . import ast
from .context import Context, infer, layer
from .sequences import seq
from .values import Symbol, show


def shortcut(ctx: Context, st: ast.shortcut | None, env, x_shape, a_shape, r_shape, has_pre: bool, name: str,
             call_span: Span) -> Shortcut:
    """`shortcut { ... }` (custom layers), `shortcut KIND`, or identity when the block says nothing."""
    span = st.span if st is not None else call_span
    if st is not None and st.body is not None:
        items, out = seq(ctx, st.body, env, a_shape if has_pre else x_shape, f"{name}.shortcut.")
        infer("add", {"scale": 1.0}, [r_shape, out], span)
        return Shortcut(kind="custom", layers=items, source="pre" if has_pre else "input", span=span)
    kind = shortcut_kind(ctx, st, env) if st is not None else "identity"
    if not SHORTCUTS[kind].carries:
        return Shortcut(kind=kind, span=span)
    if kind == "identity" or (r_shape == x_shape and SHORTCUTS[kind].identity_where_same):
        return identity(x_shape, r_shape, span)
    if kind == "zeropad":
        return zeropad(x_shape, r_shape, name, span)
    sc = projection(kind, x_shape, a_shape if has_pre else x_shape, r_shape, has_pre, name, span)
    ctx.n_layers += len(sc.layers)
    return sc


def shortcut_kind(ctx: Context, st: ast.shortcut, env) -> str:
    if len(st.args) != 1:
        raise SpecError("shortcut takes one kind or a { ... } sequence", st.span).with_note(
            "kinds: " + ", ".join(USER_SHORTCUTS))
    value = ctx.eval(st.args[0], env)
    if not isinstance(value, Symbol) or value.name not in USER_SHORTCUTS:
        raise SpecError(f"unknown shortcut kind {show(value)}", st.args[0].span).with_note(
            "expected one of: " + ", ".join(USER_SHORTCUTS))
    return value.name


def identity(x_shape, r_shape, span: Span) -> Shortcut:
    """y = x + F(x): the shapes must match."""
    if r_shape != x_shape:
        err = SpecError(f"identity shortcut: block input {ops.fmt(x_shape)} does not match "
                        f"residual output {ops.fmt(r_shape)}", span)
        raise err.with_note("use 'shortcut projection' (option B) or 'shortcut zeropad' (option A) "
                            "where the shape changes")
    return Shortcut(kind="identity", span=span)


def zeropad(x_shape, r_shape, name: str, span: Span) -> Shortcut:
    """Option A (He et al. 2015): subsample by the stride, pad the new channels with zeros."""
    stride = shortcut_stride(x_shape, r_shape, span)
    pad, _ = layer("zeropad", f"{name}.shortcut.zeropad", {"out": r_shape[0], "stride": stride}, [x_shape], span)
    return Shortcut(kind="zeropad", layers=(pad,), span=span)


def projection(kind: str, x_shape, src_shape, r_shape, has_pre: bool, name: str, span: Span) -> Shortcut:
    """Options B/C: a strided 1×1 conv + BN; avgdown (ResNet-D, He et al. 2019) averages first.
    After a pre-activation the projection is a bare conv (He et al. 2016, timm, WRN)."""
    stride = shortcut_stride(x_shape, r_shape, span)
    layers = ()
    if kind == "avgdown" and stride > 1:
        pool, src_shape = layer("avgpool", f"{name}.shortcut.avgpool1", {"kernel": stride, "stride": stride,
                                "padding": 0, "ceil": True, "count_pad": False}, [src_shape], span)
        layers, stride = (pool,), 1
    conv, _ = layer("conv", f"{name}.shortcut.conv1", {"out": r_shape[0], "kernel": 1, "stride": stride,
                    "padding": 0, "dilation": 1, "groups": 1, "bias": False}, [src_shape], span)
    layers += (conv,)
    if not has_pre:
        bn, _ = layer("bn", f"{name}.shortcut.bn1", {"eps": 1e-5, "momentum": 0.1}, [r_shape], span)
        layers += (bn,)
    return Shortcut(kind=kind, layers=layers, source="pre" if has_pre else "input", span=span)


def shortcut_stride(x_shape, r_shape, span) -> int:
    """The stride s with ceil(H/s) × ceil(W/s) (ceil(L/s) on a sequence) = the residual's output size."""
    if len(x_shape) not in (2, 3) or len(r_shape) != len(x_shape):
        raise SpecError(f"a shortcut from {ops.fmt(x_shape)} to {ops.fmt(r_shape)}: shortcuts need C×H×W maps "
                        "or C×L sequences on both sides", span)
    for s in range(1, max(x_shape[1], 1) + 1):
        if tuple((x - 1) // s + 1 for x in x_shape[1:]) == r_shape[1:]:
            return s
    raise SpecError(f"no strided shortcut maps {ops.fmt(x_shape)} to {ops.fmt(r_shape)}", span).with_note(
        "the residual branch changes the spatial size by a non-integer factor")
