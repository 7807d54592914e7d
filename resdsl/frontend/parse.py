"""parse(text) -> ast.module: Lark LALR with positions, then a transformer to frozen models."""
from __future__ import annotations

import functools
import re
from contextvars import ContextVar
from importlib import resources

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from ..errors import Span, SpecError
from . import ast
from .syntax_errors import syntax_error, token_span


def grammar_text() -> str:
    """The grammar, shipped inside the package (`resdsl/grammars/`, linked from the repository's `grammars/`)."""
    return resources.files("resdsl").joinpath("grammars/resdsl.lark").read_text()


_OPERAND_END = ("NAME", "INT", "FLOAT", "STRING", "SHAPE", "RPAR", "RSQB")
# The text being parsed, for the post-lexer to look at the spacing. Lark hands a post-lexer only
# the token stream, and the parser (with its post-lexer) is built once; a context variable keeps
# the text per thread (and per asyncio task), so parses running at once never see each other's.
_TEXT: ContextVar[str] = ContextVar("resdsl_parse_text")


class Separators:
    """Post-lexer: drop newlines inside (...) and [...], collapse runs of separators, and tell
    binary from unary minus.

    Clause arguments are juxtaposed (`merge gate bias -2`), so after an operand a '-' may
    start a new argument. The rule, as in shells: a '-' after an operand is unary only outside
    brackets, with a space before it and none after (`bias -2`); otherwise it is binary
    (`depth - 2`, `depth-2`, `(a -2)`). Likewise a '[' spaced after an operand outside brackets
    opens a list (`kernel [1, 7]`), while `layers[0]` indexes; and a '(' spaced after an operand
    outside brackets opens a bracketed argument (`unit dim (grid)`, `stride (s * 2)`), while
    `max(1, c)` and `rvb()` call.
    """

    always_accept = ("_SEP",)

    def process(self, stream):
        text = _TEXT.get()
        depth = 0
        previous = None
        previous_end = 0
        for tok in stream:
            if tok.type == "_SEP":
                if depth > 0 or previous in (None, "_SEP", "LBRACE", "COMMA"):
                    continue
            elif tok.value == "-" and tok.type in ("MINUS", "ADD_OP") and previous in _OPERAND_END:
                after = text[tok.end_pos:tok.end_pos + 1]
                unary = depth == 0 and tok.start_pos > previous_end and after not in ("", " ", "\t")
                tok = Token.new_borrow_pos("MINUS" if unary else "ADD_OP", tok.value, tok)
            elif tok.type == "LSQB" and depth == 0 and previous in _OPERAND_END and tok.start_pos > previous_end:
                tok = Token.new_borrow_pos("_LIST_OPEN", tok.value, tok)
                depth += 1
            elif tok.type == "LPAR" and depth == 0 and previous in _OPERAND_END and tok.start_pos > previous_end:
                tok = Token.new_borrow_pos("_PAREN_OPEN", tok.value, tok)     # `unit dim (grid)`: an argument
                depth += 1
            elif tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            previous, previous_end = tok.type, tok.end_pos
            yield tok



@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    # cache=True: Lark keeps the built LALR tables in the temp folder, keyed by a hash of the
    # grammar and options (0.19 s -> 0.01 s per process; a stale or corrupt cache is rebuilt).
    return Lark(grammar_text(), parser="lalr", start=["module", "expr"], propagate_positions=True,
                postlex=Separators(), maybe_placeholders=True, cache=True)


def _span(meta_or_tok, file: str, text: str) -> Span:
    m = meta_or_tok
    if isinstance(m, Token):
        return token_span(m, file, text)
    if getattr(m, "empty", False):
        return Span(file, 1, 1, 1, 1, text)
    return Span(file, m.line, m.column, m.end_line, m.end_column, text)


def parse(text: str, file: str = "<spec>") -> ast.module:
    """Parse a .res text into its syntax tree; syntax errors become SpecError with a span."""
    return _parse(text, file, "module")


def parse_expr(text: str, file: str = "<expr>") -> ast.Expr:
    """Parse one expression (the value of `--set name=VALUE`)."""
    return _parse(text, file, "expr")


