"""`resdsl fmt` and `resdsl show`: the spec as source code (pure Python, no torch)."""
from __future__ import annotations

import difflib
import sys
from pathlib import Path

import click

from ..atomic import describe, read_snapshot, write_atomic
from ..cli_common import reports_errors, spec_options, split_sets
from ..errors import SpecError


def _files(paths: tuple[str, ...]) -> list[str]:
    """The named files, and every .res file under a named folder (sorted); `-` is stdin."""
    out = []
    for p in paths:
        path = Path(p)
        if p != "-" and path.is_dir():
            out += [str(f) for f in sorted(path.rglob("*.res"))]
        else:
            out.append(p)
    return out


@click.command("fmt")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 and list the files that would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Change nothing; print a unified diff of the changes.")
def fmt(files, check, show_diff):
    """Rewrite .res FILES (or every .res under a folder) in the canonical layout; `-`: stdin to stdout."""
    from .fmt import format_text

    changed, failed = [], False
    for name in _files(files):
        snap = None
        try:
            if name == "-":
                text = sys.stdin.read()
            else:
                data, snap = read_snapshot(name)       # what the file was: fmt never overwrites a later edit
                text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")   # as read_text did
            new = format_text(text, "<stdin>" if name == "-" else name)
        except SpecError as e:
            click.echo(e.render(), err=True)
            failed = True
            continue
        except (OSError, UnicodeDecodeError) as e:
            click.echo(f"error: cannot read '{name}': {getattr(e, 'strerror', None) or e}", err=True)
            failed = True
            continue
        if name == "-" and not (check or show_diff):
            click.echo(new, nl=False)
        elif new != text:
            changed.append(name)
            try:
                _report(name, text, new, check, show_diff, snap)
            except OSError as e:
                click.echo(f"error: cannot rewrite '{name}': {describe(e)}", err=True)
                failed = True
    if check and changed:
        click.echo(f"{len(changed)} file(s) would be reformatted", err=True)
    sys.exit(1 if failed or (check and changed) else 0)


def _report(name: str, old: str, new: str, check: bool, show_diff: bool, snap=None) -> None:
    if show_diff:
        click.echo("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), name, name)), nl=False)
    if check:
        click.echo(f"would reformat {name}")
    elif not show_diff:
        write_atomic(name, lambda tmp: Path(tmp).write_bytes(new.encode("utf-8")), unchanged=snap)
        click.echo(f"reformatted {name}", err=True)


@click.command("show")
@spec_options
@reports_errors
def show(spec, network, sets, allow_imports):
    """Print SPEC resolved: every block with evaluated arguments, every layer with all attributes."""
    from pathlib import Path

    from ..api import load_spec
    from .show import show_net

    net = load_spec(Path(spec), network, allow_imports=allow_imports, **split_sets(sets))
    click.echo(show_net(net, spec), nl=False)
