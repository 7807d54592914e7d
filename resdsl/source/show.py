"""`resdsl show`: the explicit net written back in the language, every value resolved.

One block definition per stage, its layers with every attribute written out (defaults filled in;
a conv's padding stays implicit when it is the computed 'same' padding); where the first block
of a stage differs (its stride or dilation), that attribute is a parameter the stage sets, as in
a hand-written spec. The text parses back to the same network (tests/source/test_show.py).
"""
from __future__ import annotations

import re
from typing import Any

from ..errors import SpecError
from ..frontend import ast
from ..frontend.parse import parse_expr
from ..frontend.unparse import GENERATED, Generator, literal, literal_text
from ..ir import ops
from ..ir.kinds import MERGE_MODES
from ..ir.net import Block, Dataflow, Layer, Net, Parallel, Section, Stage
from .fmt import format_text


def show_net(net: Net, spec: str = "") -> str:
    """The resolved spec text of `net` (formatted by resdsl fmt)."""
    args = ", ".join(f"{k} = {value(v)}" for k, v in net.args.items() if value(v) is not None)
    out = [f"# {net.name}({args}) from {spec}, resolved by `resdsl show`", ""]
    body, used, written = [], {}, set()          # block definitions written for blocks used as layers: name -> body
    defs, calls = _calls(net)
    for d in defs:
        out += [d, ""]
    for part in net.body:
        if isinstance(part, Stage):
            defn, stmt = _stage(part, calls)
            out += [defn, ""]
            body.append(stmt)
        else:
            inner = dict(calls)
            for blk in (b for b in part.items if isinstance(b, Block)):
                body_text = _block_body(blk, calls)
                # the block keeps its definition's name: it names the module (`stem.repvgg_down1`)
                name = next(f"{blk.block}{'_' * k}{k or ''}" for k in range(len(used) + 1)
                            if used.setdefault(f"{blk.block}{'_' * k}{k or ''}", body_text) == body_text)
                if name not in written:
                    written.add(name)
                    out += [f"# {blk.name}: {blk.block}\nblock {name}() {{\n{body_text}\n}}", ""]
                inner[(blk.name, None)] = name
            word = f"aux weight {value(part.weight)}" if part.role == "aux" else part.role
            body.append(f"{word} {items(part.items, inner)}")
    head = [f"input {'x'.join(map(str, net.input_shape))}"]
    head += [f"init {' '.join(w if isinstance(w, str) else value(w) for w in v.words())}" if name == "fill"
             else f"init {name}" + (f" {value(v)}" if v is not None else "") for name, v in net.init]
    params = ", ".join(f"{k} = {value(v)}" for k, v in net.args.items() if value(v) is not None)
    out.append(f"network {net.name}({params}) {{\n" + "\n".join(head + body) + "\n}")
    return format_text("\n".join(out) + "\n", "<show>")


def value(v: Any) -> str | None:
    """A Python value as a spec expression (None when the language has no literal for it)."""
    return literal_text(v)


def layer(lay: Layer, params: dict[tuple[str, str], str] | None = None) -> str:
    """`conv 64 k3 s1 d1 g1 bias false`: the op, its positional value, then every attribute."""
    return Generator().clause(layer_clause(lay, params), 0)


def layer_clause(lay: Layer, params: dict[tuple[str, str], str] | None = None) -> ast.clause:
    """The layer as the clause a spec writes for it; `params`: attributes written as an expression
    of the block's parameters (`stride`, `[1, 2][i]`) instead of their value."""
    op = ops.OPS[lay.kind]
    words: list = []
    for attr in op.attrs:
        v = lay.attrs.get(attr.name)
        if params and (lay.name, attr.name) in params:
            expr = parse_expr(params[(lay.name, attr.name)], "<show>")
            words += [expr] if attr.name in op.positional else [_word(attr.short or attr.name), expr]
        elif v is None or implied(op, lay.attrs, attr.name):
            continue
        elif attr.name in op.positional:
            words.append(literal(v))
        elif attr.short and (isinstance(v, int) and not isinstance(v, bool) and v >= 0 or _pair(v)):
            words.append(_word(attr.short + ("x".join(map(str, v)) if _pair(v) else str(v))))
        else:
            words += [_word(attr.name), literal(v)]
    return ast.clause(keyword=lay.kind, keyword_span=GENERATED, args=tuple(words), span=GENERATED)


