"""Residual units: y = post(merge(scale · Σ_k residual_k(pre(x)), shortcut(x)))."""
from __future__ import annotations

from typing import Any

from ..errors import Span, SpecError
from ..errors import source_line as _source_line
from ..ir import ops
from ..ir.net import Block, Layer, Shortcut
from . import ast
from .load import PRELUDE
from .sequences import SequenceLowering
from .values import BlockRef, Symbol, is_num, show, type_name

COMBINE_ATTRS = (ops.Attr("mode", object), ops.Attr("kernel", int, 1, short="k"), ops.Attr("bias", ops.NUM, -1.0))
SHORTCUT_KINDS = ("identity", "zeropad", "projection", "projection_all", "avgdown", "none")


class BlockLowering(SequenceLowering):
    """Expands block calls: binds arguments, lowers pre/residual/shortcut/combine/post."""

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
        pre, residuals, post, sc_stmt, scale, combine, drop = (), [], None, None, 1.0, None, (0.0, "batch")
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
            elif isinstance(st, ast.drop_path_stmt):
                drop = self.block_drop_path(st, env)
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
                    post=post_items, drop_prob=drop[0], drop_mode=drop[1], span=call_span)
        if drop[0] > 0 and sc.kind == "none":
            raise SpecError("stochastic depth drops the residual branch of a unit with a shortcut; "
                            "this block has none", call_span).with_note("e.g. `drop_path has_skip ? rate : 0`")
        return blk, merged

    def block_drop_path(self, st: ast.drop_path_stmt, env) -> tuple[float, str]:
        """`drop_path P [mode batch|sample]` inside a block: this unit's stochastic-depth rate."""
        from .lower import DROP_PATH_ATTRS

        values, spans = self.bind("drop_path", DROP_PATH_ATTRS, ("rate",), st, env)
        rate, mode = values["rate"], values["mode"]
        mode = mode.name if isinstance(mode, Symbol) else mode
        if not 0 <= rate < 1:
            raise SpecError(f"drop_path rate must be in [0, 1), got {show(rate)}", spans["rate"])
        if "schedule" in spans:
            raise SpecError("a block's drop_path has no schedule (vary the rate with the block's index)",
                            spans["schedule"])
        if mode not in ("batch", "sample"):
            raise SpecError(f"unknown drop_path mode {show(mode)}", spans["mode"]).with_note("expected batch or sample")
        return float(rate), mode

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
