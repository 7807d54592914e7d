"""unparse(module) -> .res text: the inverse of parse, one method per AST class (sqlglot's Generator).

Expressions come back with the fewest parentheses that keep their tree; statements come back as
`Line`s, which `weave` turns into text (with the source's comments and blank lines, for `fmt`).
Where the text came from a file, a `Layout` (resdsl/source/layout.py) keeps the writer's choices that the tree does not hold:
which statements share a line, which `{ ... }` stay on one line, where a bracketed list breaks,
and how a number was spelled (`0.10`). Without one, the layout is a default; `show` passes its own
(`ShowLayout`: the lines it chose as it built the tree). This is the one writer of .res text: fmt and
show both build a tree and print it here.

A new AST class needs one method here, named as the class: expressions return a string,
statements a string (one line) or a list of Lines (a `{ ... }` written over several lines).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import Span
from . import ast

INDENT = "  "
BREAK = "\n\x00{},{}\x00"       # a break inside brackets, tagged with the source lines before and after it

# binding strength of each operator form (higher binds tighter), as in grammars/resdsl.lark
COND, OR, AND, NOT, COMPARE, SUM, PRODUCT, UNARY, POWER, POSTFIX, ATOM = range(1, 12)
_BINOP = {**dict.fromkeys(["==", "!=", "<=", ">=", "<", ">"], COMPARE), "+": SUM, "-": SUM,
          **dict.fromkeys(["*", "/", "//", "%"], PRODUCT), "**": POWER}
# (left operand, right operand) strengths a binop needs
_OPERANDS = {COMPARE: (SUM, SUM), SUM: (SUM, PRODUCT), PRODUCT: (PRODUCT, UNARY), POWER: (POSTFIX, UNARY)}


@dataclass
class Line:
    """One output line (or a group of `;`-joined statements) and the source lines it came from."""
    depth: int
    text: str
    first: int = 0               # source line of its first token (0: generated)
    last: int = 0                # source line of its last token
    opens: bool = False          # ends with "{"
    closes: bool = False         # a lone "}"


class DefaultLayout:
    """The layout of generated text: short sequences on one line, no breaks inside brackets."""
    width = 96

    def literal(self, node) -> str | None:
        return None

    def inline(self, container, parts: list[str]) -> bool:
        if isinstance(container, (ast.network, ast.block_def, ast.parallel)):
            return False
        return sum(len(p) + 2 for p in parts) < self.width // 2 and not any("\n" in p for p in parts)

    def same_line(self, before, after) -> bool:
        return False

    def breaks_before(self, before, after) -> tuple[int, int] | None:
        return None

    def braced(self, post: ast.post) -> bool:
        return len(post.body.stmts) != 1 or not isinstance(post.body.stmts[0], ast.clause)

    def lines(self, node) -> tuple[int, int]:
        return 0, 0

    def brackets(self, owner) -> tuple[int, int] | None:
        return None

    def brace_lines(self, node) -> tuple[int, int]:
        return 0, 0


class Generator:
    """AST -> text. `expr` and `stmt` dispatch on the node's class name."""

    def __init__(self, layout=None):
        self.layout = layout or DefaultLayout()
        self.indent = 0

    # ---- expressions ----

    def expr(self, node, col: int = 0, need: int = 0) -> str:
        """`node` as text starting at column `col`; parenthesised when it binds looser than `need`."""
        strength = self.strength(node)
        if strength < need:
            return "(" + getattr(self, type(node).__name__)(node, col + 1) + ")"
        return getattr(self, type(node).__name__)(node, col)

    @staticmethod
    def strength(node) -> int:
        if isinstance(node, ast.binop):
            return _BINOP[node.op]
        return {"cond": COND, "or_op": OR, "and_op": AND, "not_op": NOT, "neg": UNARY, "index": POSTFIX,
                "call": POSTFIX}.get(type(node).__name__, ATOM)

    def int_lit(self, n: ast.int_lit, col: int) -> str:
        return self.layout.literal(n) or str(n.value)

    def float_lit(self, n: ast.float_lit, col: int) -> str:
        return self.layout.literal(n) or repr(n.value)

    def str_lit(self, n: ast.str_lit, col: int) -> str:
        return f'"{n.value}"'

    def shape_lit(self, n: ast.shape_lit, col: int) -> str:
        return self.layout.literal(n) or "x".join(str(d) for d in n.dims)

    def bool_lit(self, n: ast.bool_lit, col: int) -> str:
        return "true" if n.value else "false"

    def name(self, n: ast.name, col: int) -> str:
        return n.id

    def binop(self, n: ast.binop, col: int) -> str:
        left_need, right_need = _OPERANDS[_BINOP[n.op]]
        left = self.expr(n.left, col, left_need)
        mid = f" {n.op} "
        return left + mid + self.expr(n.right, end_col(col, left + mid), right_need)

    def neg(self, n: ast.neg, col: int) -> str:
        return "-" + self.expr(n.operand, col + 1, UNARY)

    def not_op(self, n: ast.not_op, col: int) -> str:
        return "not " + self.expr(n.operand, col + 4, NOT)

    def and_op(self, n: ast.and_op, col: int) -> str:
        return self.infix(n, " and ", col, AND)

    def or_op(self, n: ast.or_op, col: int) -> str:
        return self.infix(n, " or ", col, OR)

    def infix(self, n, word: str, col: int, strength: int) -> str:
        left = self.expr(n.left, col, strength) + word
        return left + self.expr(n.right, end_col(col, left), strength + 1)

    def cond(self, n: ast.cond, col: int) -> str:
        text = self.expr(n.test, col, OR) + " ? "
        text += self.expr(n.then, end_col(col, text), COND) + " : "
        return text + self.expr(n.orelse, end_col(col, text), COND)

    def index(self, n: ast.index, col: int) -> str:
        target = self.expr(n.target, col, POSTFIX) + "["
        return target + self.expr(n.key, end_col(col, target)) + "]"

    def call(self, n: ast.call, col: int) -> str:
        func = self.expr(n.func, col, POSTFIX)
        return func + self.items("(", n.args, ")", end_col(col, func), n)

    def arg(self, n: ast.arg, col: int) -> str:
        prefix = f"{n.name} = " if n.name is not None else ""
        return prefix + self.expr(n.value, col + len(prefix))

    def list_lit(self, n: ast.list_lit, col: int) -> str:
        return self.items("[", n.items, "]", col, n)

    def list_comp(self, n: ast.list_comp, col: int) -> str:
        text = "[" + self.expr(n.item, col + 1) + f" for {n.var} in "
        text += self.expr(n.iterable, end_col(col, text))
        if n.test is not None:
            text += " if "
            text += self.expr(n.test, end_col(col, text))
        return text + "]"

    def map_item(self, n: ast.map_item, col: int) -> str:
        key = self.expr(n.key, col) + ": "
        return key + self.expr(n.value, end_col(col, key))

    def map_lit(self, n: ast.map_lit, col: int) -> str:
        return self.items("{", n.items, "}", col, n)

    def param(self, n: ast.param, col: int) -> str:
        if n.default is None:
            return n.name
        return f"{n.name} = " + self.expr(n.default, col + len(n.name) + 3)

    def items(self, open_: str, nodes, close: str, col: int, owner) -> str:
        """`(a, b, c)`: comma-separated, broken where the source broke. Continuation lines align
        under the bracket, or, where the source broke right after the bracket, hang one level in
        (then a `)` on a line of its own stays there, after a trailing comma)."""
        brackets = self.layout.brackets(owner)
        base, text = self.indent, open_
        hang = bool(brackets and nodes and self.layout.lines(nodes[0])[0] > brackets[0])
        inner = base + len(INDENT) if hang else col + len(open_)
        if hang:
            text += BREAK.format(brackets[0], self.layout.lines(nodes[0])[0]) + " " * inner
            self.indent = inner
        for i, node in enumerate(nodes):
            if i:
                lines = self.layout.breaks_before(nodes[i - 1], node)
                text += "," + (BREAK.format(*lines) + " " * inner if lines else " ")
                self.indent = inner if lines else self.indent
            text += self.expr(node, end_col(col, text))
        if hang and self.layout.lines(nodes[-1])[1] < brackets[1]:
            text += "," + BREAK.format(self.layout.lines(nodes[-1])[1], brackets[1]) + " " * base
            self.indent = base
        return text + close

    # ---- statements ----

    def stmt(self, node, depth: int) -> str | list[Line]:
        self.indent = len(INDENT) * depth          # of the physical line being written
        return getattr(self, type(node).__name__)(node, depth)

    def args_stmt(self, word: str, args, depth: int) -> str:
        """`stage x 3 basic(64) stride 2`: a keyword and juxtaposed arguments."""
        text = word
        for a in args:
            text += " " + self.expr(a, end_col(len(INDENT) * depth, text + " "))
        return text

    def clause(self, n: ast.clause, depth: int) -> str:
        text = self.args_stmt(n.keyword, n.args, depth)
        return text + " -> " + " ".join(n.outputs) if n.outputs else text

    def tap(self, n: ast.tap, depth: int) -> str:
        return "-> " + " ".join(n.names)

    def from_stmt(self, n: ast.from_stmt, depth: int) -> str:
        return f"from {n.tensor}"

    def repeat(self, n: ast.repeat, depth: int):
        head = self.args_stmt("repeat", (n.count,), depth) + (f" as {n.var}" if n.var else "")
        return self.seq_stmt(head, n, n.body, depth)

    def if_stmt(self, n: ast.if_stmt, depth: int):
        """`if c { a } else { b }` on one line, or `if c {`, ..., `} else {`, ..., `}`."""
        head = self.args_stmt("if", (n.test,), depth)
        then = self.seq_stmt(head, n, n.then, depth)
        if n.orelse is None:
            return then
        other = self.seq_stmt("else", n.orelse, n.orelse, depth)
        if isinstance(then, str) and isinstance(other, str):
            return f"{then} {other}"
        then = self.seq_stmt(head, n, n.then, depth, split=True)
        other = self.seq_stmt("else", n.orelse, n.orelse, depth, split=True)
        joint = Line(depth, "} else {", then[-1].first, other[0].last, opens=True, closes=True)
        return then[:-1] + [joint] + other[1:]

    def let_stmt(self, n: ast.let_stmt, depth: int) -> str:
        head = f"let {n.name} = "
        return head + self.expr(n.value, len(INDENT) * depth + len(head))

    def import_stmt(self, n: ast.import_stmt, depth: int) -> str:
        return f'import "{n.path}"'

    def input_stmt(self, n: ast.input_stmt, depth: int) -> str:
        if n.value is not None:
            return self.args_stmt("input", (n.value,), depth)
        return "input " + (self.layout.literal(n) or "x".join(str(d) for d in n.shape))

    def stage(self, n: ast.stage, depth: int) -> str:
        return self.args_stmt("stage", n.args, depth)

    def init_stmt(self, n: ast.init_stmt, depth: int) -> str:
        return self.args_stmt("init", n.args, depth)

    def drop_path_stmt(self, n: ast.drop_path_stmt, depth: int) -> str:
        return self.args_stmt("drop_path", n.args, depth)

    def merge_stmt(self, n: ast.merge_stmt, depth: int) -> str:
        return self.args_stmt("merge", n.args, depth)

    def scale_stmt(self, n: ast.scale_stmt, depth: int) -> str:
        return self.args_stmt("scale", (n.value,), depth)

    def shortcut(self, n: ast.shortcut, depth: int):
        if n.body is None:
            return self.args_stmt("shortcut", n.args, depth)
        return self.seq_stmt("shortcut", n, n.body, depth)

    def post(self, n: ast.post, depth: int):
        if not self.layout.braced(n):
            return "post " + self.clause(n.body.stmts[0], depth)
        return self.seq_stmt("post", n, n.body, depth)

    def pre(self, n: ast.pre, depth: int):
        return self.seq_stmt("pre", n, n.body, depth)

    def residual(self, n: ast.residual, depth: int):
        return self.seq_stmt("residual", n, n.body, depth)

    def stem(self, n: ast.stem, depth: int):
        return self.seq_stmt("stem", n, n.body, depth)

    def transition(self, n: ast.transition, depth: int):
        return self.seq_stmt("transition", n, n.body, depth)

    def head(self, n: ast.head, depth: int):
        return self.seq_stmt("head", n, n.body, depth)

    def aux(self, n: ast.aux, depth: int):
        word = "aux" if n.weight is None else self.args_stmt("aux weight", (n.weight,), depth)
        return self.seq_stmt(word, n, n.body, depth)

    def branch(self, n: ast.branch, depth: int):
        return self.seq_stmt("branch", n, n.body, depth)

    def aggregate(self, n: ast.aggregate, depth: int):
        return self.seq_stmt(self.args_stmt("aggregate", (n.count,), depth), n, n.body, depth)

    def parallel(self, n: ast.parallel, depth: int):
        return self.braced(f"parallel {n.mode}", n, n, n.branches, depth, " ")

    def seq_stmt(self, header: str, node, body: ast.seq, depth: int, split: bool = False):
        return self.braced(header, node, body, body.stmts, depth, "; ", split)

    def network(self, n: ast.network, depth: int):
        return self.braced(self.signature("network", n, depth), n, n, n.body, depth, "; ")

    def block_def(self, n: ast.block_def, depth: int):
        return self.braced(self.signature("block", n, depth), n, n, n.body, depth, "; ")

    def signature(self, word: str, n, depth: int) -> str:
        head = f"{word} {n.name}"
        return head + self.items("(", n.params, ")", len(INDENT) * depth + len(head), n)

    def module(self, n: ast.module) -> list[Line]:
        return self.body(n.items, 0, "; ")

    # ---- layout of statement lists ----

    def braced(self, header: str, node, container, stmts, depth: int, joiner: str, split: bool = False):
        """`header { a; b }` on one line, or the header, the statements one level in, and `}`."""
        parts = [self.stmt(s, depth + 1) for s in stmts]
        first, _ = self.layout.lines(node)
        open_line, close_line = self.layout.brace_lines(container)
        if not split and all(isinstance(p, str) for p in parts) and self.layout.inline(container, parts):
            return header + (" { " + joiner.join(parts) + " }" if parts else " {}")
        return [Line(depth, header + " {", first, open_line, opens=True),
                *self.body(stmts, depth + 1, joiner, parts),
                Line(depth, "}", close_line, close_line, closes=True)]

    def body(self, stmts, depth: int, joiner: str, parts=None) -> list[Line]:
        """Statements one per line, except those the source wrote on one line (`bn; relu`)."""
        parts = parts if parts is not None else [self.stmt(s, depth) for s in stmts]
        out: list[Line] = []
        for i, (s, p) in enumerate(zip(stmts, parts)):
            first, last = self.layout.lines(s)
            if isinstance(p, list):
                out.extend(p)
            elif i and isinstance(parts[i - 1], str) and self.layout.same_line(stmts[i - 1], s):
                prev = out[-1]
                prev.text += joiner + shift(p, len(prev.text) + len(joiner) - len(INDENT) * depth)
                prev.last = last
            else:
                out.append(Line(depth, p, first, last))
        return out