def _word(text: str) -> ast.name:
    return ast.name(id=text, span=GENERATED)


def implied(op: ops.Op, attrs: dict, name: str) -> bool:
    """Whether a resolved value is what the op derives when the attribute is left out (`same`
    padding, a pool's stride): then it stays implicit. Defaults that need the input shape are written."""
    if op.attr(name).default is not None:
        return False
    try:
        return op.resolve({**attrs, name: None}, None).get(name) == attrs[name]
    except (TypeError, ops.OpError):
        return False


def _pair(v) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) and x >= 0 for x in v)


def items(seq, params=None) -> str:
    """Layers and parallel merges: `{ a; b }` when short, else a line from each weighted layer on."""
    if len(seq) == 1 and isinstance(seq[0], Dataflow):
        lines = _flow(seq[0], params)
        one = "; ".join("; ".join(ln) for ln in lines)
        return "{ " + one + " }" if len(one) <= 64 else "{\n" + "\n".join("; ".join(ln) for ln in lines) + "\n}"
    parts = _items(seq, params)
    if sum(len(p) + 2 for p in parts) <= 64:
        return "{ " + "; ".join(parts) + " }" if parts else "{}"
    lines: list[list[str]] = []
    for it, p in zip(seq, parts):
        if not lines or not (isinstance(it, Layer) and ops.OPS[it.kind].fold):
            lines.append([])
        lines[-1].append(p)
    return "{\n" + "\n".join("; ".join(ln) for ln in lines) + "\n}"




def _flow(d: Dataflow, params=None) -> list[list[str]]:
    """A dataflow body's statements, a line from each `from` or merge on: a tensor read other than
    by the next step gets a name (`-> t1`), a step not reading the current tensor starts `from t`."""
    reads: dict[str, int] = {}
    for st in d.steps:
        for t in st.inputs:
            reads[t] = reads.get(t, 0) + 1
    names = {"x": "x"}
    made = {st.output: k for k, st in enumerate(d.steps)}
    last_read = {t: k for k, st in enumerate(d.steps) for t in st.inputs} | {d.output: len(d.steps)}
    bases = {t.split("%")[0] for t in made}

    def name(t: str) -> str:
        """The spec's name (`a` for `a%3`, a name given again) where no other tensor of that name
        is made while t is still read, else a fresh `tN`."""
        if t not in names:
            b = t.split("%")[0]
            clash = (b == "x" and t != "x") or any(
                o != t and o.split("%")[0] == b and made[t] < made[o] < last_read.get(t, -1) for o in made)
            fresh = (f"t{k}" for k in range(1, 10 ** 6))
            names[t] = b if re.fullmatch(r"[A-Za-z_]\w*", b) and not clash else next(
                n for n in fresh if n not in names.values() and n not in bases)
        return names[t]

    def is_merge(it) -> bool:
        return isinstance(it, Layer) and not ops.OPS[it.kind].builds_module

    lines: list[list[str]] = []
    cur = "x"
    for k, st in enumerate(d.steps):
        nxt = d.steps[k + 1] if k + 1 < len(d.steps) else None
        if is_merge(st.item):
            lines.append([f"{st.item.kind} " + " ".join(name(t) for t in st.inputs)])
        else:
            text = _items([st.item], params)[0]
            if st.inputs[0] != cur:
                lines.append([f"from {name(st.inputs[0])}", text])
            elif lines:
                lines[-1].append(text)
            else:
                lines.append([text])
        chained = nxt is not None and not is_merge(nxt.item) and nxt.inputs[0] == st.output and reads[st.output] == 1
        last = nxt is None and st.output == d.output and len(names) > 1
        if not chained and not last and (reads.get(st.output) or st.output == d.output):
            if lines[-1][-1].endswith("}"):      # `parallel {...} -> t` does not parse: name it on its own
                lines[-1].append(f"-> {name(st.output)}")
            else:
                lines[-1][-1] += f" -> {name(st.output)}"
        cur = st.output
    if cur != d.output:
        lines.append([f"from {name(d.output)}"])
    return lines


