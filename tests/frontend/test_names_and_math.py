"""Expressions after ResNet (log, make_divisible, range, comprehensions) and zoo names."""
import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models._utils import _make_divisible

import resdsl
from conftest import ROOT, SPECS
from resdsl.cli import main
from resdsl.errors import SpecError
from resdsl.ir.shapes import totals
from resdsl.zoo.names import table


def value(text: str):
    return resdsl.parse_value(text)


@settings(max_examples=300, deadline=None)
@given(st.floats(0.5, 5000, allow_nan=False), st.sampled_from([1, 2, 4, 8, 16, 32]),
       st.one_of(st.none(), st.integers(1, 64)))
def test_make_divisible_is_torchvisions(v, divisor, min_value):
    args = f"{v!r}, {divisor}" + ("" if min_value is None else f", {min_value}")
    assert value(f"make_divisible({args})") == _make_divisible(v, divisor, min_value)


@pytest.mark.parametrize("text,expected", [
    ("log(8) / log(2)", 3.0), ("log2(1024)", 10.0), ("sqrt(16)", 4.0), ("ceil(2.1)", 3), ("floor(2.9)", 2),
    ("round(2.5)", 2), ("round(3.5)", 4), ("abs(-3)", 3), ("range(4)", [0, 1, 2, 3]), ("range(1, 7, 2)", [1, 3, 5]),
    ("[w * 2 for w in [1, 2, 3]]", [2, 4, 6]), ("[w for w in range(10) if w % 3 == 0]", [0, 3, 6, 9]),
    ("[[j for j in range(i)] for i in range(3)]", [[], [0], [0, 1]]),
    ("make_divisible(32 * 0.75, 8)", 24), ("make_divisible(83, 8)", 80), ("make_divisible(84, 8)", 88),
])
def test_math_builtins(text, expected):
    assert value(text) == expected


@pytest.mark.parametrize("text,message", [
    ("log(0)", r"log\(\) needs positive numbers"), ("range(1, 2, 0)", "non-zero step"),
    ("[x for x in 3]", "can only loop over a list"), ("[x for x in [1, 2] if x]", "expected true or false"),
    ("range(10 ** 9)", "too long"), ("make_divisible(10, 0)", "positive divisor"),
])
def test_math_errors_are_spec_errors(text, message):
    with pytest.raises(SpecError, match=message):
        value(text)


def test_loop_variable_does_not_leak():
    with pytest.raises(SpecError, match="unknown name 'k'"):
        value("[[k for k in [1]], k]")


def test_every_declared_name_resolves_to_its_network():
    names = table(str(SPECS))
    assert {"resnet50", "densenet121", "regnet_y_400mf", "regnet_x_32gf", "mnasnet1_3"} <= set(names)
    for z in names.values():
        assert z.network in (SPECS / z.spec).read_text() and z.spec.endswith(".res")


def test_a_name_works_wherever_a_path_does():
    by_name = totals(resdsl.graph("regnet_y_400mf"))
    by_path = totals(resdsl.graph(SPECS / "regnet.res", variant='"y_400mf"'))
    assert by_name == by_path == (4_344_144, by_name[1])
    assert totals(resdsl.graph("resnet50", classes=10))[0] == 25_557_032 - 2048 * 990 - 990


def test_a_spec_path_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet50").write_text((ROOT / "specs" / "cifar_resnet.res").read_text())
    assert totals(resdsl.graph("resnet50"))[0] == 269_722


def test_cli_check_and_list_by_name():
    result = CliRunner().invoke(main, ["check", "mnasnet0_5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_params"] == 2_218_512
    listed = CliRunner().invoke(main, ["list", "--names", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.output)}
    assert rows["resnext50_32x4d"]["params"] == 25_028_904 and rows["regnet_x_400mf"]["family"] == "regnet"
    plain = CliRunner().invoke(main, ["list", "--json"])
    assert "regnet_y_128gf" in {n for r in json.loads(plain.output) for n in r["names"]}