def end_col(col: int, text: str) -> int:
    """The column after writing `text` from column `col`."""
    if "\n" in text:
        return len(text.rsplit("\n", 1)[1].split("\x00")[-1])
    return col + len(text)


def shift(text: str, by: int) -> str:
    """Re-indent the continuation lines of `text` when it moves `by` columns to the right."""
    if "\n" not in text or by == 0:
        return text
    head, *rest = text.split("\n")
    out = [head]
    for r in rest:
        _, tag, tail = r.split("\x00", 2)
        out.append(f"\x00{tag}\x00" + " " * by + tail)
    return "\n".join(out)


GENERATED = Span("<generated>", 0, 0)     # the span of a node no source wrote (`show`)


def literal(v: Any) -> ast.Expr | None:
    """A Python value as the expression that denotes it in a spec, or None where the language has
    no literal for it: the one value-to-literal function (show, messages and --set text read it)."""
    if isinstance(v, bool):
        return ast.bool_lit(value=v, span=GENERATED)
    if isinstance(v, (int, float)) and v < 0:
        inner = literal(-v)
        return None if inner is None else ast.neg(operand=inner, span=GENERATED)
    if isinstance(v, int):
        return ast.int_lit(value=v, span=GENERATED)
    if isinstance(v, float):
        ok = math.isfinite(v) and re.fullmatch(r"[\d.e+-]+", repr(v))
        return ast.float_lit(value=v, span=GENERATED) if ok else None
    if isinstance(v, (list, tuple)):
        items = [literal(x) for x in v]
        return None if None in items else ast.list_lit(items=tuple(items), span=GENERATED)
    if isinstance(v, str):
        return ast.str_lit(value=v, span=GENERATED) if '"' not in v and "\n" not in v else None
    name = getattr(v, "name", None)             # a symbol (`projection`) or a block reference
    return ast.name(id=name, span=GENERATED) if isinstance(name, str) else None


