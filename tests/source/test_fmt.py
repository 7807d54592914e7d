"""`resdsl fmt`: same tree, fixed point, comments kept, re-spaced zoo specs restored byte for byte."""
import random
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import ROOT, SPECS
from resdsl.errors import SpecError
from resdsl.source.fmt import format_text, tree_key
from resdsl.frontend.load import prelude_text
from resdsl.frontend.parse import parse
from frontend.test_fuzz import mutated_spec, valid_spec

ZOO = sorted(SPECS.glob("*.res"))
SOURCES = [(p.name, p.read_text()) for p in ZOO] + [("prelude.res", prelude_text())]


def comments(text: str) -> list[str]:
    return [c.strip() for c in re.findall(r"#[^\n]*", text)]


def respace(text: str, seed: int) -> str:
    """Tabs and doubled spaces between tokens, spaces before `;`, trailing blanks (not in comments)."""
    rng = random.Random(seed)
    out = []
    for line in text.split("\n"):
        code, hash_, comment = line.partition("#")
        code = re.sub(r"(?<=\S) (?=\S)", lambda m: rng.choice([" ", "  ", "\t", " \t "]), code)
        code = code.replace(";", rng.choice([" ;", "  ;", ";", "\t;"]))
        code = re.sub(r"^( +)", lambda m: rng.choice([m.group(1), "\t" * (len(m.group(1)) // 2), m.group(1) + " "]), code)
        out.append(code + hash_ + comment + rng.choice(["", " ", "\t", "  "]))
    return "\n".join(out)


@pytest.mark.parametrize("name,text", SOURCES, ids=[n for n, _ in SOURCES])
def test_zoo_is_formatted_and_round_trips(name, text):
    out = format_text(text, name)
    assert out == text                                   # all zoo specs are kept formatted
    assert tree_key(parse(out)) == tree_key(parse(text))


@pytest.mark.parametrize("name,text", SOURCES, ids=[n for n, _ in SOURCES])
def test_respaced_zoo_spec_comes_back_byte_for_byte(name, text):
    for seed in range(3):
        messy = respace(text, seed)
        assert messy != text
        assert format_text(messy, name) == text


@settings(max_examples=40, deadline=None, derandomize=True)
@given(valid_spec(), st.integers(0, 1000))
def test_random_valid_specs_round_trip(text, seed):
    out = format_text(respace(text, seed))
    assert tree_key(parse(out)) == tree_key(parse(text))
    assert format_text(out) == out


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(mutated_spec())
def test_mutated_zoo_specs_that_parse_round_trip(text):
    """Odd but valid syntax (`input3x8x8`, statements moved around, tokens swapped) keeps its tree."""
    try:
        tree = parse(text)
    except SpecError:
        assume(False)
    out = format_text(text)
    assert tree_key(parse(out)) == tree_key(tree)
    assert format_text(out) == out
    assert sorted(comments(out)) == sorted(comments(text))


CASES = {
    # messy input -> canonical output
    "network n(a=1,b = {1:[2,3]}){input 3x8x8;stem{conv a*2 k3;bn;relu}\n}\n":
        "network n(a = 1, b = {1: [2, 3]}) {\n  input 3x8x8; stem { conv a * 2 k3; bn; relu }\n}\n",
    "block b(w,s=1){residual{conv w k3 s s}\npost relu}\n":
        "block b(w, s = 1) {\n  residual { conv w k3 s s }\n  post relu\n}\n",
    # precedence: parentheses only where the tree needs them; unary minus stays an argument
    "block b(){\n let x = ((1 + 2)) * (3 - (4 - 5)) ** -(2)\n merge gate bias -2\n let y = -(a - b)\n}\n":
        "block b() {\n  let x = (1 + 2) * (3 - (4 - 5)) ** -2\n  merge gate bias -2\n  let y = -(a - b)\n}\n",
    "network n() { stem { conv a -1 (2) [3] b[0] f(x = 1) not a and b or c ? 1 : 2 } }\n":
        "network n() { stem { conv a -1 2 [3] b[0] f(x = 1) not a and b or c ? 1 : 2 } }\n",   # `-1 (2)`: two arguments, (2) needs no brackets
    # blank lines: at most one, none after `{` or before `}`; own-line and trailing comments kept
    "# top\n\n\n\nnetwork n() {\n\n  # lead\n  input 3x8x8   # shape\n  stem { conv 8 k3 }  # stem\n\n  # tail\n\n}\n\n\n":
        "# top\n\nnetwork n() {\n  # lead\n  input 3x8x8         # shape\n  stem { conv 8 k3 }  # stem\n\n  # tail\n}\n",
    # a `{` written over several lines stays multi-line; a broken list stays broken, under its bracket
    "network n(a = 1,\n b = 2) { stem { conv 1\n bn }\n let l = [1,\n 2] }\n":
        "network n(a = 1,\n          b = 2) {\n  stem {\n    conv 1\n    bn\n  }\n  let l = [1,\n           2]\n}\n",
    # comments inside brackets and expressions: kept on their line, or above a line that was joined
    "network n(a = 1,  # first\n  # own\n  b = 2) {\n  input 3x8x8 # x\n  # before close\n}  # after\n":
        "network n(a = 1,  # first\n          # own\n          b = 2) {\n  input 3x8x8  # x\n  # before close\n}  # after\n",
    "network n() {\r\n\tlet x = (1 +  # why\r\n     2)\r\n}\r\n": "network n() {\n  # why\n  let x = 1 + 2\n}\n",
    "# only a comment": "# only a comment\n",
    # the dataflow syntax: if/else, repeat, taps, from, list comprehensions
    "block b(e){residual{if e!=1{conv e k1;bn->h}else{identity}\nrepeat 2 as r{conv 8*(r+1) k3}\nfrom h;-> a b}}\n":
        "block b(e) {\n  residual {\n    if e != 1 { conv e k1; bn -> h } else { identity }\n"
        "    repeat 2 as r { conv 8 * (r + 1) k3 }\n    from h; -> a b\n  }\n}\n",
    "block b(e) {\n  residual {\n    if e { conv 1\n    } else { relu }\n  }\n}\n":
        "block b(e) {\n  residual {\n    if e {\n      conv 1\n    } else {\n      relu\n    }\n  }\n}\n",
    "network n() { let w = [ x*2 for x in [1,2] if x>1 ] }\n": "network n() { let w = [x * 2 for x in [1, 2] if x > 1] }\n",
    # a bracket opened at the end of a line: items hang one level in; a lone closer keeps its line
    "network n() {\n  let m = {\n      1: 2,   3: 4,\n      5: 6}\n  let l = f(\n  a, b\n  )\n}\n":
        "network n() {\n  let m = {\n    1: 2, 3: 4,\n    5: 6}\n  let l = f(\n    a, b,\n  )\n}\n",
    "": "",
    "network n() {\n  input 3x8x8\n  stem { parallel concat { branch { conv 1 } branch { conv 2 }\n  } }\n}\n":
        "network n() {\n  input 3x8x8\n  stem {\n    parallel concat {\n      branch { conv 1 } branch { conv 2 }\n    }\n  }\n}\n",
}


@pytest.mark.parametrize("messy,want", list(CASES.items()))
def test_canonical_layout(messy, want):
    assert format_text(messy) == want
    assert format_text(want) == want
    assert tree_key(parse(want)) == tree_key(parse(messy))
    assert comments(want) == comments(messy)


def test_syntax_error_is_a_spec_error():
    with pytest.raises(SpecError, match="unexpected"):
        format_text("network n( {\n")


def run(*args, stdin=None):
    from click.testing import CliRunner

    from resdsl.cli import main

    r = CliRunner().invoke(main, list(args), input=stdin)
    r.returncode = r.exit_code
    return r


def test_cli_check_specs_passes():
    r = subprocess.run([sys.executable, "-m", "resdsl", "fmt", "--check", "specs"], capture_output=True, text=True,
                       cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_check_diff_stdin_and_in_place(tmp_path):
    f = tmp_path / "a.res"
    f.write_text("network n(){input 3x8x8 ;stem{conv 8 k3}}\n")
    r = run("fmt", "--check", str(f))
    assert r.returncode == 1 and f"would reformat {f}" in r.stdout
    r = run("fmt", "--diff", str(f))
    assert r.returncode == 0 and "+network n() {" in r.stdout
    assert f.read_text() == "network n(){input 3x8x8 ;stem{conv 8 k3}}\n"      # --diff changes nothing
    r = run("fmt", "-", stdin=f.read_text())
    assert r.stdout == "network n() { input 3x8x8; stem { conv 8 k3 } }\n"
    assert run("fmt", str(f)).returncode == 0
    assert f.read_text() == r.stdout
    assert run("fmt", "--check", str(f)).returncode == 0


def test_cli_reports_bad_file_without_traceback(tmp_path):
    f = tmp_path / "bad.res"
    f.write_text("network n( {\n")
    r = run("fmt", str(f))
    assert r.returncode == 1 and "bad.res:1:" in r.stderr
    assert isinstance(r.exception, SystemExit)                 # exited, no traceback
    assert f.read_text() == "network n( {\n"
