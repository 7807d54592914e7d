"""Token layouts and learned tensors: the conversions between C×H×W maps and N×D tokens (or H×W×D
channels-last grids), learned class/distillation/register tokens, position embeddings, reading a
token, and Swin's patch merging. Every conversion is explicit and shape-checked: a map never turns
into tokens, nor tokens into a map, without one of these words."""
from __future__ import annotations

from .base import (NUM, SIZE, Attr, Op, OpError, Shape, Tokens, fmt, is_tokens, layout, non_negative,
                   positive, sizes)


def need_tokens(shape: Shape, what: str, grid: bool | None = False) -> Tokens:
    """The input as tokens (grid False: N×D tokens; True: an H×W×D grid; None: either)."""
    if not is_tokens(shape) or (grid is not None and shape.grid != grid):
        want = {False: "N×D tokens", True: "an H×W×D grid", None: "tokens"}[grid]
        err = OpError(f"{what} needs {want}, got {layout(shape)}")
        if not is_tokens(shape) and len(shape) == 3:
            err.note("a C×H×W map becomes tokens with 'tokens' (ViT) or a grid with 'channels_last' (Swin)")
        elif is_tokens(shape) and shape.grid:
            err.note("'tokens' flattens the grid into H·W tokens")
        elif is_tokens(shape):
            err.note("'to_map HxW' makes the tokens a map again, 'channels_last' then makes it a grid")
        raise err
    return shape


def no_prefix(t: Tokens, what: str) -> None:
    if t.prefix:
        raise OpError(f"{what}: the tokens hold {t.prefix} learned token{'s' * (t.prefix > 1)} (class, "
                      "distillation, register) in front, which have no place in a map").note(
            "read one with 'token 0', or pool the patch tokens with 'avgpool'")


def tokens_shape(a: dict, ins: list[Shape]) -> Shape:
    s = ins[0]
    if is_tokens(s) and s.grid:
        return Tokens((s[0], s[1] * s[2]))
    if is_tokens(s) or len(s) not in (2, 3):
        raise OpError(f"tokens needs a C×H×W map, a C×L sequence or an H×W×D grid, got {layout(s)}")
    return Tokens((s[0], s[1] * (s[2] if len(s) == 3 else 1)))


def to_map_shape(a: dict, ins: list[Shape]) -> Shape:
    t = need_tokens(ins[0], "to_map")
    no_prefix(t, "to_map")
    h, w = sizes(a["size"], 2)
    if h * w != t[1] or h <= 0 or w <= 0:
        raise OpError(f"to_map {h}x{w}: {h}·{w} = {h * w} positions, but there are {t[1]} tokens")
    return (t[0], h, w)


def transpose_shape(a: dict, ins: list[Shape]) -> Shape:
    t = need_tokens(ins[0], "transpose")
    no_prefix(t, "transpose")
    return Tokens((t[1], t[0]))


def channels_last_shape(a: dict, ins: list[Shape]) -> Shape:
    s = ins[0]
    if is_tokens(s) or len(s) != 3:
        raise OpError(f"channels_last needs a C×H×W map, got {layout(s)}")
    return Tokens(s)


def channels_first_shape(a: dict, ins: list[Shape]) -> Shape:
    t = need_tokens(ins[0], "channels_first", grid=True)
    return tuple(t)


def learned_shape(kind: str):
    def shape(a: dict, ins: list[Shape]) -> Shape:
        t = need_tokens(ins[0], kind)
        n = a.get("count", 1)
        return Tokens((t[0], t[1] + n), t.prefix + n)
    return shape


def pos_embed_shape(a: dict, ins: list[Shape]) -> Shape:
    t = need_tokens(ins[0], "pos_embed")
    if a["length"] and a["length"] != t[1]:
        raise OpError(f"pos_embed {a['length']}: the embedding holds {a['length']} positions, but there are "
                      f"{t[1]} tokens" + (f" ({t.prefix} learned + {t[1] - t.prefix} patches)" if t.prefix else "")
                      ).note("leave the length out to take the tokens' number")
    return t


def token_shape(a: dict, ins: list[Shape]) -> Shape:
    t = need_tokens(ins[0], "token")
    i = a["index"]
    if not 0 <= i < t.prefix:
        what = "no learned tokens" if not t.prefix else f"{t.prefix} learned token{'s' * (t.prefix > 1)}"
        raise OpError(f"token {i} reads a learned token, but these tokens hold {what} in front").note(
            "prepend one with 'class_token' (after 'tokens'), or pool the tokens with 'avgpool'")
    return (t[0],)


def patch_merge_shape(a: dict, ins: list[Shape]) -> Shape:
    t = need_tokens(ins[0], "patch_merge", grid=True)
    return Tokens((4 * t[0], -(-t[1] // 2), -(-t[2] // 2)))


def learned(kind: str, doc: str, count: bool = False) -> Op:
    attrs = ((Attr("count", int, check=positive),) if count else ()) + (Attr("std", NUM, 0.0, check=non_negative),)
    return Op(kind, doc, ("count",) if count else (), attrs, learned_shape(kind),
              lambda a, i, o: a.get("count", 1) * i[0][0], label=lambda a, brief, k=kind: k.replace("_", " "),
              weights="trained")


OPS = (
    Op("tokens", "flatten a C×H×W map into H·W tokens of width C, row by row (ViT's patches; also a grid or "
       "a C×L sequence): conv 768 k16 s16 p0 bias; tokens", (), (), tokens_shape, label=lambda a, b: "→ tokens"),
    Op("to_map", "N = H·W tokens back to a D×H×W map: to_map 14x14", ("size",), (Attr("size", SIZE),),
       to_map_shape,
       label=lambda a, b: f"→ map {fmt(sizes(a['size'], 2))}"),
    Op("transpose", "N×D tokens → D×N, so that an fc mixes tokens (MLP-Mixer): transpose", (), (),
       transpose_shape, label=lambda a, b: "transpose"),
    Op("channels_last", "a C×H×W map as an H×W×C grid (Swin's layout: norms and fc act on C)", (), (),
       channels_last_shape, label=lambda a, b: "→ H×W×C"),
    Op("channels_first", "an H×W×C grid back to a C×H×W map", (), (), channels_first_shape, label=lambda a, b: "→ C×H×W"),
    learned("class_token", "prepend a learned class token (ViT; torchvision: zeros; std S: truncated normal)"),
    learned("dist_token", "a learned distillation token after the class token (DeiT)"),
    learned("register_tokens", "COUNT learned register tokens after the class token (Darcet et al. 2024)",
            count=True),
    Op("pos_embed", "add a learned position embedding, one D-vector per token (ViT: normal, std 0.02): "
       "pos_embed [LENGTH] (0, the default: the tokens' number)", ("length",), (Attr("length", int, 0, check=non_negative), Attr("std", NUM, 0.02, check=non_negative)),
       pos_embed_shape, lambda a, i, o: o[0] * o[1], label=lambda a, b: "+ position embedding",
       weights="trained"),
    Op("token", "read learned token I (the class token: token 0) as a D-vector: token 0", ("index",),
       (Attr("index", int),), token_shape,
       label=lambda a, b: f"token {a['index']}", window=lambda a, ins: None),
    Op("patch_merge", "Swin's patch merging: each 2×2 patch of an H×W×D grid → one 4D position", (), (),
       patch_merge_shape, label=lambda a, b: "patch merge 2×2",
       window=lambda a, ins: (2, 2, 1)),
)