def literal_text(v: Any) -> str | None:
    """`literal(v)` as text (None where there is no literal)."""
    node = literal(v)
    return None if node is None else Generator().expr(node)


def unparse(node, layout=None) -> str:
    """The AST (a module or an expression) as .res text, in the default layout, no comments."""
    g = Generator(layout)
    if isinstance(node, ast.module):
        return weave(g.module(node), [], "")
    return g.expr(node)


def weave(lines: list[Line], comments: list, text: str) -> str:
    """Lines -> text, with the source's comments (layout.Comment) and blank lines put back (`fmt`)."""
    phys = _physical(lines)
    before: dict[int, list[Comment]] = {}
    after: dict[int, Comment] = {}
    for c in comments:
        target = _trailing_target(phys, c) if c.trailing else None
        if target is not None and target not in after:
            after[target] = c
        else:
            # own line: before the first line that reaches below it (a comment inside an expression
            # that is joined onto one line goes above that line)
            before.setdefault(next((i for i, p in enumerate(phys) if p.last >= c.line), len(phys)), []).append(c)
    source = text.split("\n")
    blank = lambda n: 2 <= n <= len(source) + 1 and not source[n - 2].strip()    # noqa: E731
    out: list[tuple[str, str | None]] = []
    for i in range(len(phys) + 1):
        p = phys[i] if i < len(phys) else None
        for c in before.get(i, []):
            _blank_line(out, blank(c.line))
            out.append((_comment_indent(p) + c.text.lstrip(), None))
        if p is None:
            break
        if not p.cont and not p.closes:
            _blank_line(out, blank(p.first) or (not text and p.depth == 0 and p.opens))
        out.append((p.text, after[i].text if i in after else None))
    return _align(out)


