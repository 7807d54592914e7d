"""`resdsl show`: the explicit net written back in the language, every value resolved.

One block definition per stage, its layers with every attribute written out (defaults filled in;
a conv's padding stays implicit when it is the computed 'same' padding); where the first block
of a stage differs (its stride or dilation), that attribute is a parameter the stage sets, as in
a hand-written spec. Every statement is built as an AST node (frontend/ast.py) and printed by
frontend/unparse.py's `Generator` (sqlglot: producers build expression nodes, then `.sql()`), in
the layout `ShowLayout` chooses. The text parses back to the same network (tests/source/test_show.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from ..frontend import ast
from ..frontend.unparse import GENERATED, DefaultLayout, Generator, literal, weave
from ..ir import ops
from ..ir.kinds import MERGE_MODES
from ..ir.net import Block, Dataflow, Layer, Net, Parallel, Section, Stage

WIDTH = 64              # a `{ ... }` of layers stays on one line up to this many characters
ANY_WIDTH = 10 ** 6     # a `{ if ... }` around one-line bodies stays on one line


def show_net(net: Net, spec: str = "") -> str:
    """The resolved spec text of `net`: the nodes `show_tree` builds, printed by the Generator."""
    shown = show_tree(net, spec)
    out = [f"# {shown.header}"]
    for comment, node in shown.items:
        text = weave(Generator(shown.layout).module(ast.module(items=(node,), span=GENERATED)), [], "")
        out.append((f"# {comment}\n" if comment else "") + text.rstrip("\n"))
    return "\n\n".join(out) + "\n"


@dataclass
class Shown:
    """A net as AST nodes: its block definitions and network, each with a comment above it, and
    the layout that prints them."""
    header: str
    items: list[tuple[str | None, ast.Node]]
    layout: "ShowLayout"

    @property
    def module(self) -> ast.module:
        return ast.module(items=tuple(node for _, node in self.items), span=GENERATED)


class ShowLayout(DefaultLayout):
    """Show's layout, chosen as it builds: a `{ ... }` stays on one line when its statements fit
    in its width (and, broken over lines by an enclosing `if`, keeps them on one line); else a
    statement joins the line before it where show says so (`conv 64 k3; bn; relu`, `from a; conv`)."""

    def __init__(self):
        self.fits: dict[int, ast.seq] = {}         # the `{ ... }` written on one line
        self.joins: dict[int, ast.Node] = {}       # statements written on the line before them

    def seq(self, stmts, width: int = WIDTH, joined=()) -> ast.seq:
        """A `{ ... }` of `stmts`; `joined[k]`: statement k goes on the line of statement k - 1."""
        node = ast.seq(stmts=tuple(stmts), span=GENERATED)
        texts = [Generator(self).stmt(s, 0) for s in node.stmts]
        if all(isinstance(t, str) for t in texts) and sum(len(t) + 2 for t in texts) <= width:
            self.fits[id(node)] = node
            joined = [k > 0 for k in range(len(node.stmts))]
        self.joins.update({id(s): s for s, j in zip(node.stmts, joined) if j})
        return node

    def inline(self, container, parts: list[str]) -> bool:
        if isinstance(container, ast.seq):
            return self.fits.get(id(container)) is container
        return super().inline(container, parts)

    def same_line(self, before, after) -> bool:
        return self.joins.get(id(after)) is after

    def braced(self, post: ast.post) -> bool:
        return True


@dataclass
class StageForm:
    """A stage written back: its block definitions and the arguments of `stage x COUNT ...`."""
    defs: list[tuple[str, ast.block_def]]
    count: int
    ref: ast.Expr                                 # `name`, `name(block_index)` or `[a(), b()]`
    tail: tuple = ()                               # `stride 2`
    share: tuple = ()                              # `share [per_step_bn]`

    def statement(self) -> ast.stage:
        return ast.stage(args=(_name("x"), _int(self.count), self.ref, *self.tail, *self.share), span=GENERATED)


def show_tree(net: Net, spec: str = "") -> Shown:
    """The net as block definitions and one network statement (see `Writer`)."""
    return Writer().net(net, spec)


# ---- expressions ----

def _name(text: str) -> ast.name:
    return ast.name(id=text, span=GENERATED)


def _int(n: int) -> ast.int_lit:
    return ast.int_lit(value=n, span=GENERATED)


I = _name("i")                  # the block index a definition takes
BLANK = _name("_")              # every value, hidden to compare the structure of blocks


def _call(func: str, args) -> ast.call:
    """`func(a, k = v)` from (name or None, expression) pairs."""
    return ast.call(func=_name(func), args=tuple(ast.arg(name=k, value=v, span=GENERATED) for k, v in args),
                    span=GENERATED)


def _call_text(func: str, args: dict) -> str:
    """`bneck(kernel = 3, se = true)`: a call with the arguments that have a literal (for comments)."""
    return Generator().expr(_call(func, [(k, literal(v)) for k, v in args.items() if literal(v) is not None]))


def _params(args: dict) -> tuple[ast.param, ...]:
    return tuple(ast.param(name=k, default=literal(v), span=GENERATED) for k, v in args.items()
                 if literal(v) is not None)


def _indexed(values, key: ast.Expr = I, names: bool = False) -> ast.index:
    """`[v0, v1, ...][i]`: the value of each block (`names`: words such as shortcut kinds)."""
    items = tuple(_name(v) if names else literal(v) for v in values)
    return ast.index(target=ast.list_lit(items=items, span=GENERATED), key=key, span=GENERATED)


def _binop(op: str, left: ast.Expr, right: ast.Expr) -> ast.binop:
    return ast.binop(op=op, left=left, right=right, span=GENERATED)


def _condition(idx: list[int], n: int) -> ast.Expr | None:
    """The test that holds for the block indices idx of 0..n-1 (None: all of them): `i == 0`,
    `i == 1 or i == 2`, a range `i >= 3`, `i <= 4`, `i >= 3 and i <= 7`."""
    if len(idx) == n:
        return None
    if len(idx) >= 3 and idx == list(range(idx[0], idx[-1] + 1)):
        low = _binop(">=", I, _int(idx[0])) if idx[0] else None
        high = _binop("<=", I, _int(idx[-1])) if idx[-1] < n - 1 else None
        if low is None or high is None:
            return low or high
        return ast.and_op(left=low, right=high, span=GENERATED)
    test = _binop("==", I, _int(idx[0]))
    for k in idx[1:]:
        test = ast.or_op(left=test, right=_binop("==", I, _int(k)), span=GENERATED)
    return test


# ---- layers ----

def layer_clause(lay: Layer, params: dict | None = None) -> ast.clause:
    """`conv 64 k3 s1 d1 g1 bias false`: the op, its positional value, then every attribute;
    `params`: attributes written as an expression of the block's parameters (`stride`, `[1, 2][i]`)
    instead of their value."""
    op = ops.OPS[lay.kind]
    words: list = []
    for attr in op.attrs:
        v = lay.attrs.get(attr.name)
        if params and (lay.name, attr.name) in params:
            expr = params[(lay.name, attr.name)]
            words += [expr] if attr.name in op.positional else [_name(attr.short or attr.name), expr]
        elif v is None or implied(op, lay.attrs, attr.name):
            continue
        elif attr.name in op.positional:
            words.append(literal(v))
        elif attr.short and (isinstance(v, int) and not isinstance(v, bool) and v >= 0 or _pair(v)):
            words.append(_name(attr.short + ("x".join(map(str, v)) if _pair(v) else str(v))))
        else:
            words += [_name(attr.name), literal(v)]
    return ast.clause(keyword=lay.kind, keyword_span=GENERATED, args=tuple(words), span=GENERATED)


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


def _is_merge(it) -> bool:
    return isinstance(it, Layer) and not ops.OPS[it.kind].builds_module


def _keyword(stmt) -> str:
    """The word a block statement starts with: `residual`, `scale`, `drop_path`, ..."""
    return type(stmt).__name__.removesuffix("_stmt")


class Writer:
    """Builds the AST of a net, recording in `layout` which lines show keeps together."""

    def __init__(self):
        self.layout = ShowLayout()

    def net(self, net: Net, spec: str) -> Shown:
        defs, calls = self.calls(net)
        items: list[tuple[str | None, ast.Node]] = list(defs)
        body: list = [ast.input_stmt(shape=tuple(net.input_shape), value=None, span=GENERATED)]
        body += [ast.init_stmt(args=tuple(_name(w) if isinstance(w, str) else literal(w) for w in v.words()),
                               span=GENERATED) if name == "fill"
                 else ast.init_stmt(args=(_name(name), *(() if v is None else (literal(v),))), span=GENERATED)
                 for name, v in net.init]
        used: dict[str, tuple] = {}          # block definitions written for blocks used as layers: name -> body
        for part in net.body:
            if isinstance(part, Stage):
                form = self.stage(part, calls)
                items += form.defs
                body.append(form.statement())
            else:
                body.append(self.section(part, calls, used, items))
        network = ast.network(name=net.name, params=_params(net.args), body=tuple(body), span=GENERATED)
        header = f"{_call_text(net.name, net.args)} from {spec}, resolved by `resdsl show`"
        return Shown(header, [*items, (None, network)], self.layout)

    def section(self, part: Section, calls: dict, used: dict, items: list):
        """`stem { ... }`, `aux weight 0.3 { ... }`: a block used as a layer in it gets a definition of
        its own (added to `items`, once per name and body in `used`) and is called by that name."""
        inner = dict(calls)
        for blk in (b for b in part.items if isinstance(b, Block)):
            parts = tuple(self.block_parts(blk, calls))
            # the block keeps its definition's name: it names the module (`stem.repvgg_down1`)
            names = (f"{blk.block}{'_' * k}{k or ''}" for k in range(len(used) + 1))
            name = next(n for n in names if used.get(n, parts) == parts)
            if name not in used:
                used[name] = parts
                items.append((f"{blk.name}: {blk.block}", self.block_def(name, (), parts)))
            inner[(blk.name, None)] = ast.clause(keyword=name, keyword_span=GENERATED, args=(), span=GENERATED)
        seq = self.items(part.items, inner)
        if part.role == "aux":
            return ast.aux(weight=literal(part.weight), body=seq, span=GENERATED)
        return getattr(ast, part.role)(body=seq, span=GENERATED)

    @staticmethod
    def block_def(name: str, params, body) -> ast.block_def:
        return ast.block_def(name=name, params=tuple(params), body=tuple(body), span=GENERATED)

    # ---- sequences ----

    def items(self, seq, params=None) -> ast.seq:
        """Layers and parallel merges: `{ a; b }` when short, else a line from each weighted layer on."""
        if len(seq) == 1 and isinstance(seq[0], Dataflow):
            return self.flow(seq[0], params)
        joined = [k > 0 and isinstance(it, Layer) and ops.OPS[it.kind].fold for k, it in enumerate(seq)]
        return self.layout.seq(self.item_nodes(seq, params), WIDTH, joined)

    def item_nodes(self, seq, params=None) -> list:
        out = []
        for it in seq:
            if isinstance(it, Layer):
                out.append(layer_clause(it, params))
            elif isinstance(it, Parallel):
                branches = tuple(ast.branch(body=self.items(b, params), span=GENERATED) for b in it.branches)
                out.append(ast.parallel(mode=it.mode, mode_span=GENERATED, branches=branches, span=GENERATED))
            elif params and (it.name, None) in params:          # a block used as a layer (`stem { unit 48 }`)
                out.append(params[(it.name, None)].model_copy())
            else:
                raise SpecError(f"show: a block inside '{it.name}' cannot be written back yet", it.span)
        return out

    def flow(self, d: Dataflow, params=None) -> ast.seq:
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

        stmts, joined = [], []

        def put(node, join: bool) -> None:
            stmts.append(node)
            joined.append(join)

        cur = "x"
        for k, st in enumerate(d.steps):
            nxt = d.steps[k + 1] if k + 1 < len(d.steps) else None
            if _is_merge(st.item):
                put(ast.clause(keyword=st.item.kind, keyword_span=GENERATED,
                               args=tuple(_name(name(t)) for t in st.inputs), span=GENERATED), False)
            else:
                node = self.item_nodes([st.item], params)[0]
                if st.inputs[0] != cur:
                    put(ast.from_stmt(tensor=name(st.inputs[0]), span=GENERATED), False)
                put(node, bool(stmts))
            chained = nxt is not None and not _is_merge(nxt.item) and nxt.inputs[0] == st.output \
                and reads[st.output] == 1
            last = nxt is None and st.output == d.output and len(names) > 1
            if not chained and not last and (reads.get(st.output) or st.output == d.output):
                if isinstance(stmts[-1], ast.clause):
                    stmts[-1] = stmts[-1].model_copy(update={"outputs": (name(st.output),)})
                else:                        # `parallel {...} -> t` does not parse: name it on its own
                    put(ast.tap(names=(name(st.output),), span=GENERATED), True)
            cur = st.output
        if cur != d.output:
            put(ast.from_stmt(tensor=name(d.output), span=GENERATED), False)
        return self.layout.seq(stmts, WIDTH + 2, joined)

    # ---- blocks ----

    def block_parts(self, b: Block, varying: dict, mask: bool = False, custom: bool = False) -> list:
        """The statements of a block definition's body (`residual {...}`, `shortcut projection`, ...).
        `varying`: expressions for values that differ between blocks, {(layer suffix, attribute) or
        (None, block field): expression}; it may also hold the calls of blocks used as layers inside
        it (see `calls`). `mask` hides every value (to compare block structure); `custom` writes a
        derived shortcut as its layers (identity: `shortcut { }`)."""
        local = {k: v for k, v in varying.items() if k[0] is not None and k[1] is None}
        derived = b.shortcut.layers if custom and b.shortcut.kind != "custom" else ()
        for lay in [*_layers(b), *(x for it in derived for x in _layers(it))]:
            for attr in lay.attrs:
                if mask:
                    local[(lay.name, attr)] = BLANK
                elif (_suffix(lay.name), attr) in varying:
                    local[(lay.name, attr)] = varying[(_suffix(lay.name), attr)]

        def field(name: str, v):
            if mask:
                return BLANK
            return varying.get((None, name), _name(v) if name == "shortcut" else literal(v))

        g = GENERATED
        out: list = [ast.pre(body=self.items(b.pre, local), span=g)] if b.pre else []
        out += [ast.residual(body=self.items(r, local), span=g) for r in b.residuals]
        if b.shortcut.kind == "custom":
            out.append(ast.shortcut(body=self.items(b.shortcut.layers, local), args=(), span=g))
        elif custom and MERGE_MODES[b.merge].takes_shortcut:
            out.append(ast.shortcut(body=self.items(derived, local), args=(), span=g))
        elif MERGE_MODES[b.merge].takes_shortcut:
            out.append(ast.shortcut(body=None, args=(field("shortcut", b.shortcut.kind),), span=g))
        if b.scale != 1.0 or (None, "scale") in varying or mask:
            out.append(ast.scale_stmt(value=field("scale", b.scale), span=g))
        if b.merge == "concat":
            out.append(ast.merge_stmt(args=(_name("concat"),), span=g))
        elif b.merge == "gate":
            out.append(ast.merge_stmt(args=(_name("gate"), _name(f"k{b.gate[0].attrs['kernel']}"), _name("bias"),
                                            field("gate_bias", b.gate_bias)), span=g))
        if b.drop_prob or (None, "drop_prob") in varying or mask:
            out.append(ast.drop_path_stmt(args=(field("drop_prob", b.drop_prob), _name("mode"),
                                                _name(b.drop_mode)), span=g))
        if b.post:
            out.append(ast.post(body=self.items(b.post, local), span=g))
        return out

    def structure(self, b: Block, calls: dict) -> tuple:
        """The block's statements with every value hidden: equal for blocks one definition can write."""
        return tuple(self.block_parts(b, calls, mask=True))

    def varying(self, raw: dict) -> dict:
        """{key: [value per block]} (see `_varying`) -> {key: `[v0, v1, ...][i]`}."""
        return {k: _indexed(v, names=k == (None, "shortcut")) for k, v in raw.items()}

    def calls(self, net: Net) -> tuple[list, dict]:
        """Definitions for the blocks used as layers inside stage units and flows (`wavenet` in a
        named-tensor body), one per block name, and each use's call: `{(use name, None): wavenet 3}`.
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
            if len({self.structure(b, calls) for b in uses}) > 1:
                raise SpecError(f"show: the uses of block {name} as a layer differ in their layers, which one block "
                                "definition cannot express", uses[1].span)
            raw = _varying(uses)
            body = self.block_parts(uses[0], {**calls, **self.varying(raw)})
            params = [ast.param(name="i", default=None, span=GENERATED)] if raw else []
            defs.append((f"{name}: used as a layer {len(uses)} times", self.block_def(name, params, body)))
            calls.update({(b.name, None): ast.clause(keyword=name, keyword_span=GENERATED,
                                                     args=(_int(k),) if raw else (), span=GENERATED)
                          for k, b in enumerate(uses)})
        return defs, calls

    # ---- stages ----

    def stage(self, st: Stage, calls: dict) -> StageForm:
        """The stage's block definition and its `stage` statement. Where blocks differ (the first
        one's stride, a per-block rate), the value is `[v0, v1, ...][i]`, i the block's index. A stage
        whose steps are several units (`stage x 12 [attention_unit(12), mlp_unit(3072)]`) gets one
        definition per unit of the step and a list of calls."""
        names = st.block.split(" + ")
        if len(names) > 1:
            return self.stage_steps(st, names, calls)
        first, n = st.blocks[0], len(st.blocks)
        if len({self.structure(b, calls) for b in st.blocks}) > 1:
            try:
                return self.stage_first_differs(st, calls)
            except SpecError:
                return self.stage_per_block(st, calls)
        raw = _varying(st.blocks)
        first_only = raw and all(k[1] == "stride" and len(set(map(str, v[1:]))) == 1 for k, v in raw.items()) \
            and len({str(v[0]) for v in raw.values()}) == 1
        name = f"{st.block}_{st.name.replace('.', '')}"
        comment = f"{st.name}: {n} × {_call_text(st.block, first.args)}"
        if first_only:      # the usual case: `stage x 4 unit stride 2` strides the first block only
            stride = next(iter(raw.values()))
            body = self.block_parts(first, {**calls, **{k: _name("stride") for k in raw}})
            defn = self.block_def(name, [ast.param(name="stride", default=literal(stride[1]), span=GENERATED)], body)
            return StageForm([(comment, defn)], n, _name(name), (_name("stride"), literal(stride[0])), _share(st))
        body = self.block_parts(first, {**calls, **self.varying(raw)})
        params = [ast.param(name="i", default=None, span=GENERATED)] if raw else []
        ref = _call(name, [(None, _index_arg(st, raw))]) if raw else _name(name)
        return StageForm([(comment, self.block_def(name, params, body))], n, ref, (), _share(st))

    def stage_steps(self, st: Stage, names: list[str], calls: dict) -> StageForm:
        """A stage of steps of k units: each unit position written as a stage of its own, then one
        `stage x n [a(...), b(...)] [stride S]` statement calling them all."""
        k = len(names)
        defs, refs, tail = [], [], ()
        for j, name in enumerate(names):
            sub = st.model_copy(update={"block": name, "blocks": st.blocks[j::k], "name": f"{st.name}.{j}"})
            form = self.stage(sub, calls)
            defs += form.defs
            tail = form.tail or tail
            refs.append(form.ref if isinstance(form.ref, ast.call) else _call(form.ref.id, []))
        return StageForm(defs, len(st.blocks) // k, ast.list_lit(items=tuple(refs), span=GENERATED), tail, _share(st))

    def stage_first_differs(self, st: Stage, calls: dict) -> StageForm:
        """A stage whose first block has other layers than the rest (ShuffleNetV2's strided unit,
        Res2Net's first unit): each sequence that differs is written `{ if i == 0 { ... } else { ... } }`."""
        first, n = st.blocks[0], len(st.blocks)
        if len({self.structure(b, calls) for b in st.blocks[1:]}) > 1:
            raise SpecError(f"show: the blocks of {st.name} differ in their layers, which one block definition "
                            "cannot express", first.span)
        raw = _varying(st.blocks, first_apart=True)
        varying = self.varying(raw)
        fields = {k: v for k, v in varying.items() if k[0] is None}
        a = self.block_parts(first, {**calls, **fields})
        b = self.block_parts(st.blocks[1], {**calls, **varying})
        if len(a) != len(b):
            raise SpecError(f"show: the first block of {st.name} has other parts than the rest, which one block "
                            "definition cannot express", first.span)
        body = []
        for x, y in zip(a, b):
            word = _keyword(x)
            if x == y or (word == _keyword(y) == "shortcut" and x.body is None is y.body
                                              and (None, "shortcut") not in varying):      # see _varying
                body.append(x)
            elif word == _keyword(y) and getattr(x, "body", None) is not None and getattr(y, "body", None) is not None:
                test = _binop("==", I, _int(0))
                choice = ast.if_stmt(test=test, then=x.body, orelse=y.body, span=GENERATED)
                body.append(x.model_copy(update={"body": self.layout.seq([choice], ANY_WIDTH)}))
            else:
                raise SpecError(f"show: the first block of {st.name} differs from the rest in '{word}', which one "
                                "block definition cannot express", first.span)
        name = f"{st.block}_{st.name.replace('.', '')}"
        defn = self.block_def(name, [ast.param(name="i", default=None, span=GENERATED)], body)
        comment = f"{st.name}: {n} × {_call_text(st.block, first.args)}"
        return StageForm([(comment, defn)], n, _call(name, [(None, _index_arg(st, raw))]), (), _share(st))

    def stage_per_block(self, st: Stage, calls: dict) -> StageForm:
        """The general case (MobileNetV3's table-driven stage, NF-ResNet's projecting first unit): each
        part that differs between blocks is written once per run of blocks with the same layers,
        `if i >= 3 { conv [96, 240, ...][i - 3] ... }`, the values that differ inside the run indexed
        by the block's place in it; shortcut kinds become their layers where some block's shortcut
        is custom (identity: `shortcut { }`, which is the identity)."""
        blocks, n = st.blocks, len(st.blocks)
        fields = {}
        for f in ("scale", "gate_bias", "drop_prob"):
            vals = [getattr(b, f) for b in blocks]
            if any(v != vals[0] for v in vals):
                fields[(None, f)] = _indexed(vals)
        custom = any(b.shortcut.kind == "custom" for b in blocks)
        for b in blocks:
            if custom and MERGE_MODES[b.merge].takes_shortcut \
                    and b.shortcut.kind not in ("custom", "identity", "projection", "projection_all", "avgdown"):
                raise SpecError(f"show: the blocks of {st.name} mix a '{b.shortcut.kind}' shortcut with custom "
                                "ones, which one block definition cannot express", b.span)
        if len({b.merge for b in blocks}) > 1:
            raise SpecError(f"show: the blocks of {st.name} differ in their merge, which one block definition "
                            "cannot express", blocks[0].span)
        kinds = [b.shortcut.kind for b in blocks]
        if not custom and len(set(kinds)) > 1:
            fields[(None, "shortcut")] = _indexed(kinds, names=True)
        varying = {**calls, **fields}
        per_block = [_keyed(self.block_parts(b, varying, custom=custom)) for b in blocks]
        masked = [_keyed(self.block_parts(b, varying, mask=True, custom=custom)) for b in blocks]
        body = []
        for key in dict.fromkeys(k for parts in per_block for k in parts):
            stmts = [parts.get(key) for parts in per_block]
            if all(s == stmts[0] for s in stmts):
                body.append(stmts[0])
                continue
            if not all(s is None or getattr(s, "body", None) is not None for s in stmts) \
                    or (key.startswith("residual") and None in stmts):
                raise SpecError(f"show: the blocks of {st.name} differ in '{key.rstrip('0123456789')}', which one "
                                "block definition cannot express", blocks[0].span)
            cases = []
            for idx in _runs(stmts, [m.get(key) for m in masked]):
                seq = self.run_body(key, [blocks[i] for i in idx], idx[0], varying, custom)
                cases += [(idx, seq)] if seq is not None else [([i], stmts[i].body) for i in idx]
            cases.sort(key=lambda c: c[0])
            template = next(s for s in stmts if s is not None)
            body.append(template.model_copy(update={"body": self.cases(cases, n)}))
        name = f"{st.block}_{st.name.replace('.', '')}"
        defn = self.block_def(name, [ast.param(name="i", default=None, span=GENERATED)], body)
        comment = f"{st.name}: {n} × {_call_text(st.block, blocks[0].args)}, block by block"
        return StageForm([(comment, defn)], n, _call(name, [(None, _name("block_index"))]))

    def run_body(self, key: str, run: list[Block], start: int, varying: dict, custom: bool) -> ast.seq | None:
        """The body of part `key` for a run of blocks with the same layers, from block `start` on:
        the values that differ between them as `[v, w, ...][i - start]` (None where a value has no
        literal)."""
        raw = _vary_layers([_part_layers(b, key) for b in run])
        if any(literal(v) is None for values in raw.values() for v in values):
            return None
        key_expr = I if start == 0 else _binop("-", I, _int(start))
        indexed = {k: _indexed(v, key_expr) for k, v in raw.items()}
        return _keyed(self.block_parts(run[0], {**varying, **indexed}, custom=custom))[key].body

    def cases(self, cases: list[tuple[list[int], ast.seq]], n: int) -> ast.seq:
        """`{ if i == 0 { a } else { b } }`, or one `if` per case (an empty case needs none); no test
        where a case is every block."""
        cases = [(idx, seq) for idx, seq in cases if seq.stmts]
        covered = sorted(i for idx, _ in cases for i in idx) == list(range(n))
        if len(cases) == 1 and _condition(cases[0][0], n) is None:
            return cases[0][1]
        if len(cases) == 2 and covered:
            (idx, then), (_, orelse) = cases
            choice = ast.if_stmt(test=_condition(idx, n), then=then, orelse=orelse, span=GENERATED)
            return self.layout.seq([choice], ANY_WIDTH)
        ifs = [ast.if_stmt(test=_condition(idx, n), then=seq, orelse=None, span=GENERATED) for idx, seq in cases]
        return self.layout.seq(ifs, DefaultLayout.width)


def _keyed(parts: list) -> dict:
    """A block's statements by word, the residuals numbered: {"residual0": ..., "shortcut": ...}."""
    out = {}
    for stmt in parts:
        word = _keyword(stmt)
        out[f"{word}{sum(k.startswith(word) for k in out)}" if word == "residual" else word] = stmt
    return out


def _runs(stmts: list, shapes: list) -> list[list[int]]:
    """The blocks grouped for writing one part block by block: blocks whose part is the same text
    together, else each run of neighbours with the same layers (their values then indexed); blocks
    without the part in none."""
    groups: dict[Any, list[int]] = {}
    for i, s in enumerate(shapes):
        if s is not None:
            groups.setdefault(s, []).append(i)
    out = []
    for idx in groups.values():
        if all(stmts[i] == stmts[idx[0]] for i in idx):
            out.append(idx)
            continue
        runs = [[idx[0]]]
        for i in idx[1:]:
            (runs[-1].append(i) if i == runs[-1][-1] + 1 else runs.append([i]))
        out += runs
    return sorted(out)


def _index_arg(st: Stage, raw: dict) -> ast.Expr:
    """The block-index argument of a stage statement: `block_index`; in a sharing stage whose
    blocks after the first are all alike, `min(block_index, 1)`, so those blocks get the same
    arguments and share weights as they did (share pairs blocks by their arguments)."""
    if not _share(st):
        return _name("block_index")
    differ = [k[1] for k, v in raw.items() if len({str(x) for x in v[1:]}) > 1]
    if differ:                 # e.g. a linear drop_path rate over blocks that share their weights
        raise SpecError(f"show: the blocks of {st.name} share weights but differ in {', '.join(differ)}, which "
                        "one block definition with shared arguments cannot express", st.blocks[0].span)
    return _call("min", [(None, _name("block_index")), (None, _int(1))])


def _share(st: Stage) -> tuple:
    """`share` when any block of the stage takes another's weights — not only the second: when the
    first block changes the shape, the second is the first of its kind and the third shares it."""
    sharing = [b for b in st.blocks[1:] if b.shares is not None]
    if not sharing:
        return ()
    return (_name("share"),) if sharing[0].share_bn else (_name("share"), _name("per_step_bn"))


def _varying(blocks, first_apart: bool = False) -> dict:
    """{(layer suffix, attribute) or (None, block field): [value per block]} where blocks differ;
    `first_apart`: layers compared from the second block on (the first is written apart)."""
    layers = [list(_layers(b)) for b in (blocks[1:] if first_apart else blocks)]
    out = {k: v[:1] * first_apart + v for k, v in _vary_layers(layers).items()}
    for name in ("scale", "gate_bias", "drop_prob"):
        values = [getattr(b, name) for b in blocks]
        if any(v != values[0] for v in values):
            out[(None, name)] = values
    kinds = [b.shortcut.kind for b in blocks]
    # `shortcut projection` (zeropad, avgdown) is an identity where the shape stays: no need to vary
    resolves = kinds[0] in ("projection", "zeropad", "avgdown") and set(kinds[1:]) <= {"identity"}
    if any(k != kinds[0] for k in kinds) and "custom" not in kinds and not resolves:
        out[(None, "shortcut")] = kinds             # kinds are names: `projection`
    return out


def _vary_layers(per_block: list[list[Layer]]) -> dict:
    """{(layer suffix, attribute): [value per block]} where the same layer of each block differs."""
    out = {}
    for j, lay in enumerate(per_block[0]):
        for k in lay.attrs:
            values = [layers[j].attrs.get(k) for layers in per_block]
            if any(v != values[0] for v in values):
                out[(_suffix(lay.name), k)] = values
    return out


def _part_layers(b: Block, key: str) -> list[Layer]:
    """The layers of one part of a block (`pre`, `residual1`, `shortcut`, `post`), in order."""
    if key.startswith("residual"):
        seq = b.residuals[int(key[len("residual"):])]
    else:
        seq = {"pre": b.pre, "shortcut": b.shortcut.layers, "post": b.post}[key]
    return [lay for it in seq for lay in _layers(it)]


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
    definition (its call is written, see Writer.calls), so its layers are not the outer block's."""
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


__all__ = ["show_net", "show_tree", "layer_clause", "Shown", "ShowLayout"]
