"""A Pygments lexer for .res specs (docs' code blocks; `pygmentize -l resdsl` once installed).

The keyword lists are written out here, not read from the grammar, so that tests/source/test_editors.py
can catch a keyword the grammar gained and the highlighters lack; the layers are the op registry's.
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text

from ..ir.ops import user_kinds

STATEMENTS = ("import", "network", "block", "input", "let", "stem", "stage", "transition", "head", "aux", "weight", "init",
              "drop_path", "pre", "residual", "shortcut", "post", "scale", "merge", "combine", "parallel", "branch",
              "aggregate", "if", "else", "repeat", "as", "from", "for")
OPERATOR_WORDS = ("and", "or", "not", "in")
CONSTANTS = ("true", "false")
LAYERS = tuple(user_kinds()) + tuple(w for w in ("split", "add", "concat", "mul", "sub") if w not in user_kinds())
# the last four: dataflow merges (grammar comments)


class ResdslLexer(RegexLexer):
    name = "resdsl"
    aliases = ["resdsl", "res"]
    filenames = ["*.res"]
    mimetypes = ["text/x-resdsl"]

    tokens = {
        "root": [
            (r"#.*$", Comment.Single),
            (r'"[^"\n]*"', String.Double),
            (words(STATEMENTS, suffix=r"\b"), Keyword),
            (words(OPERATOR_WORDS, suffix=r"\b"), Operator.Word),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(LAYERS, suffix=r"\b"), Name.Builtin),
            (r"\d+(x\d+)+\b", Number),                          # shapes: 3x224x224
            (r"\d+\.\d*([eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+([eE][+-]?\d+)?", Number.Float),
            (r"\d+", Number.Integer),
            (r"[A-Za-z_]\w*(?=\s*\()", Name.Function),          # block calls: basic(64)
            (r"[A-Za-z_]\w*", Name),
            (r"->|\*\*|//|==|!=|<=|>=|[-+*/%<>=?:]", Operator),
            (r"[{}()\[\],;]", Punctuation),
            (r"\s+", Text),
        ],
    }
