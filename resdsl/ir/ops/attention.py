"""Multi-head self-attention: global over N×D tokens (ViT, DeiT), or in windows of an H×W×D grid,
shifted, with a relative position bias (Swin V1's table; Swin V2's continuous bias with cosine
attention). One kind, its variants attributes, run by `scaled_dot_product_attention` (global) or
torchvision's matmul-softmax-matmul (with a position bias: backend/tokens.py)."""
from __future__ import annotations



from .base import NUM, SIZE, Attr, AttrError, Op, OpError, Shape, fmt, is_tokens, layout, positive, probability, sizes
from .tokens import need_tokens

POSITIONS = ("none", "table", "cpb")


def attention_resolve(a: dict, ins: list[Shape] | None) -> dict:
    """The window and shift as (h, w); the position bias defaults to Swin's table in windows, none
    globally."""
    w = None if a["window"] is None else sizes(a["window"], 2)
    shift = sizes(a["shift"], 2)
    position = str(a["position"]) if a["position"] is not None else ("table" if w is not None else "none")
    if position not in POSITIONS:
        raise AttrError("position", f"attention: position is one of {', '.join(POSITIONS)}, got {position}")
    if position != "none" and w is None:
        raise AttrError("position", f"attention: a relative position bias ({position}) needs a window").note(
            "give the window: 'attention 3 window 7'")
    if a["grid"] and (w is None or any(shift) or a["pad"]):
        raise AttrError("grid", "attention: a grid (MaxViT) needs a window, and takes no shift and no pad")
    if any(shift) and w is None:
        raise AttrError("shift", "attention: a shift needs a window")
    if w is not None and not all(0 <= s < x for s, x in zip(shift, w)):
        raise AttrError("shift", f"attention: the shift {fmt(shift)} must be smaller than the window {fmt(w)}")
    return {**a, "window": w, "shift": shift, "position": position}


def windows(a: dict, t: Shape) -> tuple[int, int]:
    """(positions per window, number of windows) of a windowed attention on grid t (padded up)."""
    wh, ww = a["window"]
    return wh * ww, -(-t[1] // wh) * -(-t[2] // ww)


def attention_shape(a: dict, ins: list[Shape]) -> Shape:
    s = ins[0]
    if not is_tokens(s):
        raise OpError(f"attention needs N×D tokens or an H×W×D grid, got {layout(s)}").note(
            "a C×H×W map becomes tokens with 'tokens' (ViT) or a grid with 'channels_last' (Swin)")
    d, heads = s[0], a["heads"]
    if heads <= 0 or d % heads:
        raise OpError(f"attention: {heads} heads must divide the width {d}").note(
            f"widths per head of {', '.join(str(h) for h in (32, 64) if d % h == 0) or 'any divisor'} are usual")
    if a["window"] is None:
        need_tokens(s, "global attention", grid=False)
        return s
    t = need_tokens(s, "windowed attention", grid=True)
    wh, ww = a["window"]
    if not a["pad"]:
        for axis, size, win in (("height", t[1], wh), ("width", t[2], ww)):
            if win > size:
                raise OpError(f"attention window {fmt(a['window'])} is larger than the {t[1]}×{t[2]} grid "
                              f"({axis} {size})").note("add 'pad' to pad the grid up to the window "
                                                       "(torchvision's Swin does)")
            if size % win:
                raise OpError(f"attention window {fmt(a['window'])} does not divide the {t[1]}×{t[2]} grid "
                              f"({axis} {size})").note("add 'pad' to pad the grid to a multiple of the window "
                                                       "(torchvision's Swin V2 does)")
    return s


def attention_params(a: dict, ins: list[Shape], out: Shape) -> int:
    d, h = ins[0][0], a["heads"]
    n = 3 * d * d + (3 * d if a["qkv_bias"] else 0) + d * d + (d if a["proj_bias"] else 0)
    if a["position"] == "table":
        n += (2 * a["window"][0] - 1) * (2 * a["window"][1] - 1) * h
    if a["position"] == "cpb":
        n += 3 * a["cpb_hidden"] + a["cpb_hidden"] * h
    return n + (h if a["cosine"] else 0)


def attention_macs(a: dict, ins: list[Shape], out: Shape) -> int:
    """q, k, v and the output projection (4·N·D²), q·kᵀ and attention·v (2·N²·D) per window; Swin V2's
    bias MLP once per forward on its (2w−1)² coordinates."""
    d, t = ins[0][0], ins[0]
    n, count = (t[1], 1) if a["window"] is None else windows(a, t)
    macs = count * (4 * n * d * d + 2 * n * n * d)
    if a["position"] == "cpb":
        cells = (2 * a["window"][0] - 1) * (2 * a["window"][1] - 1)
        macs += cells * (2 * a["cpb_hidden"] + a["cpb_hidden"] * a["heads"])
    return macs


def attention_label(a: dict, brief: bool) -> str:
    """"attention, 12 heads" / "window 7×7 attention, 3 heads, shift 3" (the variant in words)."""
    head = f"{a['heads']} head{'s' * (a['heads'] != 1)}"
    if a["window"] is None:
        return f"{'cosine ' if a['cosine'] else ''}attention, {head}"
    extra = [f"shift {fmt(a['shift']) if a['shift'][0] != a['shift'][1] else a['shift'][0]}"] if any(a["shift"]) else []
    extra += {"table": ["rel. pos. bias"], "cpb": ["cont. pos. bias"]}.get(a["position"], [])
    w = a["window"]
    return (f"{fmt(w)} {'grid' if a['grid'] else 'window'} {'cosine ' if a['cosine'] else ''}attention, {head}"
            + "".join(f", {e}" for e in extra))


def attention_what(a: dict) -> str:
    parts = ["attention", f"h{a['heads']}"]
    if a["window"] is not None:
        parts += [f"{'grid' if a['grid'] else 'w'}{fmt(a['window'])}"] + ([f"shift{a['shift'][0]}"] if any(a["shift"]) else [])
    return " ".join(parts + (["cosine"] if a["cosine"] else []))


OPS = (
    Op("attention", "multi-head self-attention: attention HEADS [qkv_bias false] [attn_drop P] [proj_drop P] "
       "[window W [shift S | grid] [pad] [position table|cpb|none]] [cosine] [scale S (1/√(D/heads))]",
       ("heads",),
       (Attr("heads", int, check=positive), Attr("qkv_bias", bool, True, flag=True),
        Attr("proj_bias", bool, True, flag=True), Attr("attn_drop", NUM, 0.0, check=probability),
        Attr("proj_drop", NUM, 0.0, check=probability), Attr("window", SIZE, None),
        Attr("shift", SIZE, 0), Attr("pad", bool, False, flag=True), Attr("position", object, None),
        Attr("cosine", bool, False, flag=True), Attr("cpb_hidden", int, 512, check=positive),
        Attr("grid", bool, False, flag=True), Attr("scale", NUM, None, check=positive)),
       attention_shape, attention_params, attention_macs, resolve=attention_resolve,
       window=lambda a, ins: None, label=attention_label, what=attention_what, weights="trained",
       fresh_output=True, parts=("qkv", "proj"),
       aten=("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_efficient_attention",
             "_scaled_dot_product_flash_attention")),
)