def _items(seq, params=None) -> list[str]:
    out = []
    for it in seq:
        if isinstance(it, Layer):
            out.append(layer(it, params))
        elif isinstance(it, Parallel):
            branches = "\n".join(f"branch {items(b, params)}" for b in it.branches)
            out.append(f"parallel {it.mode} {{\n{branches}\n}}")
        elif params and (it.name, None) in params:          # a block used as a layer (`stem { unit 48 }`)
            out.append(params[(it.name, None)])
        else:
            raise SpecError(f"show: a block inside '{it.name}' cannot be written back yet", it.span)
    return out


def _stage(st: Stage, calls: dict) -> tuple[str, str]:
    """The stage's block definition and its `stage` statement. Where blocks differ (the first
    one's stride, a per-block rate), the value is `[v0, v1, ...][i]`, i the block's index. A stage
    whose steps are several units (`stage x 12 [attention_unit(12), mlp_unit(3072)]`) gets one
    definition per unit of the step and a list of calls."""
    names = st.block.split(" + ")
    if len(names) > 1:
        return _stage_steps(st, names, calls)
    first, n = st.blocks[0], len(st.blocks)
    skeletons = {_block_body(b, calls, mask=True) for b in st.blocks}
    if len(skeletons) > 1:
        try:
            return _stage_first_differs(st, calls)
        except SpecError:
            return _stage_per_block(st, calls)
    raw = _varying(st.blocks)
    first_only = raw and all(k[1] == "stride" and len(set(map(str, v[1:]))) == 1 for k, v in raw.items()) \
        and len({str(v[0]) for v in raw.values()}) == 1
    if first_only:      # the usual case: `stage x 4 unit stride 2` strides the first block only
        varying = {k: "stride" for k in raw}
        params, tail = f"stride = {value(next(iter(raw.values()))[1])}", f" stride {value(next(iter(raw.values()))[0])}"
    else:
        varying = {k: _indexed(v) if k != (None, "shortcut") else "[" + ", ".join(v) + "][i]" for k, v in raw.items()}
        params, tail = ("i", _index_arg(st, raw)) if raw else ("", "")
    name = f"{st.block}_{st.name.replace('.', '')}"
    call = ", ".join(f"{k} = {value(v)}" for k, v in first.args.items() if value(v) is not None)
    defn = (f"# {st.name}: {n} × {st.block}({call})\nblock {name}({params}) {{\n"
            + _block_body(first, {**calls, **varying}) + "\n}")
    return defn, f"stage x {n} {name}{tail}" + _share(st)


def _stage_steps(st: Stage, names: list[str], calls: dict) -> tuple[str, str]:
    """A stage of steps of k units: each unit position written as a stage of its own, then one
    `stage x n [a(...), b(...)] [stride S]` statement calling them all."""
    k = len(names)
    defs, refs, tail = [], [], ""
    for j, name in enumerate(names):
        sub = st.model_copy(update={"block": name, "blocks": st.blocks[j::k], "name": f"{st.name}.{j}"})
        defn, stmt = _stage(sub, calls)
        defs.append(defn)
        call = stmt.split(" ", 3)[3]                       # `NAME(block_index)`, `NAME stride 2` or `NAME`
        if " stride " in call:
            call, _, stride = call.partition(" stride ")
            tail = f" stride {stride}"
        refs.append(call if call.endswith(")") else call + "()")
    return "\n\n".join(defs), f"stage x {len(st.blocks) // k} [{', '.join(refs)}]{tail}"


