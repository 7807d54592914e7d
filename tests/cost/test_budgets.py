"""Budgets: every limit is checked before the work it bounds, names itself and says how to raise it."""
from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

import resdsl
from resdsl import limits
from resdsl.cli import main
from resdsl.errors import SpecError


def net(body: str, lets: str = "", blocks: str = "", input_: str = "3x8x8") -> str:
    return f"{blocks}network n() {{\n  input {input_}\n{lets}  stem {{ conv 4 k3; bn; relu }}\n{body}  head {{ avgpool; fc 2 }}\n}}\n"


def refused(text: str, limit: limits.Limit, seconds: float = 10.0) -> SpecError:
    t = time.perf_counter()
    with pytest.raises(SpecError) as e:
        resdsl.graph(text)
    assert time.perf_counter() - t < seconds
    msg = e.value.render()
    assert f"RESDSL_LIMIT_{limit.name.upper()}" in msg or "--force" in msg, msg
    assert len(msg) < 3 * limits.MESSAGE_CHARS.value
    return e.value


def test_list_doubling_stops_early():
    lets = "  let x0 = [1, 2]\n" + "".join(f"  let x{i + 1} = x{i} + x{i}\n" for i in range(40))
    refused(net("", lets), limits.LIST_LENGTH)


def test_nested_lists_by_name_stop_at_the_depth_limit():
    lets = "  let x0 = 1\n" + "".join(f"  let x{i + 1} = [x{i}, x{i}]\n" for i in range(60))
    refused(net("", lets), limits.VALUE_SIZE)      # 2**20 elements come before depth 32


def test_list_repetition_is_bounded():
    refused(net("", "  let a = [1] * 10000\n  let b = a * 10000\n"), limits.LIST_LENGTH)


@pytest.mark.parametrize("depth", [100, 1000, 5000])
def test_deep_brackets_are_refused_before_parsing(depth):
    refused(net("", f"  let a = {'[' * depth}1{']' * depth}\n"), limits.NESTING)


def test_long_operator_chain_never_raises_recursion_error():
    with pytest.raises(SpecError):
        resdsl.graph(net("", "  let a = " + " + ".join(["1"] * 20000) + "\n"))


def test_giant_integer_literal():
    e = refused(net("", f"  let a = {'9' * 5000}\n"), limits.INT_DIGITS)
    assert "5,000 digits" in e.message


@pytest.mark.parametrize("shape", ["3x8000x8000", "3x1000000000x1", "100000000x1x1"])
def test_input_size_is_bounded_before_shapes_are_inferred(shape):
    refused(net("", input_=shape), limits.INPUT_ELEMENTS, seconds=5)


def test_memory_budget_counts_activations_at_the_declared_input(monkeypatch):
    """Few parameters, large activations: refused by the activation term alone."""
    monkeypatch.setattr(limits, "physical_memory", lambda: 64 << 20)     # budget: 32 MiB
    text = net("", input_="3x1024x1024")                                  # 4 conv-sized maps of 4 MiB each
    from resdsl.budget import memory_need

    params, acts = memory_need(resdsl.graph(text))
    assert params < 1 << 20 < 32 << 20 < acts
    with pytest.raises(SpecError, match="activations"):
        resdsl.compile(text)
    assert resdsl.compile(text, force=True) is not None


def test_many_stages_refused_before_lowering(monkeypatch):
    monkeypatch.setenv("RESDSL_LIMIT_STAGES", "5")
    blocks = "block b(c) {\n  residual { conv c k3 }\n  shortcut identity\n}\n"
    refused(net("  stage x 1 b(4)\n" * 6, blocks=blocks), limits.STAGES)


def test_ops_bound_checked_from_the_repeat_count():
    blocks = "block b(c) {\n  residual { conv c k3 }\n  shortcut identity\n}\n"
    refused(net("  stage x 5000000 b(4)\n", blocks=blocks), limits.OPS, seconds=5)


def test_many_branches_refused_from_the_syntax_tree():
    branches = " ".join(["branch { conv 1 k1 }"] * 300)
    refused(net(f"  transition {{ parallel concat {{ {branches} }} }}\n"), limits.BRANCHES)


def test_source_size_and_echoed_line_are_bounded(tmp_path):
    spec = tmp_path / "long.res"
    spec.write_text(net("", "  let a = 1 + zz" + " " * 100_000 + "\n"))
    with pytest.raises(SpecError) as e:
        resdsl.graph(spec)
    assert max(len(line) for line in e.value.render().splitlines()) <= limits.ECHO_CHARS.value + 20
    spec.write_text("#" * (limits.SOURCE_BYTES.value + 1) + "\n" + net(""))
    with pytest.raises(SpecError, match="RESDSL_LIMIT_SOURCE_BYTES"):
        resdsl.graph(spec)


def test_limits_can_be_raised_by_environment(monkeypatch):
    text = net("", "  let a = [1] * 300\n")
    monkeypatch.setenv("RESDSL_LIMIT_LIST_LENGTH", "200")
    with pytest.raises(SpecError, match="list_length"):
        resdsl.graph(text)
    monkeypatch.setenv("RESDSL_LIMIT_LIST_LENGTH", "1000")
    assert resdsl.graph(text) is not None


def test_huge_message_is_clipped():
    err = SpecError("x" * 1_000_000)
    assert len(err.render()) < limits.MESSAGE_CHARS.value + 100


def test_every_limit_is_documented_in_the_readme():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for name, value, _ in limits.table():
        assert f"`{name}`" in readme, name


def test_cli_reports_budget_errors_without_traceback(tmp_path):
    spec = tmp_path / "a.res"
    spec.write_text(net("", f"  let a = {'[' * 3000}1{']' * 3000}\n"))
    r = CliRunner().invoke(main, ["check", str(spec)])
    assert r.exit_code == 1 and "Traceback" not in r.output and "RESDSL_LIMIT_NESTING" in r.output
