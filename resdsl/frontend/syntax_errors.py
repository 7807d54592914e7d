"""Syntax errors as a person would want them: what was found, what was expected, unclosed brackets."""
from __future__ import annotations

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import Span, SpecError, source_lines


def token_span(tok: Token, file: str, text: str | None = None) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + len(tok), text)


# Token names as a person would write them, for "expected ..." notes.
_TOKEN_WORDS = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "SHAPE": "a shape like 3x224x224", "_SEP": "a newline or ';'", "LBRACE": "'{'",
    "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "SEMICOLON": "';'", "QMARK": "'?'",
    "$END": "end of file", "ADD_OP": "'+' or '-'", "MUL_OP": "an operator",
    "COMPARE_OP": "a comparison", "POW_OP": "'**'", "MINUS": "'-'",
}


# Tokens that can start an expression: reported together as "an expression".
_EXPR_START = {"INT", "FLOAT", "STRING", "NAME", "SHAPE", "LPAR", "_PAREN_OPEN", "LSQB", "_LIST_OPEN", "LBRACE", "MINUS",
               "TRUE", "FALSE", "NOT"}
# Statements of a network or block body: one found nested deeper means a '}' is missing before it.
_STATEMENT_WORDS = {"network": 0, "block": 0, "import": 0, "input": 1, "stem": 1, "stage": 1,
                    "transition": 1, "head": 1, "aux": 1, "init": 1, "drop_path": 1, "pre": 1, "residual": 1,
                    "shortcut": 1, "post": 1, "scale": 1, "merge": 1, "combine": 1}
_MAX_EXPECTED = 6


def _words(expected, terminals) -> list[str]:
    expected = set(expected)
    out = set()
    if {"NAME", "INT"} <= expected:
        expected -= _EXPR_START
        out.add("an expression")
    for name in expected:
        if name in _TOKEN_WORDS:
            out.add(_TOKEN_WORDS[name])
        elif name.isupper():
            term = next((t for t in terminals if t.name == name), None)
            pattern = getattr(term, "pattern", None)
            out.add(f"'{pattern.value}'" if pattern is not None and pattern.type == "str" else name.lower())
        else:
            out.add(name)
    return sorted(out)


def _open_brackets(text: str, line: int, col: int):
    """Brackets still open at (line, col), and the first statement keyword nested too deep.

    Returns (stack of (char, line, col), misplaced) where misplaced is (word, line, col, opener)
    for a line starting with e.g. `stage` inside an unclosed `stem { ...`: the usual missing '}'.
    """
    stack: list[tuple[str, int, int]] = []
    misplaced = None
    for ln, src in enumerate(source_lines(text)[:line], start=1):
        limit = col - 1 if ln == line else len(src)
        words = src.split()
        word = words[0].split("{")[0] if words else ""
        braces = [b for b in stack if b[0] == "{"]
        if misplaced is None and word in _STATEMENT_WORDS and len(braces) > _STATEMENT_WORDS[word]:
            misplaced = (word, ln, src.index(word) + 1, braces[-1])
        in_string = False
        for i, ch in enumerate(src[:limit]):
            if ch == '"':
                in_string = not in_string
            elif in_string:
                continue
            elif ch == "#":
                break
            elif ch in "([{":
                stack.append((ch, ln, i + 1))
            elif ch in ")]}" and stack and stack[-1][0] == "([{"[")]}".index(ch)]:
                stack.pop()
    return stack, misplaced


def syntax_error(e: UnexpectedInput, file: str, text: str, terminals) -> SpecError:
    """A Lark error as a SpecError: what was found, what was expected, and any unclosed bracket."""
    line, col = getattr(e, "line", 1) or 1, getattr(e, "column", 1) or 1
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else "?"
        err = SpecError(f"unexpected character {ch!r}", Span(file, line, col, line, col + 1, text))
        allowed = _words(e.allowed or (), terminals)
    elif isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        last = source_lines(text.rstrip()) or [""]
        line, col = max(1, len(last)), len(last[-1]) + 1
        err = SpecError("unexpected end of file", Span(file, line, col, line, col + 1, text))
        allowed = _words(e.expected, terminals)
    else:
        tok = e.token
        shown = "end of line" if tok.type == "_SEP" and tok.value != ";" else repr(str(tok))
        err = SpecError(f"unexpected {shown}", token_span(tok, file, text))
        allowed = _words(e.accepts or e.expected, terminals)
    stack, misplaced = _open_brackets(text, line, col)
    if misplaced is not None:
        word, ln, c, (_, bl, bc) = misplaced
        return SpecError("'{' is not closed", Span(file, bl, bc, bl, bc + 1, text)).with_note(
            f"expected '}}' before '{word}' on line {ln}")
    if 0 < len(allowed) <= _MAX_EXPECTED:
        err.with_note("expected " + (", ".join(allowed[:-1]) + " or " + allowed[-1] if len(allowed) > 1 else allowed[0]))
    at_end = err.message == "unexpected end of file"
    if stack and (stack[-1][0] in "([" or at_end) and stack[-1][1] < line:
        ch, bl, bc = stack[-1]
        err.with_note(f"the '{ch}' at line {bl}, column {bc} is not closed")
    return err