def _stage_first_differs(st: Stage, calls: dict) -> tuple[str, str]:
    """A stage whose first block has other layers than the rest (ShuffleNetV2's strided unit,
    Res2Net's first unit): each sequence that differs is written `{ if i == 0 { ... } else { ... } }`."""
    first, n = st.blocks[0], len(st.blocks)
    if len({_block_body(b, calls, mask=True) for b in st.blocks[1:]}) > 1:
        raise SpecError(f"show: the blocks of {st.name} differ in their layers, which one block definition "
                        "cannot express", first.span)
    raw = _varying(st.blocks, first_apart=True)
    varying = {k: _indexed(v) if k != (None, "shortcut") else "[" + ", ".join(v) + "][i]" for k, v in raw.items()}
    fields = {k: v for k, v in varying.items() if k[0] is None}
    a, b = _block_parts(first, {**calls, **fields}), _block_parts(st.blocks[1], {**calls, **varying})
    if len(a) != len(b):
        raise SpecError(f"show: the first block of {st.name} has other parts than the rest, which one block "
                        "definition cannot express", first.span)
    lines = []
    for x, y in zip(a, b):
        word = x.split(" ", 1)[0]
        if x == y or (word == "shortcut" and "{" not in x + y and (None, "shortcut") not in varying):  # _varying
            lines.append(x)
        elif word == y.split(" ", 1)[0] and x.startswith(word + " {") and y.startswith(word + " {"):
            lines.append(f"{word} {{ if i == 0 {x[len(word) + 1:]} else {y[len(word) + 1:]} }}")
        else:
            raise SpecError(f"show: the first block of {st.name} differs from the rest in '{word}', which one "
                            "block definition cannot express", first.span)
    name = f"{st.block}_{st.name.replace('.', '')}"
    call = ", ".join(f"{k} = {value(v)}" for k, v in first.args.items() if value(v) is not None)
    defn = f"# {st.name}: {n} × {st.block}({call})\nblock {name}(i) {{\n" + "\n".join(lines) + "\n}"
    return defn, f"stage x {n} {name}{_index_arg(st, raw)}" + _share(st)


def _index_arg(st: Stage, raw: dict) -> str:
    """The block-index argument of a stage statement: `(block_index)`; in a sharing stage whose
    blocks after the first are all alike, `(min(block_index, 1))`, so those blocks get the same
    arguments and share weights as they did (share pairs blocks by their arguments)."""
    if not _share(st):
        return "(block_index)"
    differ = [k[1] for k, v in raw.items() if len({str(x) for x in v[1:]}) > 1]
    if differ:                 # e.g. a linear drop_path rate over blocks that share their weights
        raise SpecError(f"show: the blocks of {st.name} share weights but differ in {', '.join(differ)}, which "
                        "one block definition with shared arguments cannot express", st.blocks[0].span)
    return "(min(block_index, 1))"


def _share(st: Stage) -> str:
    """` share` when any block of the stage takes another's weights — not only the second: when the
    first block changes the shape, the second is the first of its kind and the third shares it."""
    sharing = [b for b in st.blocks[1:] if b.shares is not None]
    return "" if not sharing else " share" + ("" if sharing[0].share_bn else " per_step_bn")