def _parse(text: str, file: str, start: str):
    token = _TEXT.set(text)
    try:
        tree = parser().parse(text, start=start)
        return ToAst(file, text).transform(tree)
    except UnexpectedInput as e:
        raise syntax_error(e, file, text, parser().terminals) from None
    except RecursionError:
        raise _too_deep(text, file) from None
    except VisitError as e:      # the transformer's RecursionError arrives wrapped
        if isinstance(e.orig_exc, RecursionError):
            raise _too_deep(text, file) from None
        raise
    finally:
        _TEXT.reset(token)


_OPERATOR = re.compile(r"\*\*|[?:+\-*/%<>]|\bnot\b|\band\b|\bor\b")


def _too_deep(text: str, file: str) -> SpecError:
    """An operator chain too long for the parser's stack (`2 ** 2 ** ...`, `c ? a : c ? a : ...`),
    located at the line with the most operators (brackets are refused earlier, in screen.py)."""
    from .. import limits
    from ..errors import source_lines

    lines = source_lines(text)
    counts = [len(_OPERATOR.findall(ln)) for ln in lines]
    i = max(range(len(lines)), key=counts.__getitem__) if lines else 0
    col = next((j + 1 for j, ch in enumerate(lines[i]) if not ch.isspace()), 1) if lines else 1
    return limits.NESTING.error(f"an operator chain of {counts[i] if lines else 0:,} operators is too long to parse",
                                Span(file, i + 1, col, i + 1, col + 1, text))