class _Phys:
    """One physical output line: its text (indented), source lines, and role."""
    def __init__(self, depth, text, first, last, opens=False, closes=False, cont=False):
        self.depth, self.text, self.first, self.last = depth, text, first, last
        self.opens, self.closes, self.cont = opens, closes, cont


def _physical(lines: list[Line]) -> list[_Phys]:
    """Split lines at their bracket breaks; continuation lines carry their own absolute column."""
    out = []
    for ln in lines:
        head, *rest = ln.text.split("\n")
        tags = [r.split("\x00", 2) for r in rest]
        ends = [tuple(map(int, t[1].split(","))) for t in tags]       # (line before, line after)
        firsts = [ln.first] + [after for _, after in ends]
        texts = [INDENT * ln.depth + head] + [t[2] for t in tags]
        for k, t in enumerate(texts):
            last = ends[k][0] if k + 1 < len(texts) else ln.last
            out.append(_Phys(ln.depth, t, firsts[k], last, ln.opens and k == len(texts) - 1,
                             ln.closes, cont=k > 0))
    return out


def _trailing_target(phys: list[_Phys], c) -> int | None:
    """The last output line that ends with the code the comment followed."""
    hits = [i for i, p in enumerate(phys) if p.last == c.line and p.first <= c.line]
    return hits[-1] if hits else None


def _comment_indent(p: _Phys | None) -> str:
    if p is None:
        return ""
    if p.cont:
        return " " * (len(p.text) - len(p.text.lstrip(" ")))
    return INDENT * (p.depth + 1 if p.closes else p.depth)


def _blank_line(out: list, wanted: bool) -> None:
    """At most one blank line, never first in the file or right after a `{`."""
    if wanted and out and out[-1][0] and not out[-1][0].endswith("{"):
        out.append(("", None))


def _align(out: list[tuple[str, str | None]]) -> str:
    """Trailing comments two spaces after the code, aligned down each run of commented lines."""
    lines, i = [], 0
    while i < len(out):
        j = i
        while j < len(out) and out[j][1] is not None:
            j += 1
        if j == i:
            lines.append(out[i][0].rstrip())
            i += 1
            continue
        col = max(len(code.rstrip()) for code, _ in out[i:j]) + 2
        lines += [code.rstrip().ljust(col) + comment for code, comment in out[i:j]]
        i = j
    text = "\n".join(lines).rstrip("\n")
    return re.sub(r"[ \t]+$", "", text, flags=re.M) + "\n" if text else ""