def _stage_per_block(st: Stage, calls: dict) -> tuple[str, str]:
    """The general case (MobileNetV3's table-driven stage, NF-ResNet's projecting first unit): each
    part whose text differs between blocks is one `if i == ... { ... } else { ... }` chain over the
    block index i; shortcut kinds become their layers where some block's shortcut is custom
    (identity: `shortcut { }`, which is the identity)."""
    blocks, n = st.blocks, len(st.blocks)
    fields = {}
    for f in ("scale", "gate_bias", "drop_prob"):
        vals = [getattr(b, f) for b in blocks]
        if any(v != vals[0] for v in vals):
            fields[(None, f)] = _indexed(vals)
    custom = any(b.shortcut.kind == "custom" for b in blocks)
    per_block = []
    for b in blocks:
        parts: dict[str, str] = {}
        for line in _block_parts(b, {**calls, **fields}):
            word = line.split(" ", 1)[0]
            key = f"{word}{sum(k.startswith(word) for k in parts)}" if word == "residual" else word
            text = line[len(word) + 1:]
            if word == "shortcut" and custom and not text.startswith("{"):
                if b.shortcut.kind not in ("identity", "projection", "projection_all", "avgdown"):
                    raise SpecError(f"show: the blocks of {st.name} mix a '{text}' shortcut with custom ones, "
                                    "which one block definition cannot express", b.span)
                text = items(b.shortcut.layers) if b.shortcut.layers else "{ }"
            parts[key] = text
        per_block.append(parts)
    if len({b.merge for b in blocks}) > 1:
        raise SpecError(f"show: the blocks of {st.name} differ in their merge, which one block definition "
                        "cannot express", blocks[0].span)
    kinds = [b.shortcut.kind for b in blocks]
    if not custom and len(set(kinds)) > 1:
        for parts in per_block:
            parts["shortcut"] = "[" + ", ".join(kinds) + "][i]"
    keys = list(dict.fromkeys(k for parts in per_block for k in parts))
    lines = []
    for key in keys:
        texts = [parts.get(key) for parts in per_block]
        word = key.rstrip("0123456789")
        if all(t == texts[0] for t in texts):
            lines.append(f"{word} {texts[0]}")
            continue
        if not all(t is None or t.startswith("{") for t in texts) or (word == "residual" and None in texts):
            raise SpecError(f"show: the blocks of {st.name} differ in '{word}', which one block definition "
                            "cannot express", blocks[0].span)
        groups: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            groups.setdefault(t[1:-1].strip() if t else "", []).append(i)
        chain = ""
        for body, idx in reversed(list(groups.items())):
            cond = " or ".join(f"i == {i}" for i in idx)
            chain = (f"if {cond} {{ {body} }}" + (f" else {{ {chain} }}" if chain else "")) if body or chain else chain
        lines.append(f"{word} {{ {chain} }}")
    name = f"{st.block}_{st.name.replace('.', '')}"
    call = ", ".join(f"{k} = {value(v)}" for k, v in blocks[0].args.items() if value(v) is not None)
    defn = f"# {st.name}: {n} × {st.block}({call}), block by block\nblock {name}(i) {{\n" + "\n".join(lines) + "\n}"
    return defn, f"stage x {n} {name}(block_index)"


def _varying(blocks, first_apart: bool = False) -> dict:
    """{(layer suffix, attribute) or (None, block field): [value per block]} where blocks differ;
    `first_apart`: layers compared from the second block on (the first is written apart)."""
    out = {}
    per_block = [list(_layers(b)) for b in (blocks[1:] if first_apart else blocks)]
    for j, lay in enumerate(per_block[0]):
        for k in lay.attrs:
            values = [layers[j].attrs.get(k) for layers in per_block]
            if any(v != values[0] for v in values):
                out[(_suffix(lay.name), k)] = values[:1] * first_apart + values
    for field in ("scale", "gate_bias", "drop_prob"):
        values = [getattr(b, field) for b in blocks]
        if any(v != values[0] for v in values):
            out[(None, field)] = values
    kinds = [b.shortcut.kind for b in blocks]
    # `shortcut projection` (zeropad, avgdown) is an identity where the shape stays: no need to vary
    resolves = kinds[0] in ("projection", "zeropad", "avgdown") and set(kinds[1:]) <= {"identity"}
    if any(k != kinds[0] for k in kinds) and "custom" not in kinds and not resolves:
        out[(None, "shortcut")] = kinds             # kinds are names: `projection`
    return out


def _indexed(values) -> str:
    return "[" + ", ".join(value(v) for v in values) + "][i]"


def _suffix(name: str) -> str:
    """`stages.1.blocks.0.residual.conv1` -> `residual.conv1` (the same layer in every block)."""
    if ".blocks." in name:
        return name.split(".blocks.", 1)[1].split(".", 1)[1]
    return name


def _children(item) -> list:
    """The items directly inside an item: a block's sequences, a flow's steps, parallel branches."""
    if isinstance(item, Block):
        custom = item.shortcut.layers if item.shortcut.kind == "custom" else ()   # others are derived
        return [x for seq in (item.pre, *item.residuals, custom, item.post) for x in seq]
    if isinstance(item, Dataflow):
        return [st.item for st in item.steps]
    if isinstance(item, Parallel):
        return [x for br in item.branches for x in br]
    return []


