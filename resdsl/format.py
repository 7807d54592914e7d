"""`resdsl fmt`: one canonical layout for .res files (as black and gofmt do for theirs).

    text --parse--> AST --unparse (SourceLayout)--> lines --weave comments, blank lines--> text

The writer's line structure is kept (which statements share a line, which `{ ... }` stay on one
line, where a bracketed list breaks); everything else is re-spaced: two spaces per level, one
space between arguments, `; ` between statements on a line, `a = b`, `[a, b]`, `x * 2`, at most
one blank line in a row, trailing comments two spaces after the code and aligned down a run of
commented lines. The result parses to the same tree (checked on every call) and is a fixed point.
"""
from __future__ import annotations

import re

from .errors import SpecError
from .frontend import ast
from .frontend.layout import Comment, SourceLayout
from .frontend.parse import parse
from .frontend.unparse import INDENT, Generator, Line


def format_text(text: str, file: str = "<stdin>") -> str:
    """`text` in the canonical layout; a SpecError when it does not parse."""
    tree = parse(text, file)
    layout = SourceLayout(text)
    out = weave(Generator(layout).module(tree), layout.comments, text)
    if tree_key(parse(out, file)) != tree_key(tree) or len(SourceLayout(out).comments) != len(layout.comments):
        raise SpecError(f"{file}: the formatter would change this program (a bug in resdsl fmt); "
                        "file left as it is")
    return out


def tree_key(node):
    """A node without its source positions, for comparing trees (`fmt` and `show` round trips)."""
    if isinstance(node, ast.Node):
        return (type(node).__name__, *((k, tree_key(getattr(node, k))) for k in type(node).model_fields
                                       if not k.endswith("span")))
    if isinstance(node, tuple):
        return tuple(tree_key(v) for v in node)
    return node


def weave(lines: list[Line], comments: list[Comment], text: str) -> str:
    """Lines (from the unparser) -> text, with the comments and blank lines of the source put back."""
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


def _trailing_target(phys: list[_Phys], c: Comment) -> int | None:
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
