"""Pygments lexer for resdsl .res files: `pygmentize -x -l editors/pygments/resdsl_lexer.py:ResdslLexer f.res`.

The lexer lives in the package (resdsl/source/highlight.py, registered as the Pygments plugin `resdsl`
by pyproject.toml), so Sphinx/MkDocs pick it up with `pip install resdsl`; this file re-exports it.
"""
from resdsl.source.highlight import ResdslLexer  # noqa: F401

__all__ = ["ResdslLexer"]