def _layers(item):
    """Every layer of a block or item list, in order; a block used as a layer inside it is its own
    definition (its call is written, see _calls), so its layers are not the outer block's."""
    if isinstance(item, Layer):
        yield item
    for x in _children(item):
        if not isinstance(x, Block):
            yield from _layers(x)


def _inner_blocks(item) -> list[Block]:
    """The blocks used as layers anywhere inside item, each after the blocks inside it."""
    out = []
    for x in _children(item):
        out += _inner_blocks(x)
        if isinstance(x, Block):
            out.append(x)
    return out


def _calls(net: Net) -> tuple[list[str], dict]:
    """Definitions for the blocks used as layers inside stage units and flows (`wavenet` in a
    named-tensor body), one per block name, and each use's call: `{(use name, None): "wavenet 3"}`.
    Where uses differ in a value, the definition takes the use's index i and the value is `[...][i]`;
    it keeps the block's name, so the module names (`...flow.wavenet3`) are the same."""
    groups: dict[str, list[Block]] = {}
    for part in net.body:
        tops = part.blocks if isinstance(part, Stage) else part.items
        for top in tops:
            for blk in _inner_blocks(top):
                groups.setdefault(blk.block, []).append(blk)
    defs, calls = [], {}
    for name, uses in groups.items():
        if len({_block_body(b, calls, mask=True) for b in uses}) > 1:
            raise SpecError(f"show: the uses of block {name} as a layer differ in their layers, which one block "
                            "definition cannot express", uses[1].span)
        raw = _varying(uses)
        varying = {**calls, **{k: _indexed(v) for k, v in raw.items() if k != (None, "shortcut")}}
        if (None, "shortcut") in raw:
            varying[(None, "shortcut")] = "[" + ", ".join(raw[(None, "shortcut")]) + "][i]"
        defs.append(f"# {name}: used as a layer {len(uses)} times\nblock {name}({'i' if raw else ''}) {{\n"
                    + _block_body(uses[0], varying) + "\n}")
        calls.update({(b.name, None): f"{name} {k}" if raw else name for k, b in enumerate(uses)})
    return defs, calls


def _block_body(b: Block, varying: dict, mask: bool = False) -> str:
    """The body of a block definition; `mask` hides every value (to compare block structure)."""
    return "\n".join(_block_parts(b, varying, mask))


def _block_parts(b: Block, varying: dict, mask: bool = False) -> list[str]:
    """The statements of a block definition's body (`residual {...}`, `shortcut projection`, ...).
    `varying` may also hold the calls of blocks used as layers inside it (see _calls)."""
    local = {k: v for k, v in varying.items() if k[0] is not None and k[1] is None}
    for lay in _layers(b):
        for attr in lay.attrs:
            if mask:
                local[(lay.name, attr)] = "_"
            elif (_suffix(lay.name), attr) in varying:
                local[(lay.name, attr)] = varying[(_suffix(lay.name), attr)]
    field = (lambda f, v: "_") if mask else (lambda f, v: varying.get((None, f), v if f == "shortcut" else value(v)))
    lines = [f"pre {items(b.pre, local)}"] if b.pre else []
    lines += [f"residual {items(r, local)}" for r in b.residuals]
    if b.shortcut.kind == "custom":
        lines.append(f"shortcut {items(b.shortcut.layers, local)}")
    elif MERGE_MODES[b.merge].takes_shortcut:
        lines.append(f"shortcut {field('shortcut', b.shortcut.kind)}")
    if b.scale != 1.0 or (None, "scale") in varying or mask:
        lines.append(f"scale {field('scale', b.scale)}")
    if b.merge == "concat":
        lines.append("merge concat")
    elif b.merge == "gate":
        lines.append(f"merge gate k{b.gate[0].attrs['kernel']} bias {field('gate_bias', b.gate_bias)}")
    if b.drop_prob or (None, "drop_prob") in varying or mask:
        lines.append(f"drop_path {field('drop_prob', b.drop_prob)} mode {b.drop_mode}")
    if b.post:
        lines.append(f"post {items(b.post, local)}")
    return lines


__all__ = ["show_net", "layer", "value", "Section"]
