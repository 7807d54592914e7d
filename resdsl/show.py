"""`resdsl show`: the explicit net written back in the language, every value resolved.

One block definition per stage, its layers with every attribute written out (defaults filled in;
a conv's padding stays implicit when it is the computed 'same' padding); where the first block
of a stage differs (its stride or dilation), that attribute is a parameter the stage sets, as in
a hand-written spec. The text parses back to the same network (tests/test_show.py).
"""
from __future__ import annotations

import re
from typing import Any

from .errors import SpecError
from .ir import ops
from .ir.net import Block, Layer, Net, Parallel, Section, Stage

_FIRST_BLOCK_PARAMS = ("stride", "dilation")        # what a stage passes to its first block only


def show_net(net: Net, spec: str = "") -> str:
    """The resolved spec text of `net` (formatted by resdsl fmt)."""
    from .format import format_text

    args = ", ".join(f"{k} = {value(v)}" for k, v in net.params.items() if value(v) is not None)
    out = [f"# {net.name}({args}) from {spec}, resolved by `resdsl show`", ""]
    body = []
    for part in net.body:
        if isinstance(part, Stage):
            defn, stmt = _stage(part)
            out += [defn, ""]
            body.append(stmt)
        else:
            body.append(f"{part.role} {items(part.items)}")
    head = [f"input {'x'.join(map(str, net.input_shape))}"]
    head += [f"init {name}" + (f" {value(v)}" if v is not None else "") for name, v in net.init]
    head += _drop_path(net)
    params = ", ".join(f"{k} = {value(v)}" for k, v in net.params.items() if value(v) is not None)
    out.append(f"network {net.name}({params}) {{\n" + "\n".join(head + body) + "\n}")
    return format_text("\n".join(out) + "\n", "<show>")


def value(v: Any) -> str | None:
    """A Python value as a spec expression (None when the language has no literal for it)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if v >= 0 else f"-{-v}"
    if isinstance(v, float):
        return repr(v) if v >= 0 and re.fullmatch(r"[\d.e+-]+", repr(v)) else (
            f"-{repr(-v)}" if v < 0 else None)
    if isinstance(v, (list, tuple)):
        parts = [value(x) for x in v]
        return None if None in parts else "[" + ", ".join(parts) + "]"
    if isinstance(v, str):
        return v if v.isidentifier() else f'"{v}"'
    name = getattr(v, "name", None)             # a symbol (`projection`) or a block reference
    return name if isinstance(name, str) else None


def layer(lay: Layer, params: dict[tuple[str, str], str] | None = None) -> str:
    """`conv 64 k3 s1 d1 g1 bias false`: the op, its positional value, then every attribute."""
    op = ops.OPS[lay.kind]
    words = [lay.kind]
    for attr in op.attrs:
        v = lay.attrs.get(attr.name)
        if params and (lay.name, attr.name) in params:
            words += [attr.short or attr.name, params[(lay.name, attr.name)]]
        elif v is None:
            continue
        elif attr.name in op.positional:
            words.append(value(v))
        elif attr.short and (isinstance(v, int) and not isinstance(v, bool) and v >= 0 or _pair(v)):
            words.append(attr.short + ("x".join(map(str, v)) if _pair(v) else str(v)))
        else:
            words += [attr.name, value(v)]
    return " ".join(words)


def _pair(v) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) and x >= 0 for x in v)


def items(seq, params=None) -> str:
    """Layers and parallel merges: `{ a; b }` when short, else a line from each weighted layer on."""
    parts = _items(seq, params)
    if sum(len(p) + 2 for p in parts) <= 64:
        return "{ " + "; ".join(parts) + " }" if parts else "{}"
    lines: list[list[str]] = []
    for it, p in zip(seq, parts):
        if not lines or not (isinstance(it, Layer) and it.kind in _FOLLOWERS):
            lines.append([])
        lines[-1].append(p)
    return "{\n" + "\n".join("; ".join(ln) for ln in lines) + "\n}"


_FOLLOWERS = ("bn", "relu", "sigmoid", "crelu", "dropout")     # stay on the line of the layer before


def _items(seq, params=None) -> list[str]:
    out = []
    for it in seq:
        if isinstance(it, Layer):
            out.append(layer(it, params))
        elif isinstance(it, Parallel):
            branches = "\n".join(f"branch {items(b, params)}" for b in it.branches)
            out.append(f"parallel {it.mode} {{\n{branches}\n}}")
        else:
            raise SpecError(f"show: a block inside '{it.name}' cannot be written back yet", it.span)
    return out


def _stage(st: Stage) -> tuple[str, str]:
    """The stage's block definition and its `stage` statement."""
    first, rest = st.blocks[0], st.blocks[1:]
    params, stage_attrs = _first_block_params(first, rest[0] if rest else None)
    name = f"{st.block}_{st.name.replace('.', '')}"
    sig = ", ".join(f"{p} = {d}" for p, (d, _) in stage_attrs.items())
    call = ", ".join(f"{k} = {value(v)}" for k, v in first.args.items() if value(v) is not None)
    defn = f"# {st.name}: {len(st.blocks)} × {st.block}({call})\nblock {name}({sig}) {{\n" + _block_body(first, {k: p for k, p in params.items()}) + "\n}"
    stmt = f"stage x {len(st.blocks)} {name}" + "".join(f" {p} {v}" for p, (_, v) in stage_attrs.items())
    if rest and rest[0].shares is not None:
        stmt += " share" + ("" if rest[0].share_bn else " per_step_bn")
    return defn, stmt


