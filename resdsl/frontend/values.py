"""Values of the language and the expression evaluator: eval_expr(expr, env) -> value.

Values are Python ints, floats, bools, strings, lists and dicts, plus BlockRef (a block
definition with some arguments bound, e.g. `bottleneck(64)`) and Symbol (a bare word with
a meaning to the compiler, e.g. `projection` or `zeropad`).
"""
from __future__ import annotations

import math
import operator
from collections import ChainMap
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import limits
from ..errors import SpecError, unknown
from ..ir import ops
from ..ir.kinds import DROP_MODES, DROP_SCHEDULES, MERGE_MODES, PARALLEL_MODES, USER_SHORTCUTS
from . import ast
from .unparse import literal_text

# Bare words with a meaning to the compiler: shortcut kinds, merge and parallel modes, drop_path
# options, activations (values of `se act ... gate ...`), and `same` (`pad same k3 s2`).
SYMBOLS = frozenset({*USER_SHORTCUTS, *MERGE_MODES, *PARALLEL_MODES, *DROP_SCHEDULES, *DROP_MODES,
                     "same", *ops.attention.POSITIONS,
                     *ops.activations()})


@dataclass(frozen=True)
class Symbol:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class BlockRef:
    """A block definition with arguments bound so far (positional list, named dict)."""
    defn: ast.block_def
    positional: tuple = ()
    named: tuple = ()             # tuple of (name, value) pairs, kept hashable
    spans: Mapping = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return self.defn.name

    def __str__(self) -> str:
        parts = [show(v) for v in self.positional] + [f"{k}={show(v)}" for k, v in self.named]
        return f"{self.name}({', '.join(parts)})"


