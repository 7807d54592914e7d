"""`resdsl fmt`: one canonical layout for .res files (as black and gofmt do for theirs).

    text --parse--> AST --unparse (SourceLayout)--> lines --weave comments, blank lines--> text

The writer's line structure is kept (which statements share a line, which `{ ... }` stay on one
line, where a bracketed list breaks); everything else is re-spaced: two spaces per level, one
space between arguments, `; ` between statements on a line, `a = b`, `[a, b]`, `x * 2`, at most
one blank line in a row, trailing comments two spaces after the code and aligned down a run of
commented lines. The result parses to the same tree (checked on every call) and is a fixed point.
"""
from __future__ import annotations

from ..errors import SpecError
from ..frontend import ast
from ..frontend.parse import parse
from ..frontend.unparse import Generator, weave
from .layout import SourceLayout


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