def _first_block_params(first: Block, second: Block | None):
    """Attributes where the first block differs from the others: {(layer, attr): param}, and
    {param: (default, first block's value)}."""
    if second is None:
        return {}, {}
    params, stage_attrs = {}, {}
    for a, b in zip(_layers(first), _layers(second)):
        for k, v in a.attrs.items():
            if v == b.attrs.get(k):
                continue
            if k not in _FIRST_BLOCK_PARAMS or stage_attrs.get(k, (b.attrs[k], v)) != (b.attrs[k], v):
                raise SpecError(f"show: the first block of {first.name.rsplit('.blocks', 1)[0]} differs "
                                f"from the others in '{k}', which a stage cannot express", first.span)
            params[(_suffix(a.name), k)] = k
            stage_attrs[k] = (value(b.attrs[k]), value(v))
    return params, stage_attrs


def _suffix(name: str) -> str:
    return name.split(".blocks.", 1)[1].split(".", 1)[1]


def _layers(item):
    """Every layer of a block or item list, in order."""
    if isinstance(item, Layer):
        yield item
    elif isinstance(item, Parallel):
        for b in item.branches:
            for x in b:
                yield from _layers(x)
    elif isinstance(item, Block):
        custom = item.shortcut.layers if item.shortcut.kind == "custom" else ()   # others are derived
        for seq in (item.pre, *item.residuals, custom, item.post):
            for x in seq:
                yield from _layers(x)


def _block_body(b: Block, params: dict) -> str:
    local = {}
    for lay in _layers(b):
        for (suffix, attr), p in params.items():
            if _suffix(lay.name) == suffix:
                local[(lay.name, attr)] = p
    lines = [f"pre {items(b.pre, local)}"] if b.pre else []
    lines += [f"residual {items(r, local)}" for r in b.residuals]
    if b.shortcut.kind == "custom":
        lines.append(f"shortcut {items(b.shortcut.layers, local)}")
    elif b.combine != "concat":
        lines.append(f"shortcut {b.shortcut.kind}")
    if b.scale != 1.0:
        lines.append(f"scale {value(b.scale)}")
    if b.combine == "concat":
        lines.append("combine concat")
    elif b.combine == "gate":
        lines.append(f"combine gate k{b.gate[0].attrs['kernel']} bias {value(b.gate_bias)}")
    if b.post:
        lines.append(f"post {items(b.post, local)}")
    return "\n".join(lines)


def _drop_path(net: Net) -> list[str]:
    """`drop_path RATE linear|constant mode M` recovered from the blocks' probabilities."""
    blocks = [b for s in net.stages for b in s.blocks]
    probs = [b.drop_prob for b in blocks]
    if not any(probs):
        return []
    mode = blocks[0].drop_mode
    if len(set(probs)) == 1:
        return [f"drop_path {value(probs[0])} constant mode {mode}"]
    return [f"drop_path {value(probs[-1])} linear mode {mode}"]


__all__ = ["show_net", "layer", "value", "Section"]