def show(v: Any) -> str:
    """A value as it would be written in a spec, for messages: its literal (unparse.literal), else
    as near as the language comes (a map, a string with quotes, a tuple, inf)."""
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{show(k)}: {show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return f'"{v}"'
    text = literal_text(v) if not isinstance(v, (tuple, BlockRef)) else None
    return text if text is not None else str(v)


def article(noun: str) -> str:
    """'an integer', 'a list': the noun with its indefinite article."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def type_name(v: Any) -> str:
    return {bool: "bool", int: "integer", float: "number", str: "string", list: "list",
            dict: "map", Symbol: "word", BlockRef: "block"}.get(type(v), type(v).__name__)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _builtin_len(x):
    if not isinstance(x, (list, dict, str)):
        raise TypeError(f"len() needs a list, map or string, got {type_name(x)}")
    return len(x)


def _builtin_sum(xs):
    if not isinstance(xs, list) or not all(is_num(x) for x in xs):
        raise TypeError("sum() needs a list of numbers")
    return sum(xs)


def _numeric(fn, name):
    def call(*xs):
        if not xs or not all(is_num(x) for x in xs):
            raise TypeError(f"{name}() needs numbers")
        return fn(*xs)
    return call


def make_divisible(v, divisor, min_value=None):
    """torchvision's _make_divisible: v rounded to a multiple of divisor, at least min_value
    (default divisor), and never more than 10% below v."""
    if not all(is_num(x) for x in (v, divisor)) or divisor <= 0:
        raise TypeError("make_divisible(v, divisor, min_value) needs numbers and a positive divisor")
    new_v = max(divisor if min_value is None else min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _builtin_range(*xs):
    """range(n) or range(start, stop[, step]): a list of integers, at most limits.RANGE_LENGTH long."""
    if not 1 <= len(xs) <= 3 or not all(is_int(x) for x in xs) or (len(xs) == 3 and xs[2] == 0):
        raise TypeError("range() needs 1 to 3 integers (and a non-zero step)")
    r = range(*xs)
    if len(r) > limits.RANGE_LENGTH.value:
        raise ValueError(f"range() of {len(r):,} numbers is too long (at most {limits.RANGE_LENGTH.value:,}; "
                         "RESDSL_LIMIT_RANGE_LENGTH=N raises it)")
    return list(r)


def _positive_math(fn, name):
    def call(*xs):
        if not xs or not all(is_num(x) and x > 0 for x in xs):
            raise ValueError(f"{name}() needs positive numbers")
        return fn(*xs)
    return call


BUILTINS = {
    "min": _numeric(min, "min"), "max": _numeric(max, "max"),
    "int": _numeric(int, "int"), "float": _numeric(float, "float"),
    "round": _numeric(round, "round"), "ceil": _numeric(math.ceil, "ceil"),
    "floor": _numeric(math.floor, "floor"), "len": _builtin_len,
    "sum": _builtin_sum, "abs": _numeric(abs, "abs"),
    "log": _positive_math(math.log, "log"), "log2": _positive_math(math.log2, "log2"),
    "sqrt": _numeric(math.sqrt, "sqrt"), "make_divisible": make_divisible,
    "range": _builtin_range,
}

_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow}
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}


class Evaluator:
    """Evaluates expressions against a name lookup (locals, then block definitions)."""

    def __init__(self, blocks: Mapping[str, ast.block_def]):
        self.blocks = blocks

    def lookup(self, node: ast.name, env: Mapping[str, Any]) -> Any:
        if node.id in env:
            return env[node.id]
        if node.id in self.blocks:
            return BlockRef(self.blocks[node.id])
        if node.id in SYMBOLS:
            return Symbol(node.id)
        if node.id in ("true", "false"):
            return node.id == "true"
        raise unknown("name", node.id, [*env, *self.blocks, *SYMBOLS, *BUILTINS], node.span)

    def __call__(self, e: ast.Expr, env: Mapping[str, Any]) -> Any:
        return getattr(self, "e_" + type(e).__name__)(e, env)

    def e_int_lit(self, e, env):
        return e.value

    e_str_lit = e_bool_lit = e_int_lit

    def e_float_lit(self, e, env):
        return finite(e.value, e.span)

    def e_shape_lit(self, e, env):
        return list(e.dims)

    def e_name(self, e, env):
        return self.lookup(e, env)

    def e_neg(self, e, env):
        v = self(e.operand, env)
        if not is_num(v):
            raise SpecError(f"cannot negate a {type_name(v)}", e.span)
        return -v

    def e_not_op(self, e, env):
        return not self.truth(e.operand, env)

    def e_and_op(self, e, env):
        return self.truth(e.left, env) and self.truth(e.right, env)

    def e_or_op(self, e, env):
        return self.truth(e.left, env) or self.truth(e.right, env)

    def truth(self, e, env) -> bool:
        v = self(e, env)
        if not isinstance(v, bool):
            raise SpecError(f"expected true or false, got {type_name(v)} {show(v)}", e.span)
        return v

    def e_cond(self, e, env):
        return self(e.then, env) if self.truth(e.test, env) else self(e.orelse, env)

    def e_binop(self, e, env):
        a, b = self(e.left, env), self(e.right, env)
        if e.op in _COMPARE:
            if e.op not in ("==", "!=") and not (is_num(a) and is_num(b)):
                raise SpecError(f"cannot compare {type_name(a)} with {type_name(b)} using '{e.op}'", e.span)
            return _COMPARE[e.op](a, b)
        if e.op == "+" and isinstance(a, list) and isinstance(b, list):
            return checked(a + b, e.span)
        if e.op == "*" and isinstance(a, list) and is_int(b) and 0 <= b <= 10_000:
            limits.LIST_LENGTH.check(len(a) * b, e.span)
            return checked(a * b, e.span)
        if not (is_num(a) and is_num(b)):
            raise SpecError(f"cannot apply '{e.op}' to {type_name(a)} and {type_name(b)}", e.span)
        if e.op in ("/", "//", "%") and b == 0:
            err = SpecError("division by zero", e.span)
            raise err.with_note(f"{e.right.id} = {show(b)}") if isinstance(e.right, ast.name) else err
        if e.op == "**" and (abs(b) > 64 or (abs(a) > 1 and b > 0 and b * math.log2(abs(a)) > 62)):
            raise SpecError(f"number too large: {show(a)} ** {show(b)}", e.span)
        out = _ARITH[e.op](a, b)
        if isinstance(out, complex) or (is_num(out) and abs(out) > limits.INT_RANGE) or (isinstance(out, float) and not math.isfinite(out)):
            raise SpecError(f"number out of range in '{e.op}'", e.span)
        return out

    def e_index(self, e, env):
        target, key = self(e.target, env), self(e.key, env)
        if isinstance(target, dict):
            if key not in target or isinstance(key, bool) != any(isinstance(k, bool) for k in target):
                err = SpecError(f"{show(key)} is not one of the supported values", e.key.span)
                err.with_note("supported: " + ", ".join(show(k) for k in target))
                if isinstance(e.key, ast.name):
                    err.with_note(f"{e.key.id} = {show(key)}")
                raise err
            return target[key]
        if isinstance(target, list):
            if not is_int(key):
                raise SpecError(f"list index must be an integer, got {type_name(key)}", e.key.span)
            if not -len(target) <= key < len(target):
                raise SpecError(f"index {key} out of range for a list of length {len(target)}", e.key.span)
            return target[key]
        raise SpecError(f"cannot index a {type_name(target)}", e.span)

    def e_list_lit(self, e, env):
        return checked([self(x, env) for x in e.items], e.span)

    def e_list_comp(self, e, env):
        """`[f(x) for x in xs if c(x)]`: the list of f(x) over the items of xs where c(x) holds."""
        items = self(e.iterable, env)
        if not isinstance(items, list):
            raise SpecError(f"can only loop over a list, got {type_name(items)}", e.iterable.span)
        out, size, cap = [], 0, limits.VALUE_SIZE.value
        for item in items:
            scope = ChainMap({e.var: item}, env)
            if e.test is None or self.truth(e.test, scope):
                out.append(self(e.item, scope))
                size += 1 + _measure(out[-1], 2, {}, (cap, limits.VALUE_DEPTH.value), e.span)[0]
                if size > cap:           # counted as it grows: a nested comprehension stops here
                    raise limits.VALUE_SIZE.error(f"more than {cap:,} elements", e.span)
        return out

    def e_map_lit(self, e, env):
        out, where = {}, {}
        for it in e.items:
            k = self(it.key, env)
            if isinstance(k, (list, dict)):
                raise SpecError("map keys must be numbers, strings or words", it.key.span)
            if k in out:
                raise SpecError(f"map key {show(k)} given twice", it.key.span).with_note(
                    f"first given at {where[k]}")
            out[k], where[k] = self(it.value, env), it.key.span
        return checked(out, e.span)

    def e_call(self, e, env):
        if isinstance(e.func, ast.name) and e.func.id in BUILTINS and e.func.id not in env:
            if any(a.name for a in e.args):
                raise SpecError(f"{e.func.id}() takes no named arguments", e.span)
            try:
                return finite(BUILTINS[e.func.id](*[self(a.value, env) for a in e.args]), e.span)
            except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
                raise SpecError(str(exc), e.span) from None
        if isinstance(e.func, ast.name) and e.func.id not in (*env, *self.blocks, *SYMBOLS):
            raise unknown("block", e.func.id, [*self.blocks, *BUILTINS], e.func.span)
        f = self(e.func, env)
        if not isinstance(f, BlockRef):
            raise SpecError(f"{article(type_name(f))} cannot be called", e.func.span)
        return bind_call(f, [(a.name, self(a.value, env), a.span) for a in e.args], e.span)


def bind_call(ref: BlockRef, args: list[tuple[str | None, Any, Any]], span) -> BlockRef:
    """Add arguments to a block reference, checking count and names against its parameters."""
    params = [p.name for p in ref.defn.params]
    positional, named = list(ref.positional), dict(ref.named)
    spans = dict(ref.spans)
    for name, value, aspan in args:
        if name is None:
            if named:
                raise SpecError("positional argument after a named one", aspan)
            if len(positional) >= len(params):
                raise SpecError(f"{ref.name}() takes {len(params)} argument{'s' * (len(params) != 1)}, "
                                f"got {len(positional) + 1}", aspan).with_note(
                                    f"parameters: {', '.join(params) or '(none)'}")
            positional.append(value)
            spans[params[len(positional) - 1]] = aspan
        else:
            if name not in params:
                raise unknown(f"parameter of block {ref.name}", name, params, aspan)
            if name in named or params.index(name) < len(positional):
                raise SpecError(f"argument '{name}' given twice", aspan)
            named[name] = value
            spans[name] = aspan
    return BlockRef(ref.defn, tuple(positional), tuple(named.items()), spans)


FLOAT32_MAX = 3.4028234663852886e38


def finite(v: Any, span) -> Any:
    """A number entering the IR is finite: `1e999`, `sum([1e308, 1e308])`, `inf - inf` are errors
    where they are written (a float attribute is further bounded to float32 in clauses.check_type)."""
    if isinstance(v, float) and not math.isfinite(v):
        raise SpecError(f"number out of range ({show(v)}): only finite numbers are allowed", span)
    return v


def checked(v: Any, span) -> Any:
    """`v` if within the value budgets (limits.LIST_LENGTH, VALUE_SIZE, VALUE_DEPTH), else an error.
    Elements are counted as written (a list used twice counts twice); each distinct list is
    visited once, so `[x, x]` nested 60 deep costs 60 steps, not 2**60."""
    caps = (limits.VALUE_SIZE.value, limits.VALUE_DEPTH.value)
    _measure(v, 1, {}, caps, span)
    return v


def _measure(x: Any, depth: int, memo: dict, caps: tuple[int, int], span) -> tuple[int, int]:
    """(elements, height) of a value; raises as soon as a budget is exceeded."""
    if not isinstance(x, (list, dict)):
        return 0, 0
    size_cap, depth_cap = caps
    if depth > depth_cap:
        raise limits.VALUE_DEPTH.error(f"depth over {depth_cap}", span)
    if id(x) in memo:
        size, height = memo[id(x)]
        if depth + height - 1 > depth_cap:
            raise limits.VALUE_DEPTH.error(f"depth {depth + height - 1}", span)
        return size, height
    limits.LIST_LENGTH.check(len(x), span)
    size, height = len(x), 1
    for y in (x.values() if isinstance(x, dict) else x):
        s, h = _measure(y, depth + 1, memo, caps, span)
        size, height = size + s, max(height, h + 1)
        if size > size_cap:
            raise limits.VALUE_SIZE.error(f"more than {size_cap:,} elements", span)
    memo[id(x)] = (size, height)
    return size, height
