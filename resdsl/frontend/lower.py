"""lower(program, network, params) -> Net: evaluate expressions, expand stages and blocks.

Lowering tracks the tensor shape through the network with the op shape functions of
ir/ops.py (the same ones infer_shapes uses), because the language refers to shapes: `in` is
a block's input channels, and a `projection` shortcut exists only where the shape changes.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Mapping

from ..errors import Span, SpecError, unknown
from ..ir import ops
from ..ir.net import Block, Layer, Net, Parallel, Section, Shortcut, Stage
from . import ast
from ..errors import source_line as _source_line
from .load import PRELUDE, Program
from .values import BlockRef, Evaluator, Symbol, bind_call, is_int, is_num, show, type_name

MAX_LAYERS = 200_000
_SHORT = re.compile(r"^([a-z])(\d+(?:x\d+)?)$")      # k7, s2, k1x7

# Clause schemas that are not ops: `stage` and `shortcut`.
STAGE_ATTRS = (ops.Attr("block", object), ops.Attr("repeat", int, 1, short="x"),
               ops.Attr("stride", int, 1), ops.Attr("dilation", int, None),
               ops.Attr("share", bool, False, flag=True), ops.Attr("per_step_bn", bool, False, flag=True))
COMBINE_ATTRS = (ops.Attr("mode", object), ops.Attr("kernel", int, 1, short="k"), ops.Attr("bias", ops.NUM, -1.0))
DROP_PATH_ATTRS = (ops.Attr("rate", ops.NUM), ops.Attr("schedule", object, Symbol("linear")),
                   ops.Attr("mode", object, Symbol("batch")))
SHORTCUT_KINDS = ("identity", "zeropad", "projection", "projection_all", "avgdown", "none")
INIT_DIRECTIVES = {"zero_last_bn": 0, "residual_std": 1, "looks_linear": 0}
# Layers a path of `aggregate` may hold: per-channel or parameter-free, so C paths stack exactly.
AGGREGATE_KINDS = {"conv", "bn", "relu", "dropout", "sigmoid"}


class Lowering:
    def __init__(self, program: Program):
        self.program = program
        self.eval = Evaluator(program.blocks)
        self.n_layers = 0
        self.block_stack: list[str] = []
        self.dilation = 1            # of the previous stage (for `dilation`)

    # ---- clauses: `kind positional... attr value ...` ----

    def bind(self, what: str, attrs: tuple[ops.Attr, ...], positional: tuple[str, ...],
             clause: ast.clause | ast.stage, env: Mapping) -> tuple[dict, dict]:
        """Match a clause's arguments to attributes; returns (values, spans)."""
        by_name = {a.name: a for a in attrs}
        by_short = {a.short: a for a in attrs if a.short}
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        pos = list(positional)
        args = list(clause.args)
        i = 0
        while i < len(args):
            a = args[i]
            key, value, vspan = None, None, a.span
            # A word that names an attribute is that attribute, unless it is also a variable in
            # scope and a positional argument is still open (`conv g k3` with a parameter `g`).
            is_key = isinstance(a, ast.name) and (a.id in by_name and a.id not in positional or a.id in by_short)
            if is_key and not (a.id in env and pos):
                attr = by_name.get(a.id) or by_short[a.id]
                key = attr.name
                nxt = args[i + 1] if i + 1 < len(args) else None
                if attr.flag:
                    value = True
                    if nxt is not None and isinstance(nxt, ast.bool_lit):
                        value, vspan, i = nxt.value, nxt.span, i + 1
                else:
                    if nxt is None:
                        raise SpecError(f"{what} attribute '{a.id}' needs a value", a.span).with_note(
                            f"write e.g. '{a.id} 2'")
                    value, vspan, i = self.eval(nxt, env), nxt.span, i + 1
            elif (isinstance(a, ast.call) and isinstance(a.func, ast.name) and len(a.args) == 1
                  and a.args[0].name is None and (a.func.id in by_name or a.func.id in by_short)
                  and a.func.id not in (*positional, *env, *self.program.blocks)):
                # `x (n - 1)` and `stride (s * 2)` parse as calls: an attribute with a bracketed value.
                attr = by_name.get(a.func.id) or by_short[a.func.id]
                key, value, vspan = attr.name, self.eval(a.args[0].value, env), a.args[0].span
            elif isinstance(a, ast.name) and (m := _SHORT.match(a.id)) and m.group(1) in by_short and a.id not in env:
                key, value = by_short[m.group(1)].name, [int(p) for p in m.group(2).split("x")]
                value = value[0] if len(value) == 1 else value
            elif isinstance(a, ast.name) and a.id not in env and a.id not in self.program.blocks and pos == []:
                names = [*by_name, *by_short]
                raise unknown(f"attribute of {what}", a.id, names, a.span)
            else:
                if not pos:
                    raise SpecError(f"too many arguments for {what}", a.span).with_note(
                        f"{what} takes {len(positional)} positional argument{'s' * (len(positional) != 1)}"
                        + (f" ({', '.join(positional)})" if positional else "")
                        + "; attributes: " + ", ".join(n for n in by_name if n not in positional))
                key, value = pos.pop(0), self.eval(a, env)
            if key in values:
                raise SpecError(f"{what} attribute '{key}' given twice", a.span)
            values[key], spans[key] = value, vspan
            i += 1
        for name in (p for p in pos if by_name[p].default is None):
            raise SpecError(f"{what} needs {name}", clause.span).with_note(
                f"positional arguments: {', '.join(positional)}")
        for attr in attrs:
            if attr.name in values:
                values[attr.name] = self.check_type(what, attr, values[attr.name], spans[attr.name])
            else:
                values[attr.name] = attr.default
        return values, spans

    @staticmethod
    def check_type(what: str, attr: ops.Attr, v: Any, span: Span) -> Any:
        want = attr.type
        if want is object:
            return v
        if want == ops.SIZE:
            if isinstance(v, (list, tuple)) and len(v) == 2 and all(is_int(x) for x in v):
                return v[0] if v[0] == v[1] else tuple(v)
            want = int
        ok = (is_int(v) if want is int else is_num(v) if want in (float, ops.NUM) else
              isinstance(v, bool) if want is bool else isinstance(v, want))
        if not ok:
            words = {int: "an integer", float: "a number", bool: "true or false", ops.NUM: "a number"}
            name = ops.WORDS.get(attr.name, attr.name)
            raise SpecError(f"{what}: {name} must be {words.get(want, want)}, got {type_name(v)} {show(v)}", span)
        return float(v) if want is float else v

    # ---- sequences of layers ----

    def layer(self, c: ast.clause, env: Mapping, shape: ops.Shape, name: str) -> tuple[Layer, ops.Shape]:
        op = ops.OPS[c.keyword]
        attrs, spans = self.bind(c.keyword, op.attrs, op.positional, c, env)
        out = self.infer(op.kind, attrs, [shape], c.span)
        self.n_layers += 1
        if self.n_layers > MAX_LAYERS:
            raise SpecError(f"network too large: more than {MAX_LAYERS:,} layers", c.span)
        return Layer(kind=op.kind, name=name, attrs=attrs, span=c.span), out

    @staticmethod
    def infer(kind: str, attrs: dict, ins: list[ops.Shape], span: Span) -> ops.Shape:
        try:
            return ops.infer(kind, attrs, ins)
        except ops.OpError as e:
            raise SpecError(str(e), span) from None

    def seq(self, body: ast.seq, env: dict, shape: ops.Shape, prefix: str) -> tuple[tuple, ops.Shape]:
        """Lower `{ ... }` starting from `shape`; names are `prefix` + kind + per-kind index."""
        env = dict(env)
        items, count = [], Counter()
        for st in body.stmts:
            if isinstance(st, ast.let_stmt):
                env[st.name] = self.eval(st.value, env)
                continue
            if isinstance(st, ast.parallel):
                count["parallel"] += 1
                item, shape = self.parallel(st, env, shape, f"{prefix}parallel{count['parallel']}")
            elif isinstance(st, ast.aggregate):
                layers, shape = self.aggregate(st, env, shape, prefix, count)
                items.extend(layers)
                continue
            else:
                target = env.get(st.keyword)
                if isinstance(target, BlockRef) or (st.keyword not in env and st.keyword in self.program.blocks):
                    ref = target if isinstance(target, BlockRef) else BlockRef(self.program.blocks[st.keyword])
                    count[ref.name] += 1
                    item, shape = self.nested_block(st, ref, env, shape, f"{prefix}{ref.name}{count[ref.name]}")
                elif st.keyword in ops.OPS and ops.OPS[st.keyword].user:
                    count[st.keyword] += 1
                    item, shape = self.layer(st, env, shape, f"{prefix}{st.keyword}{count[st.keyword]}")
                else:
                    layers = [k for k, op in ops.OPS.items() if op.user]
                    raise unknown("layer or block", st.keyword, [*layers, *self.program.blocks], st.keyword_span)
            items.append(item)
        return tuple(items), shape

    def parallel(self, st: ast.parallel, env: dict, shape, name: str):
        if st.mode not in ("concat", "sum"):
            raise unknown("merge mode", st.mode, ["concat", "sum"], st.mode_span)
        if not st.branches:
            raise SpecError("parallel needs at least one branch", st.span)
        branches, shapes = [], []
        for i, br in enumerate(st.branches):
            items, out = self.seq(br.body, env, shape, f"{name}.{i}.")
            branches.append(items)
            shapes.append(out)
        out = self.infer("concat" if st.mode == "concat" else "add", {"scale": 1.0}, shapes, st.span)
        return Parallel(name=name, mode=st.mode, branches=tuple(branches), span=st.span), out

    def aggregate(self, st: ast.aggregate, env: dict, shape, prefix: str, count: Counter):
        """Sum of C identical paths (ResNeXt form a) as the equivalent grouped form (c).

        Stacking the C paths' first convs gives one conv with C·w outputs; each later conv
        reads only its own path, so it becomes a conv with C× channels and C× groups; the
        sum of the paths' last convs is one conv over the concatenated paths.
        """
        c = self.eval(st.count, env)
        if not is_int(c) or c < 1:
            raise SpecError(f"aggregate needs a positive integer count, got {show(c)}", st.count.span)
        path, _ = self.seq(st.body, env, shape, "")
        convs = [i for i, it in enumerate(path) if isinstance(it, Layer) and it.kind == "conv"]
        for i, it in enumerate(path):
            if not isinstance(it, Layer) or it.kind not in AGGREGATE_KINDS:
                what = it.kind if isinstance(it, Layer) else type(it).__name__.lower()
                raise SpecError(f"'{what}' cannot be used in an aggregate path", it.span).with_note(
                    "paths may hold " + ", ".join(sorted(AGGREGATE_KINDS)))
            if it.kind == "bn" and (not convs or i < convs[0]):
                raise SpecError("an aggregate path must start with a conv before any bn", it.span)
        if not convs or convs[-1] != len(path) - 1:
            raise SpecError("an aggregate path must end with a conv (the paths are summed there)", st.span)
        out = []
        for i, it in enumerate(path):
            a = dict(it.attrs)
            if it.kind == "conv" and len(convs) > 1:
                if i in (convs[0], convs[-1]) and a["groups"] != 1:
                    raise SpecError("the first and last conv of an aggregate path cannot be grouped", it.span)
                if i != convs[-1]:
                    a["out"] *= c
                if i != convs[0] and i != convs[-1]:
                    a["groups"] *= c
            count[it.kind] += 1
            name = f"{prefix}{it.kind}{count[it.kind]}"
            out.append(Layer(kind=it.kind, name=name, attrs=a, span=it.span))
            shape = self.infer(it.kind, a, [shape], it.span)
        return out, shape

    def nested_block(self, c: ast.clause, ref: BlockRef, env, shape, name):
        params = tuple(p.name for p in ref.defn.params)
        attrs = tuple(ops.Attr(p, object) for p in params)
        bound = {p for p, _ in ref.named} | set(params[:len(ref.positional)])
        free = tuple(p for p in params if p not in bound)
        values, spans = self.bind(ref.name, attrs, free[:1], c, env)
        args = [(k, v, spans[k]) for k, v in values.items() if k in spans]
        return self.block(bind_call(ref, args, c.span), shape, name, c.span)

    # ---- blocks ----

    def block(self, ref: BlockRef, shape: ops.Shape, name: str, call_span: Span) -> tuple[Block, ops.Shape]:
        """Expand one residual unit: y = post(scale * sum_k residual_k(pre(x)) + shortcut(x))."""
        d = ref.defn
        if d.name in self.block_stack:
            chain = " -> ".join([*self.block_stack[self.block_stack.index(d.name):], d.name])
            raise SpecError(f"recursive block definition: {chain}", call_span)
        self.block_stack.append(d.name)
        try:
            env = self.block_env(ref, shape, call_span)
            return self.block_body(d, env, shape, name, call_span)
        except SpecError as e:
            raise self.in_block(e, ref, name, shape, call_span) from None
        finally:
            self.block_stack.pop()

    @staticmethod
    def in_block(e: SpecError, ref: BlockRef, name: str, shape, call_span: Span) -> SpecError:
        """Say which block instance an error happened in. An error inside the prelude points at
        the user's call instead, with the prelude line as a note."""
        if e.span is not None and e.span.file == PRELUDE and call_span.file != PRELUDE:
            e.notes.insert(0, f"in {ref} ({name}, input {ops.fmt(shape)}), at prelude block '{ref.name}' "
                              f"line {e.span.line}: {_source_line(e.span)}")
            e.span = call_span
        elif not any(n.startswith("in block") or n.startswith(f"in {ref.name}(") for n in e.notes) \
                and e.span is not None and e.span != call_span:
            e.notes.append(f"in block {ref} ({name}, input {ops.fmt(shape)}) called at {call_span}")
        return e

    def block_env(self, ref: BlockRef, shape: ops.Shape, call_span: Span) -> dict:
        env: dict[str, Any] = {"in": shape[0]}
        named = dict(ref.named)
        for i, p in enumerate(ref.defn.params):
            if i < len(ref.positional):
                env[p.name] = ref.positional[i]
            elif p.name in named:
                env[p.name] = named[p.name]
            elif p.default is not None:
                env[p.name] = self.eval(p.default, env)
            else:
                raise SpecError(f"{ref.name}() is missing argument '{p.name}'", call_span).with_note(
                    f"{ref.name} is defined at {ref.defn.span}")
        return env

    def block_body(self, d: ast.block_def, env: dict, shape, name: str, call_span: Span):
        pre, residuals, post, sc_stmt, scale, combine = (), [], None, None, 1.0, None
        a_shape, r_shape = shape, None
        for st in d.body:
            if isinstance(st, ast.let_stmt):
                env[st.name] = self.eval(st.value, env)
            elif isinstance(st, ast.pre):
                if residuals or pre:
                    raise SpecError("'pre' must come once, before 'residual'", st.span)
                pre, a_shape = self.seq(st.body, env, shape, f"{name}.pre.")
            elif isinstance(st, ast.residual):
                residuals.append(st)
            elif isinstance(st, ast.shortcut):
                if sc_stmt is not None:
                    raise SpecError("a block has one 'shortcut'", st.span)
                sc_stmt = st
            elif isinstance(st, ast.post):
                if post is not None:
                    raise SpecError("a block has one 'post'", st.span)
                post = st
            elif isinstance(st, ast.combine_stmt):
                if combine is not None:
                    raise SpecError("a block has one 'combine'", st.span)
                combine = st
            elif isinstance(st, ast.scale_stmt):
                scale = self.eval(st.value, env)
                if not is_num(scale):
                    raise SpecError(f"scale must be a number, got {type_name(scale)}", st.value.span)
            else:
                raise SpecError(f"'{type(st).__name__.removesuffix('_stmt')}' is not supported in blocks yet", st.span)
        if not residuals:
            raise SpecError(f"block '{d.name}' has no 'residual' branch", d.span)
        branches = []
        for k, r in enumerate(residuals):
            prefix = f"{name}.residual." if len(residuals) == 1 else f"{name}.residuals.{k}."
            items, out = self.seq(r.body, env, a_shape, prefix)
            if r_shape is not None and out != r_shape:
                raise SpecError(f"residual branches differ in shape: {ops.fmt(r_shape)} and {ops.fmt(out)}", r.span)
            branches.append(items)
            r_shape = out
        mode, gate_attrs = self.combine_mode(combine, env)
        if mode == "concat":
            if sc_stmt is not None:
                raise SpecError("a dense (concat) block passes its input on unchanged: remove 'shortcut'", sc_stmt.span)
            sc = Shortcut(kind="identity", span=combine.span)
            merged = self.infer("concat", {}, [shape, r_shape], combine.span)
        else:
            sc = self.shortcut(sc_stmt, env, shape, a_shape, r_shape, bool(pre), name, call_span, d)
            merged = r_shape
        gate = ()
        if mode == "gate":
            if sc.kind == "none":
                raise SpecError("a gated block needs a shortcut to carry", combine.span)
            stride = self.shortcut_stride(shape, r_shape, combine.span)
            conv = {"out": r_shape[0], "kernel": gate_attrs["kernel"], "stride": stride, "padding": None,
                    "dilation": 1, "groups": 1, "bias": True}
            self.infer("conv", conv, [shape], combine.span)
            gate = (Layer(kind="conv", name=f"{name}.gate.conv1", attrs=conv, span=combine.span),
                    Layer(kind="sigmoid", name=f"{name}.gate.sigmoid1", attrs={}, span=combine.span))
        post_items = ()
        if post is not None:
            post_items, merged = self.seq(post.body, env, merged, f"{name}.post.")
        args = {k: v for k, v in env.items() if k in {p.name for p in d.params}}
        blk = Block(name=name, block=d.name, args=args, pre=pre, residuals=tuple(branches), shortcut=sc,
                    scale=float(scale), combine=mode, gate=gate, gate_bias=float(gate_attrs.get("bias", 0.0)),
                    post=post_items, span=call_span)
        return blk, merged

    def combine_mode(self, st: ast.combine_stmt | None, env) -> tuple[str, dict]:
        if st is None:
            return "add", {}
        values, spans = self.bind("combine", COMBINE_ATTRS, ("mode",), st, env)
        mode = values["mode"]
        if not isinstance(mode, Symbol) or mode.name not in ("add", "gate", "concat"):
            raise SpecError(f"unknown combine mode {show(mode)}", spans.get("mode", st.span)).with_note(
                "expected one of: add, gate, concat")
        extra = [k for k in ("kernel", "bias") if k in spans]
        if extra and mode.name != "gate":
            raise SpecError(f"combine {mode.name} takes no '{extra[0]}'", spans[extra[0]])
        return mode.name, values

    def shortcut(self, st: ast.shortcut | None, env, x_shape, a_shape, r_shape, has_pre, name, call_span, d):
        span = st.span if st is not None else call_span
        if st is not None and st.body is not None:
            src = "pre" if has_pre else "input"
            items, out = self.seq(st.body, env, a_shape if has_pre else x_shape, f"{name}.shortcut.")
            self.infer("add", {"scale": 1.0}, [r_shape, out], span)
            return Shortcut(kind="custom", layers=items, source=src, span=span)
        kind = "identity"
        if st is not None:
            if len(st.args) != 1:
                raise SpecError("shortcut takes one kind or a { ... } sequence", span).with_note(
                    "kinds: " + ", ".join(SHORTCUT_KINDS))
            value = self.eval(st.args[0], env)
            if not isinstance(value, Symbol) or value.name not in SHORTCUT_KINDS:
                raise SpecError(f"unknown shortcut kind {show(value)}", st.args[0].span).with_note(
                    "expected one of: " + ", ".join(SHORTCUT_KINDS))
            kind = value.name
        if kind == "none":
            return Shortcut(kind="none", span=span)
        same = r_shape == x_shape
        if kind == "identity" or (same and kind in ("zeropad", "projection", "avgdown")):
            if not same:
                err = SpecError(f"identity shortcut: block input {ops.fmt(x_shape)} does not match "
                                f"residual output {ops.fmt(r_shape)}", span)
                raise err.with_note("use 'shortcut projection' (option B) or 'shortcut zeropad' (option A) "
                                    "where the shape changes")
            return Shortcut(kind="identity", span=span)
        stride = self.shortcut_stride(x_shape, r_shape, span)
        if kind == "zeropad":
            attrs = {"out": r_shape[0], "stride": stride}
            self.infer("zeropad", attrs, [x_shape], span)
            return Shortcut(kind="zeropad", layers=(Layer(kind="zeropad", name=f"{name}.shortcut.zeropad",
                                                          attrs=attrs, span=span),), span=span)
        src_shape = a_shape if has_pre else x_shape
        pool = ()
        if kind == "avgdown" and stride > 1:     # ResNet-D (He et al. 2019): average, then project
            p = {"kernel": stride, "stride": stride, "padding": 0, "ceil": True, "count_pad": False}
            src_shape = self.infer("avgpool", p, [src_shape], span)
            pool, stride = (Layer(kind="avgpool", name=f"{name}.shortcut.avgpool1", attrs=p, span=span),), 1
        conv = {"out": r_shape[0], "kernel": 1, "stride": stride, "padding": 0, "dilation": 1, "groups": 1, "bias": False}
        self.infer("conv", conv, [src_shape], span)
        layers = (*pool, Layer(kind="conv", name=f"{name}.shortcut.conv1", attrs=conv, span=span))
        if not has_pre:    # after a pre-activation the projection is a bare conv (He et al. 2016, timm, WRN)
            layers += (Layer(kind="bn", name=f"{name}.shortcut.bn1", attrs={"eps": 1e-5, "momentum": 0.1}, span=span),)
        self.n_layers += len(layers)
        return Shortcut(kind=kind, layers=layers, source="pre" if has_pre else "input", span=span)

    @staticmethod
    def shortcut_stride(x_shape, r_shape, span) -> int:
        if len(x_shape) != 3 or len(r_shape) != 3:
            raise SpecError("shortcuts need C×H×W tensors", span)
        for s in range(1, max(x_shape[1], 1) + 1):
            if ((x_shape[1] - 1) // s + 1, (x_shape[2] - 1) // s + 1) == r_shape[1:]:
                return s
        raise SpecError(f"no strided shortcut maps {ops.fmt(x_shape)} to {ops.fmt(r_shape)}", span).with_note(
            "the residual branch changes the spatial size by a non-integer factor")

    # ---- networks ----

    def network(self, net: ast.network, overrides: Mapping[str, Any]) -> Net:
        env = self.network_params(net, overrides)
        params = dict(env)
        body: list = []
        shape = input_shape = drop = None
        init: list[tuple[str, Any]] = []
        counts = Counter()
        for st in net.body:
            if isinstance(st, ast.let_stmt):
                env[st.name] = self.eval(st.value, env)
                continue
            if isinstance(st, ast.input_stmt):
                if shape is not None:
                    raise SpecError("'input' given twice", st.span)
                shape = input_shape = self.input_shape(st, env)
                continue
            if shape is None:
                raise SpecError("'input' must come before the layers", st.span).with_note(
                    "e.g. 'input 3x224x224'")
            if isinstance(st, (ast.stem, ast.transition, ast.head)):
                role = type(st).__name__
                counts[role] += 1
                name = "transitions." + str(counts[role] - 1) if role == "transition" else role
                if role != "transition" and counts[role] > 1:
                    raise SpecError(f"a network has one '{role}'", st.span)
                items, shape = self.seq(st.body, {**env, "in": shape[0]}, shape, f"{name}.")
                body.append(Section(name=name, role=role, items=items, span=st.span))
            elif isinstance(st, ast.stage):
                stage, shape = self.stage(st, env, shape, f"stages.{counts['stage']}")
                counts["stage"] += 1
                body.append(stage)
            elif isinstance(st, ast.init_stmt):
                init.append(self.init_directive(st, env))
            else:
                if drop is not None:
                    raise SpecError("'drop_path' given twice", st.span)
                drop = st
        if shape is None:
            raise SpecError(f"network '{net.name}' has no 'input'", net.span).with_note("e.g. 'input 3x224x224'")
        if drop is not None:
            body = self.drop_path(drop, env, body)
        return Net(name=net.name, params=params, input_shape=input_shape, body=tuple(body), span=net.span,
                   init=tuple(init), source=self.program.text)

    def init_directive(self, st: ast.init_stmt, env) -> tuple[str, Any]:
        first = st.args[0] if st.args else None
        if not isinstance(first, ast.name) or first.id not in INIT_DIRECTIVES:
            where = first.span if first is not None else st.span
            raise unknown("init directive", first.id if isinstance(first, ast.name) else "", INIT_DIRECTIVES, where)
        want = INIT_DIRECTIVES[first.id]
        if len(st.args) - 1 != want:
            raise SpecError(f"init {first.id} takes {want} value{'s' * (want != 1)}, got {len(st.args) - 1}", st.span)
        value = self.eval(st.args[1], env) if want else None
        if want and (not is_num(value) or value < 0):
            raise SpecError(f"init {first.id} needs a non-negative number, got {show(value)}", st.args[1].span)
        return (first.id, value)

    def drop_path(self, st: ast.drop_path_stmt, env, body: list) -> list:
        """Stochastic depth: block l of L dropped with probability rate·l/L (linear) or rate (constant)."""
        values, spans = self.bind("drop_path", DROP_PATH_ATTRS, ("rate", "schedule"), st, env)
        rate, schedule, mode = values["rate"], values["schedule"], values["mode"]
        if not 0 <= rate < 1:
            raise SpecError(f"drop_path rate must be in [0, 1), got {show(rate)}", spans["rate"])
        schedule = schedule.name if isinstance(schedule, Symbol) else schedule
        if schedule not in ("linear", "constant"):
            raise SpecError(f"unknown drop_path schedule {show(schedule)}", spans["schedule"]).with_note(
                "expected linear or constant")
        mode = mode.name if isinstance(mode, Symbol) else mode
        if mode not in ("batch", "sample"):
            raise SpecError(f"unknown drop_path mode {show(mode)}", spans["mode"]).with_note(
                "expected batch (Huang et al.: one gate per mini-batch) or sample (timm's drop path)")
        total = sum(len(p.blocks) for p in body if isinstance(p, Stage))
        out, l = [], 0
        for part in body:
            if isinstance(part, Stage):
                blocks = []
                for b in part.blocks:
                    l += 1
                    p = rate * l / total if schedule == "linear" else rate
                    blocks.append(b.model_copy(update={"drop_prob": p, "drop_mode": mode}))
                part = part.model_copy(update={"blocks": tuple(blocks)})
            out.append(part)
        return out

    def network_params(self, net: ast.network, overrides: Mapping[str, Any]) -> dict:
        names = [p.name for p in net.params]
        for k in overrides:
            if k not in names:
                raise unknown(f"parameter of network {net.name}", k, names, net.span)
        env: dict[str, Any] = {}
        for p in net.params:
            if p.name in overrides:
                env[p.name] = overrides[p.name]
            elif p.default is not None:
                env[p.name] = self.eval(p.default, env)
            else:
                raise SpecError(f"network parameter '{p.name}' has no default and was not set", p.span).with_note(
                    f"set it with --set {p.name}=VALUE")
        return env

    def input_shape(self, st: ast.input_stmt, env) -> ops.Shape:
        dims = st.shape if st.shape is not None else self.eval(st.value, env)
        if not isinstance(dims, (list, tuple)) or len(dims) not in (1, 3) or not all(is_int(d) for d in dims):
            raise SpecError(f"input must be C×H×W integers, got {show(dims)}", st.span)
        if any(d <= 0 for d in dims):
            raise SpecError(f"input sizes must be positive, got {ops.fmt(tuple(dims))}", st.span)
        return tuple(dims)

    def stage(self, st: ast.stage, env, shape, name: str) -> tuple[Stage, ops.Shape]:
        values, spans = self.bind("stage", STAGE_ATTRS, ("block",), st, env)
        ref = values["block"]
        if not isinstance(ref, BlockRef):
            raise SpecError(f"stage needs a block, got {type_name(ref)} {show(ref)}",
                            spans.get("block", st.span)).with_note("e.g. 'stage x 3 basic(64) stride 2'")
        n = values["repeat"]
        if n < 1:
            raise SpecError(f"a stage repeats its block at least once, got x {n}", spans.get("repeat", st.span))
        if self.n_layers + n > MAX_LAYERS:
            raise SpecError(f"network too large: more than {MAX_LAYERS:,} layers", spans.get("repeat", st.span))
        for attr in ("stride", "dilation"):
            if attr in spans and attr not in {p.name for p in ref.defn.params}:
                raise SpecError(f"block '{ref.name}' has no '{attr}' parameter", spans[attr])
        if values["per_step_bn"] and not values["share"]:
            raise SpecError("per_step_bn only applies to a stage with 'share'", spans["per_step_bn"])
        blocks: list[Block] = []
        built: list[tuple[Block, ops.Shape]] = []
        for j in range(n):
            r = ref
            if j == 0 and "stride" in spans:
                r = self.rebind(r, "stride", values["stride"], spans["stride"], st.span)
            if values["dilation"] is not None:
                # torchvision's replace_stride_with_dilation: the first block keeps the previous dilation
                d = self.dilation if j == 0 else values["dilation"]
                r = self.rebind(r, "dilation", d, spans["dilation"], st.span)
            blk, out = self.block(r, shape, f"{name}.blocks.{j}", st.span)
            if values["share"]:
                blk = self.share(blk, built, shape, values["per_step_bn"])
                built.append((blk, shape))
            blocks.append(blk)
            shape = out
        if values["dilation"] is not None:
            self.dilation = values["dilation"]
        return Stage(name=name, block=ref.name, blocks=tuple(blocks), span=st.span), shape

    def rebind(self, ref: BlockRef, param: str, value, span, call_span) -> BlockRef:
        return bind_call(_without(ref, param), [(param, value, span)], call_span)

    @staticmethod
    def share(blk: Block, earlier: list[tuple[Block, ops.Shape]], shape, per_step_bn: bool) -> Block:
        """Use the weights of the first earlier block with the same definition, arguments and input shape."""
        for other, other_shape in earlier:
            if other.shares is None and (other.block, other.args, other_shape) == (blk.block, blk.args, shape):
                return blk.model_copy(update={"shares": other.name, "share_bn": not per_step_bn})
        return blk


def _without(ref: BlockRef, param: str) -> BlockRef:
    """The reference with `param` unbound (a stage attribute overrides the call's value)."""
    names = [p.name for p in ref.defn.params]
    i = names.index(param)
    if i < len(ref.positional):
        return BlockRef(ref.defn, ref.positional[:i], ref.named + tuple(
            (names[k], v) for k, v in enumerate(ref.positional) if k > i), ref.spans)
    return BlockRef(ref.defn, ref.positional, tuple((k, v) for k, v in ref.named if k != param), ref.spans)


def lower(program: Program, network: str | None = None, params: Mapping[str, Any] | None = None) -> Net:
    return Lowering(program).network(program.network(network), params or {})
