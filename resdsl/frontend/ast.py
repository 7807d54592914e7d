"""The syntax tree of a `.res` file: frozen pydantic models, one per grammar rule (same names)."""
from __future__ import annotations

from typing import Union

from pydantic import BaseModel, ConfigDict

from ..errors import Span


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    span: Span


# ---- expressions ----

class int_lit(Node):
    value: int


class float_lit(Node):
    value: float


class str_lit(Node):
    value: str


class shape_lit(Node):
    """`3x224x224` or `1x7`: a list of integers."""
    dims: tuple[int, ...]


class bool_lit(Node):
    value: bool


class name(Node):
    id: str


class binop(Node):
    op: str
    left: "Expr"
    right: "Expr"


class neg(Node):
    operand: "Expr"


class not_op(Node):
    operand: "Expr"


class and_op(Node):
    left: "Expr"
    right: "Expr"


class or_op(Node):
    left: "Expr"
    right: "Expr"


class cond(Node):
    test: "Expr"
    then: "Expr"
    orelse: "Expr"


class index(Node):
    target: "Expr"
    key: "Expr"


class arg(Node):
    name: str | None
    value: "Expr"


class call(Node):
    func: "Expr"
    args: tuple[arg, ...]


class list_lit(Node):
    items: tuple["Expr", ...]


class list_comp(Node):
    """`[w * 2 for w in widths if w > 8]`: a list built by a loop."""
    item: "Expr"
    var: str
    iterable: "Expr"
    test: "Expr | None"


class map_item(Node):
    key: "Expr"
    value: "Expr"


class map_lit(Node):
    items: tuple[map_item, ...]


Expr = Union[int_lit, float_lit, str_lit, shape_lit, bool_lit, name, binop, neg, not_op, and_op, or_op,
             cond, index, call, list_lit, list_comp, map_lit]


# ---- sequences of layers ----

class clause(Node):
    """`conv 64 k3 s2`: a keyword and its arguments (positional values and attributes);
    `split 2 -> a b`: with names for its output tensors."""
    keyword: str
    keyword_span: Span
    args: tuple[Expr, ...]
    outputs: tuple[str, ...] = ()


class tap(Node):
    """`-> h`: name the current tensor."""
    names: tuple[str, ...]


class from_stmt(Node):
    """`from h`: continue from the tensor named h."""
    tensor: str


class if_stmt(Node):
    """`if cond { ... } else { ... }`: layers present when the condition holds."""
    test: Expr
    then: "seq"
    orelse: "seq | None"


class repeat(Node):
    """`repeat n as r { ... }`: the body n times, r = 0 .. n-1."""
    count: Expr
    var: str | None
    body: "seq"


class let_stmt(Node):
    name: str
    value: Expr


class branch(Node):
    body: "seq"


class parallel(Node):
    mode: str
    mode_span: Span
    branches: tuple[branch, ...]


class aggregate(Node):
    """`aggregate C { path }`: the sum of C identical paths (ResNeXt form a)."""
    count: Expr
    body: "seq"


class seq(Node):
    stmts: tuple[Union[clause, let_stmt, parallel, aggregate, tap, from_stmt, if_stmt, repeat], ...]


# ---- blocks ----

class pre(Node):
    body: seq


class residual(Node):
    body: seq


class shortcut(Node):
    body: seq | None
    args: tuple[Expr, ...]


class post(Node):
    body: seq


class scale_stmt(Node):
    value: Expr


class merge_stmt(Node):
    args: tuple[Expr, ...]


class param(Node):
    name: str
    default: Expr | None


class block_def(Node):
    name: str
    params: tuple[param, ...]
    body: tuple[Union[let_stmt, pre, residual, shortcut, post, scale_stmt, merge_stmt, "drop_path_stmt"], ...]


# ---- networks ----

class input_stmt(Node):
    shape: tuple[int, ...] | None
    value: Expr | None


class stem(Node):
    body: seq


class stage(Node):
    args: tuple[Expr, ...]


class transition(Node):
    body: seq


class head(Node):
    body: seq


class aux(Node):
    weight: Expr | None
    body: seq


class init_stmt(Node):
    args: tuple[Expr, ...]


class drop_path_stmt(Node):
    args: tuple[Expr, ...]


NetStmt = Union[input_stmt, let_stmt, stem, stage, transition, head, aux, init_stmt, drop_path_stmt]


class network(Node):
    name: str
    params: tuple[param, ...]
    body: tuple[NetStmt, ...]


class import_stmt(Node):
    path: str


class module(Node):
    items: tuple[Union[import_stmt, network, block_def], ...]


for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, Node):
        _cls.model_rebuild()
