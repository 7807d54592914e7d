"""What the syntax tree forgets and a formatter keeps: comments, brackets, line structure, spelling.

The tree holds spans; `SourceLayout` answers the unparser's layout questions from them and from
one scan of the text for brackets and comments (strings skipped), so that `resdsl fmt` keeps the
writer's line structure while re-spacing everything else (as gofmt does).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel

from ..frontend import ast
from ..frontend.unparse import DefaultLayout

_SCAN = re.compile(r'"[^"\n]*"|#[^\n]*|[{}()\[\]]')


@dataclass(frozen=True)
class Comment:
    line: int
    text: str
    trailing: bool               # code before it on its line


class SourceLayout(DefaultLayout):
    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.comments: list[Comment] = []
        self.match: dict[int, int] = {}          # offset of an opening bracket -> offset of its closer
        self._scan()
        self._lines: dict[int, tuple[int, int]] = {}

    def _scan(self) -> None:
        stack = []
        for m in _SCAN.finditer(self.text):
            tok, pos = m.group(), m.start()
            if tok[0] == "#":
                line = self.line_of(pos)
                before = self.text[self.starts[line - 1]:pos]
                self.comments.append(Comment(line, tok.rstrip(), bool(before.strip())))
            elif tok in "{([":
                stack.append(pos)
            elif tok in "})]" and stack:
                self.match[stack.pop()] = pos

    def line_of(self, offset: int) -> int:
        lo, hi = 0, len(self.starts)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.starts[mid] <= offset else (lo, mid)
        return lo + 1

    def offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1

    # ---- answers to the unparser ----

    def literal(self, node) -> str | None:
        s = node.span
        if s.line != s.end_line:
            return None
        text = self.text[self.offset(s.line, s.column):self.offset(s.end_line, s.end_column)]
        if isinstance(node, ast.input_stmt):
            text = text[len("input"):].strip()      # `input 3x8x8` (or `input3x8x8`)
        return text if re.fullmatch(r"[\w.+-]+", text) else None

    def lines(self, node) -> tuple[int, int]:
        """First and last source line of a node (a binop's own span is only its operator)."""
        key = id(node)
        if key not in self._lines:
            lo, hi = node.span.line, node.span.end_line or node.span.line
            for child in _children(node):
                c_lo, c_hi = self.lines(child)
                lo, hi = min(lo, c_lo), max(hi, c_hi)
            if isinstance(node, (ast.network, ast.block_def, ast.parallel)):
                hi = max(hi, self.brace_lines(node)[1])
            self._lines[key] = (lo, hi)
        return self._lines[key]

    def brace_lines(self, node) -> tuple[int, int]:
        """Lines of the `{` and `}` of a braced statement."""
        if isinstance(node, ast.seq):
            return node.span.line, node.span.end_line
        s = node.mode_span if isinstance(node, ast.parallel) else node.span
        pos = self.offset(s.end_line, s.end_column)
        if isinstance(node, (ast.network, ast.block_def)):
            pos = self.match[self.text.index("(", pos)]
        brace = self.text.index("{", pos)
        return self.line_of(brace), self.line_of(self.match[brace])

    def brackets(self, owner) -> tuple[int, int]:
        """Lines of the opening and closing bracket of a list, map, call or parameter list."""
        if isinstance(owner, (ast.list_lit, ast.list_comp, ast.map_lit)):
            return owner.span.line, owner.span.end_line
        if isinstance(owner, ast.call):
            pos = self.text.index("(", self._end(owner.func))
        else:                                   # network or block_def: `(` after its name
            pos = self.text.index("(", self.offset(owner.span.end_line, owner.span.end_column))
        return self.line_of(pos), self.line_of(self.match[pos])

    def _end(self, node) -> int:
        """Offset just after the last token of an expression (its own span, or its last child's)."""
        ends = [self.offset(n.span.end_line, n.span.end_column) for n in _walk(node)]
        return max(ends)

    def inline(self, container, parts) -> bool:
        first, last = self.brace_lines(container)
        return first == last

    def same_line(self, before, after) -> bool:
        return self.lines(after)[0] == self.lines(before)[1]

    def breaks_before(self, before, after) -> tuple[int, int] | None:
        """(last line of `before`, first of `after`) where the source broke the line between them."""
        end, line = self.lines(before)[1], self.lines(after)[0]
        return (end, line) if line > end else None

    def braced(self, post: ast.post) -> bool:
        s = post.body.span
        return self.text[self.offset(s.line, s.column)] == "{"


def _walk(node):
    yield node
    for c in _children(node):
        yield from _walk(c)


def _children(node):
    for name in type(node).model_fields:
        value = getattr(node, name)
        if isinstance(value, BaseModel) and hasattr(value, "span") and name != "span":
            yield value
        elif isinstance(value, tuple):
            yield from (v for v in value if isinstance(v, BaseModel) and hasattr(v, "span"))
