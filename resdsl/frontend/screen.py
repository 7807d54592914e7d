"""Screen source text before parsing: size, NUL bytes, encoding, bracket depth, long integers.

The parser and the transformer recurse once per nesting level, so text nested beyond
limits.NESTING is refused here, with a span, before any recursion can run out of stack.
"""
from __future__ import annotations

import re

from .. import limits
from ..errors import Span, SpecError

_OPEN, _CLOSE = "([{", ")]}"


def decode(raw: bytes, file: str) -> str:
    """UTF-8 spec text from bytes; a binary or non-UTF-8 file is refused without echoing it."""
    limits.SOURCE_BYTES.check(len(raw), Span(file, 1, 1, 1, 2))
    if b"\0" in raw:
        raise SpecError(f"'{file}' is not a spec: it contains NUL bytes (a binary file?)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(f"'{file}' is not UTF-8 text (invalid byte 0x{raw[e.start]:02x} on line {line})").with_note(
            "specs are UTF-8; convert the file, e.g. iconv -f latin1 -t utf-8") from None


def screen(text: str, file: str) -> None:
    """Refuse text that would exhaust the parser: too large, nested too deeply, giant integers."""
    limits.SOURCE_BYTES.check(len(text), Span(file, 1, 1, 1, 2, text))
    if "\0" in text:
        raise SpecError(f"'{file}' contains a NUL byte; a spec is text")
    _check_depth(text, file)
    n = limits.INT_DIGITS.value
    m = re.compile(r"\d{%d,}" % (n + 1)).search(text)
    if m:
        raise limits.INT_DIGITS.error(f"{m.end() - m.start():,} digits", _span_at(text, file, m.start(), m.end()))


def _check_depth(text: str, file: str) -> None:
    depth, limit, in_str, i = 0, limits.NESTING.value, False, 0
    while i < len(text):
        ch = text[i]
        if in_str:
            in_str = ch != '"' and ch != "\n"
        elif ch == '"':
            in_str = True
        elif ch == "#":
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
            continue
        elif ch in _OPEN:
            depth += 1
            if depth > limit:
                raise limits.NESTING.error(f"depth {depth}", _span_at(text, file, i, i + 1))
        elif ch in _CLOSE:
            depth -= 1
        i += 1


def _span_at(text: str, file: str, start: int, end: int) -> Span:
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return Span(file, line, col, line, col + max(1, min(end - start, 80)), text)


def check_ast(mod) -> None:
    """Counts bounded per syntax node (limits.BRANCHES), before lowering multiplies them."""
    todo = [mod]
    while todo:
        node = todo.pop()
        if isinstance(node, (tuple, list)):
            todo.extend(node)
            continue
        fields = getattr(type(node), "model_fields", None)
        if not fields:
            continue
        branches = getattr(node, "branches", None)
        if isinstance(branches, tuple):
            limits.BRANCHES.check(len(branches), getattr(node, "span", None))
        todo.extend(getattr(node, f) for f in fields if f != "span")
