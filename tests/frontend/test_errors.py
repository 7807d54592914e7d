"""Error messages are reviewed like code: one golden file per mistake a user can make.

Each case is `tests/cases/err/NAME.res` with `NAME.expected`, the exact stderr of
`resdsl check tests/cases/err/NAME.res` run from the repository root. An optional `NAME.args`
holds extra arguments (`--set depth=42`), or a whole command line when it names `{spec}`
(`compile {spec} -o {tmp}/x.pt2`). Rewrite the golden files with `pytest --update-golden`.
"""
import shlex
import traceback

import pytest

from resdsl import limits
from click.testing import CliRunner

from conftest import ROOT
from resdsl.cli import main

CASES = ROOT / "tests" / "cases" / "err"
NAMES = sorted(p.stem for p in CASES.glob("*.res"))


def command(name: str, tmp) -> list[str]:
    spec = f"tests/cases/err/{name}.res"
    args_file = CASES / f"{name}.args"
    extra = args_file.read_text().strip() if args_file.exists() else ""
    if "{spec}" in extra or extra.startswith(("check ", "compile ")):
        return shlex.split(extra.format(spec=spec, tmp=tmp))
    return ["check", spec, *shlex.split(extra)]


def run_cli(args: list[str]):
    return CliRunner().invoke(main, args, catch_exceptions=True)


@pytest.fixture
def fixed_memory(monkeypatch):
    """Golden output must not depend on this machine's RAM: pretend it has 16 GiB."""
    monkeypatch.setattr(limits, "physical_memory", lambda: 16 << 30)


@pytest.mark.parametrize("name", NAMES)
def test_error_message(name, update_golden, monkeypatch, tmp_path, fixed_memory):
    monkeypatch.chdir(ROOT)
    result = run_cli(command(name, tmp_path))
    assert result.exit_code != 0, f"expected a failure, got exit 0:\n{result.output}"
    if not isinstance(result.exception, SystemExit):
        pytest.fail("resdsl crashed instead of reporting an error:\n"
                    + "".join(traceback.format_exception(result.exception)))
    stderr = result.stderr
    assert "Traceback" not in stderr
    assert not list(tmp_path.iterdir()), "a failed command left files behind"
    golden = CASES / f"{name}.expected"
    if update_golden or not golden.exists():
        golden.write_text(stderr)
        if not update_golden:
            pytest.fail(f"wrote new golden file {golden.name}; review it and run again")
    assert stderr == golden.read_text()


@pytest.mark.parametrize("name", NAMES)
def test_error_has_location_and_caret(name):
    """Every message but a missing spec file (or zoo name) points into a file, with the source line and a caret."""
    expected = (CASES / f"{name}.expected").read_text()
    if name in ("missing_spec", "unknown_zoo_name"):
        assert expected.startswith("error: ")
        return
    head, src, caret = expected.splitlines()[:3]
    assert ": error: " in head and head.split(":")[1].isdigit() and head.split(":")[2].isdigit()
    assert " | " in src and caret.strip().strip("|").strip().startswith("^")


def test_force_is_accepted_on_a_mid_size_net(tmp_path, monkeypatch):
    """`--force` builds what the size check would refuse (here: a machine with 64 KiB of memory)."""
    monkeypatch.setattr(limits, "physical_memory", lambda: 1 << 16)
    monkeypatch.chdir(ROOT)
    args = ["compile", "specs/digits_resnet.res", "--set", "width=8", "-o", str(tmp_path / "d.pt2")]
    refused = run_cli(args)
    assert refused.exit_code == 1 and "pass --force" in refused.stderr
    assert not (tmp_path / "d.pt2").exists()
    forced = run_cli([*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "d.pt2").stat().st_size > 0
