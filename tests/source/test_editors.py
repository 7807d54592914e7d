"""The highlighters (TextMate grammar, Pygments lexer) know every keyword of the Lark grammar and
every layer of the op vocabulary: this fails when the language gains a word they lack."""
import json
import re

import pytest
from pygments.token import Comment, Name, Number

from conftest import ROOT
from resdsl.frontend.parse import grammar_text
from resdsl.source.highlight import ResdslLexer
from resdsl.ir import ops

TM = json.loads((ROOT / "editors/vscode/syntaxes/resdsl.tmLanguage.json").read_text())


def grammar_keywords() -> set[str]:
    """Quoted words in the grammar's rules (comments stripped): `"stage"`, `"and"`, ..."""
    code = "\n".join(line.split("//", 1)[0] for line in grammar_text().splitlines())
    return set(re.findall(r'"([A-Za-z_]+)"', code))


def layer_names() -> set[str]:
    return {k for k, op in ops.OPS.items() if op.user}


def textmate_scope(word: str) -> str | None:
    """The scope the TextMate grammar gives `word` on its own (first matching pattern wins)."""
    for inc in TM["patterns"]:
        rule = TM["repository"][inc["include"][1:]]
        for r in rule.get("patterns", [rule]):
            m = re.search(r["match"].replace("(?=\\s*\\()", "(?=\\()"), word)
            if m and m.group(0) == word:
                return r.get("name") or r["captures"]["1"]["name"]
    return None


def pygments_token(word: str):
    return next(t for t, v in ResdslLexer().get_tokens(word) if v == word)


def test_the_lists_are_not_empty():
    assert {"stage", "residual", "shortcut", "and", "true"} <= grammar_keywords()
    assert {"conv", "bn", "relu", "fc"} <= layer_names()


@pytest.mark.parametrize("word", sorted(grammar_keywords()))
def test_grammar_keywords_are_highlighted(word):
    assert (textmate_scope(word) or "").startswith(("keyword", "constant.language")), word
    assert str(pygments_token(word)).startswith(("Token.Keyword", "Token.Operator.Word")), word


@pytest.mark.parametrize("word", sorted(layer_names()))
def test_layers_are_highlighted(word):
    assert textmate_scope(word) == "support.function.layer.resdsl", word
    assert pygments_token(word) in Name.Builtin, word


def test_a_spec_lexes_without_errors():
    text = (ROOT / "specs/resnet.res").read_text()
    toks = list(ResdslLexer().get_tokens(text))
    assert not [v for t, v in toks if str(t) == "Token.Error"]
    assert (Number, "3x224x224") in [(t, v) for t, v in toks if t in Number]
    assert any(t in Comment for t, _ in toks)


def test_vscode_extension_points_at_its_files():
    pkg = json.loads((ROOT / "editors/vscode/package.json").read_text())
    lang = pkg["contributes"]["languages"][0]
    assert lang["extensions"] == [".res"]
    assert (ROOT / "editors/vscode" / lang["configuration"]).is_file()
    assert (ROOT / "editors/vscode" / pkg["contributes"]["grammars"][0]["path"]).is_file()


def completions(args, incomplete):
    from click.shell_completion import ShellComplete

    from resdsl.cli import main

    return [c.value for c in ShellComplete(main, {}, "resdsl", "_RESDSL_COMPLETE").get_completions(args, incomplete)]


def test_shell_completion_of_set_names_and_zoo_specs(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert completions(["check", "specs/resnet.res", "--set"], "") == [
        "depth=", "cardinality=", "base_width=", "classes=", "skip=", "stride_1x1=", "output_stride="]
    assert completions(["show", "specs/resnet.res", "--set"], "cl") == ["classes="]
    assert completions(["check", "missing.res", "--set"], "") == []
    assert "specs/resnet.res" in completions(["check"], "specs/res")