@v_args(meta=True)
class ToAst(Transformer):
    """One method per grammar rule, named as the rule and its AST class."""

    def __init__(self, file: str, text: str):
        super().__init__()
        self.file, self.text = file, text

    def _s(self, meta) -> Span:
        return _span(meta, self.file, self.text)

    # -- literals and names --
    def int_lit(self, meta, c):
        return ast.int_lit(span=self._s(c[0]), value=int(c[0]))

    def float_lit(self, meta, c):
        return ast.float_lit(span=self._s(c[0]), value=float(c[0]))

    def str_lit(self, meta, c):
        return ast.str_lit(span=self._s(c[0]), value=str(c[0])[1:-1])

    def shape_lit(self, meta, c):
        return ast.shape_lit(span=self._s(c[0]), dims=tuple(int(p) for p in str(c[0]).split("x")))

    def true_lit(self, meta, c):
        return ast.bool_lit(span=self._s(meta), value=True)

    def false_lit(self, meta, c):
        return ast.bool_lit(span=self._s(meta), value=False)

    def name(self, meta, c):
        return ast.name(span=self._s(c[0]), id=str(c[0]))

    # -- operators --
    def binop(self, meta, c):
        return ast.binop(span=self._s(c[1]), op=str(c[1]), left=c[0], right=c[2])

    def neg(self, meta, c):
        return ast.neg(span=self._s(meta), operand=c[0])

    def not_op(self, meta, c):
        return ast.not_op(span=self._s(meta), operand=c[0])

    def and_op(self, meta, c):
        return ast.and_op(span=self._s(meta), left=c[0], right=c[1])

    def or_op(self, meta, c):
        return ast.or_op(span=self._s(meta), left=c[0], right=c[1])

    def cond(self, meta, c):
        return ast.cond(span=self._s(meta), test=c[0], then=c[1], orelse=c[2])

    def index(self, meta, c):
        return ast.index(span=self._s(meta), target=c[0], key=c[1])

    def call(self, meta, c):
        args = tuple(c[1]) if c[1] is not None else ()
        return ast.call(span=self._s(meta), func=c[0], args=args)

    def args(self, meta, c):
        return c

    def arg(self, meta, c):
        return ast.arg(span=self._s(meta), name=str(c[0]) if c[0] is not None else None, value=c[1])

    def list_lit(self, meta, c):
        return ast.list_lit(span=self._s(meta), items=tuple(x for x in c if x is not None))

    def list_comp(self, meta, c):
        return ast.list_comp(span=self._s(meta), item=c[0], var=str(c[1]), iterable=c[2], test=c[3])

    def map_item(self, meta, c):
        return ast.map_item(span=self._s(meta), key=c[0], value=c[1])

    def map_lit(self, meta, c):
        return ast.map_lit(span=self._s(meta), items=tuple(x for x in c if x is not None))

    # -- sequences --
    def clause(self, meta, c):
        args = [x for x in c[1:] if not isinstance(x, Token)]
        outputs = tuple(str(x) for x in c[1:] if isinstance(x, Token))
        return ast.clause(span=self._s(meta), keyword=str(c[0]), keyword_span=self._s(c[0]),
                          args=tuple(a for a in args if a is not None), outputs=outputs)

    def tap(self, meta, c):
        return ast.tap(span=self._s(meta), names=tuple(str(x) for x in c))

    def from_stmt(self, meta, c):
        return ast.from_stmt(span=self._s(meta), tensor=str(c[0]))

    def if_stmt(self, meta, c):
        return ast.if_stmt(span=self._s(meta), test=c[0], then=c[1], orelse=c[2])

    def repeat(self, meta, c):
        return ast.repeat(span=self._s(meta), count=c[0], var=str(c[1]) if c[1] is not None else None, body=c[2])

    def let_stmt(self, meta, c):
        return ast.let_stmt(span=self._s(meta), name=str(c[0]), value=c[1])

    def seq(self, meta, c):
        return ast.seq(span=self._s(meta), stmts=tuple(c))

    def branch(self, meta, c):
        return ast.branch(span=self._s(meta), body=c[0])

    def parallel(self, meta, c):
        return ast.parallel(span=self._s(meta), mode=str(c[0]), mode_span=self._s(c[0]),
                            branches=tuple(c[1:]))

    def aggregate(self, meta, c):
        return ast.aggregate(span=self._s(meta), count=c[0], body=c[1])

    # -- blocks --
    def pre(self, meta, c):
        return ast.pre(span=self._s(meta), body=c[0])

    def residual(self, meta, c):
        return ast.residual(span=self._s(meta), body=c[0])

    def shortcut(self, meta, c):
        if c and isinstance(c[0], ast.seq):
            return ast.shortcut(span=self._s(meta), body=c[0], args=())
        return ast.shortcut(span=self._s(meta), body=None, args=tuple(c))

    def post(self, meta, c):
        body = c[0]
        if isinstance(body, ast.clause):
            body = ast.seq(span=body.span, stmts=(body,))
        return ast.post(span=self._s(meta), body=body)

    def scale_stmt(self, meta, c):
        return ast.scale_stmt(span=self._s(meta), value=c[0])

    def merge_stmt(self, meta, c):
        return ast.merge_stmt(span=self._s(meta), args=tuple(c))

    def params(self, meta, c):
        return tuple(c)

    def param(self, meta, c):
        return ast.param(span=self._s(c[0]), name=str(c[0]), default=c[1])

    def block_def(self, meta, c):
        return ast.block_def(span=self._s(c[0]), name=str(c[0]), params=c[1] or (), body=tuple(c[2:]))

    # -- networks --
    def input_stmt(self, meta, c):
        v = c[0]
        if isinstance(v, ast.shape_lit):
            return ast.input_stmt(span=self._s(meta), shape=v.dims, value=None)
        return ast.input_stmt(span=self._s(meta), shape=None, value=v)

    def stem(self, meta, c):
        return ast.stem(span=self._s(meta), body=c[0])

    def stage(self, meta, c):
        return ast.stage(span=self._s(meta), args=tuple(c))

    def transition(self, meta, c):
        return ast.transition(span=self._s(meta), body=c[0])

    def head(self, meta, c):
        return ast.head(span=self._s(meta), body=c[0])

    def aux(self, meta, c):
        return ast.aux(span=self._s(meta), weight=c[0], body=c[1])

    def init_stmt(self, meta, c):
        return ast.init_stmt(span=self._s(meta), args=tuple(c))

    def drop_path_stmt(self, meta, c):
        return ast.drop_path_stmt(span=self._s(meta), args=tuple(c))

    def network(self, meta, c):
        return ast.network(span=self._s(c[0]), name=str(c[0]), params=c[1] or (), body=tuple(c[2:]))

    def import_stmt(self, meta, c):
        return ast.import_stmt(span=self._s(meta), path=str(c[0])[1:-1])

    def module(self, meta, c):
        return ast.module(span=self._s(meta), items=tuple(c))
