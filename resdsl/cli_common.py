"""Click helpers shared by every subcommand: spec options, `--set` parsing, one-message errors.

Subcommand modules import this, never resdsl.cli (which only assembles the command group).
"""
from __future__ import annotations

import functools
import os
import sys

import click

from pydantic import ValidationError

from .api import split_sets  # noqa: F401  (re-exported for the subcommands)
from .errors import SpecError


def _fail(text: str, code: int) -> None:
    if os.environ.get("RANK", "0") == "0":
        try:
            click.echo(text, err=True)
        except OSError:
            pass
    sys.exit(code)


def reports_errors(fn):
    """Mistakes end with one message and a non-zero exit, never a traceback: a SpecError as
    `file:line:col: error: ...`, a training mistake (an exception with `exit_code`, its `prefix`
    or "error"), an invalid option value (2), a file error, Ctrl-C (130), a full disk. The one
    error decorator of every command."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .limits import clip

        try:
            return fn(*args, **kwargs)
        except SpecError as e:
            _fail(e.render(), 1)
        except ValidationError as e:          # a recipe option out of range (train/config.py)
            _fail("error: " + "; ".join(f"--{'-'.join(map(str, x['loc'])).replace('_', '-')}: {x['msg']}"
                                        for x in e.errors()), 2)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except RecursionError:
            _fail("error: input nested too deeply (see resdsl.limits 'nesting')", 1)
        except MemoryError:
            _fail("error: out of memory; see the memory budget (RESDSL_LIMIT_MEMORY) and --force", 1)
        except OSError as e:
            what = e.strerror or str(e) or type(e).__name__
            _fail(clip(f"error: {what}: {e.filename or ''}".rstrip(": ")), 1)
        except Exception as e:  # a training mistake (TrainError) carries its own exit code
            code = getattr(e, "exit_code", None)
            if code is None:
                raise
            _fail(clip(f"{getattr(e, 'prefix', 'error')}: {e}"), code)
    return wrapper


def network_option(default: str = "the first"):
    return click.option("--network", default=None, help=f"Which network of the file (default: {default}).")


def sets_option(help: str = "Override a network parameter (repeatable), e.g. --set depth=101."):
    from .source.completion import complete_set

    return click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", shell_complete=complete_set, help=help)


def allow_imports_option():
    return click.option("--allow-import", "allow_imports", multiple=True, metavar="DIR",
                        type=click.Path(file_okay=False, exists=True),
                        help="Also allow imports from this folder (default: only the spec's own folder).")


def spec_options(fn):
    """The options every command that reads a spec shares (each declared once, above)."""
    from .source.completion import complete_spec

    fn = allow_imports_option()(fn)
    fn = sets_option()(fn)
    fn = network_option()(fn)
    return click.argument("spec", type=click.Path(dir_okay=False, path_type=None), shell_complete=complete_spec)(fn)


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    """A titled rich table: first column left-aligned, the rest right-aligned."""
    from rich.console import Console
    from rich.table import Table

    t = Table()
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[str(x) for x in r])
    term = Console()
    # on a terminal, its width; in a pipe or file, as wide as the table (a wrapped table cannot be read back)
    console = Console(width=max(100, term.width) if term.is_terminal else 1000)
    console.print(title, style="italic", markup=False, highlight=False)   # a long title is not wrapped to the table
    console.print(t)
