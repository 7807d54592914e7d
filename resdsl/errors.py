"""One error type for every mistake in a spec, displayed once: file:line:col, source line, caret."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Iterable


@dataclass(frozen=True)
class Span:
    """A region of a source text: 1-based line and column, end exclusive. The span carries the
    text it points into (shared, not copied), so an error found late still shows its own line."""

    file: str
    line: int
    column: int
    end_line: int = 0
    end_column: int = 0
    text: str | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def raw_line(self) -> str | None:
        """The span's line as written, or None when the source is unknown."""
        lines = source_lines(self.text or "")
        return lines[self.line - 1] if 0 < self.line <= len(lines) else None

    def source_line(self) -> str:
        """The text of the span's line, stripped, or '' when the source is unknown."""
        return (self.raw_line() or "").strip()


# Line breaks that str.splitlines honours but the parser (Lark counts '\n' only) does not: shown as
# a space, so the caret stays under its column and the terminal shows one line.
_OTHER_BREAKS = str.maketrans({c: " " for c in "\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def source_lines(text: str) -> list[str]:
    """The lines of a source as the parser numbers them: split at '\n' only (a U+2028 in a
    comment is not a line break to Lark, so it must not be one here), a trailing '\r' dropped."""
    return [ln.removesuffix("\r").translate(_OTHER_BREAKS) for ln in text.split("\n")]


def source_line(span: Span) -> str:
    return span.source_line()


@dataclass
class SpecError(Exception):
    """A mistake in a spec (or its parameters), with where it is and what would fix it."""

    message: str
    span: Span | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def with_note(self, note: str) -> "SpecError":
        self.notes.append(note)
        return self

    def render(self) -> str:
        """`file:line:col: error: msg`, the source line, a caret under the span, then notes."""
        head = f"{self.span}: error: {clip(self.message)}" if self.span else f"error: {clip(self.message)}"
        lines = [head]
        raw = self.span.raw_line() if self.span else None
        if raw is not None:
            src, width = raw.expandtabs(1), 1
            if self.span.end_line == self.span.line and self.span.end_column > self.span.column:
                width = self.span.end_column - self.span.column
            src, col, width = _window(src, self.span.column, width)
            lineno = str(self.span.line)
            lines.append(f" {lineno} | {src}")
            lines.append(f" {' ' * len(lineno)} | {' ' * (col - 1)}{'^' * width}")
        lines.extend(f"note: {clip(n)}" for n in self.notes[:20])
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


# -- budgets (their values and the rest of the list: limits.py) ----------------------------------
@dataclass(frozen=True)
class Limit:
    name: str
    default: int
    what: str

    @property
    def value(self) -> int:
        raw = os.environ.get(f"RESDSL_LIMIT_{self.name.upper()}")
        try:
            return int(raw) if raw else self.default
        except ValueError:
            return self.default

    def error(self, found: str, span: Span | None = None) -> SpecError:
        return SpecError(f"{self.what}: {found}, over the limit of {self.value:,}", span).with_note(
            f"limit '{self.name}'; raise it with RESDSL_LIMIT_{self.name.upper()}=N if this is intended")

    def check(self, n: int, span: Span | None = None, found: str | None = None) -> None:
        if n > self.value:
            raise self.error(found or f"{n:,}", span)



MESSAGE_CHARS = Limit("message_chars", 4_000, "message too long (characters)")
ECHO_CHARS = Limit("echo_chars", 200, "source line echoed (characters)")


def clip(text: str, limit: Limit = MESSAGE_CHARS) -> str:
    """`text` cut to the limit, saying how much was left out."""
    n = limit.value
    return text if len(text) <= n else f"{text[:n]}… ({len(text) - n:,} more characters)"


def _window(src: str, column: int, width: int) -> tuple[str, int, int]:
    """A long source line cut to limits.ECHO_CHARS around the caret: (text, column, caret width)."""
    n = ECHO_CHARS.value
    if len(src) <= n:
        return src, column, width
    start = max(0, min(column - 1 - n // 4, len(src) - n))
    text = ("…" if start else "") + src[start : start + n] + ("…" if start + n < len(src) else "")
    col = column - start + (1 if start else 0)
    return text, col, max(1, min(width, n - (col - 1)))


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean 'x'?" note for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def unknown(what: str, word: str, candidates: Iterable[str], span: Span | None) -> SpecError:
    """Error for an unknown name, with a suggestion and the list of valid names when short.

    `what` may name an owner after " of ": ("parameter of block basic", "strid") reads
    "unknown parameter 'strid' of block basic".
    """
    candidates = sorted(set(candidates))
    noun, of, owner = what.partition(" of ")
    err = SpecError(f"unknown {noun} '{word}'" + (f" of {owner}" if of else ""), span)
    hint = did_you_mean(word, candidates)
    if hint:
        err.with_note(hint)
    elif 0 < len(candidates) <= 12:
        err.with_note("expected one of: " + ", ".join(candidates))
    return err
