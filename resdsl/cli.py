"""The `resdsl` command line: check, compile (and train, eval, render, profile from subpackages)."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from .atomic import write_atomic  # noqa: F401  (re-exported for subcommands)
from .errors import SpecError


def parse_sets(values: tuple[str, ...]) -> dict:
    """`--set name=value` options -> {name: value}, values read as spec expressions."""
    from .api import parse_value

    out = {}
    for item in values:
        name, eq, text = item.partition("=")
        if not eq or not name.strip().isidentifier():
            raise SpecError(f"--set expects NAME=VALUE, got '{item}'")
        out[name.strip()] = parse_value(text, name.strip())
    return out


def reports_errors(fn):
    """Show a SpecError (or a missing file) as `file:line:col: error: ...` and exit 1, no traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SpecError as e:
            click.echo(e.render(), err=True)
            sys.exit(1)
        except OSError as e:
            click.echo(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), err=True)
            sys.exit(1)
    return wrapper


def spec_options(fn):
    """The options every command that reads a spec shares."""
    from .completion import complete_set, complete_spec

    fn = click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", shell_complete=complete_set,
                      help="Override a network parameter (repeatable), e.g. --set depth=101.")(fn)
    fn = click.option("--network", default=None, help="Which network of the file (default: the first).")(fn)
    return click.argument("spec", type=click.Path(dir_okay=False), shell_complete=complete_spec)(fn)


# Subcommands that import torch or heavy libraries are imported only when run, so that
# `resdsl check` starts fast: name -> "module:attribute".
LAZY_COMMANDS = {
    "train": "resdsl.train.cli:train",
    "eval": "resdsl.train.cli:evaluate",
    "profile": "resdsl.cost.cli:profile",
    "render": "resdsl.render.cli:render",
    "list": "resdsl.zoo:list_cmd",
    "fmt": "resdsl.source_cli:fmt",
    "show": "resdsl.source_cli:show",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS and name not in self.commands:
            import importlib

            module, _, attr = LAZY_COMMANDS[name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resdsl")
def main():
    """resdsl: describe residual networks in .res specs; check, draw, compile, train and profile them."""


@main.command()
@spec_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@reports_errors
def check(spec, network, sets, as_json):
    """Parse and validate SPEC; print a per-stage table of shapes, parameters and MACs."""
    from .api import graph_of, load_spec
    from .cost.static import jsonable
    from .cost.tables import human, section_rows, shape_str
    from .ir.shapes import totals

    net = load_spec(spec, network, **parse_sets(sets))
    g = graph_of(net)
    rows = section_rows(g)
    params, macs = totals(g)
    if as_json:
        doc = {"network": net.name, "params": jsonable(net.params),
               "input_shape": list(net.input_shape), "output_shape": list(g.nodes[g.graph["output"]]["out_shape"]),
               "total_params": params, "total_macs": macs, "sections": [r.as_dict() for r in rows]}
        click.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    args = ", ".join(f"{k}={jsonable(v)}" for k, v in net.params.items())
    table = Table(title=f"{net.name}({args})  input {shape_str(net.input_shape)}", title_justify="left")
    for col, just in (("section", "left"), ("blocks", "left"), ("output", "right"),
                      ("params", "right"), ("MACs", "right")):
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(r.name, r.what, shape_str(r.out_shape), f"{r.params:,}", human(r.macs))
    table.add_section()
    table.add_row("total", "", shape_str(g.nodes[g.graph["output"]]["out_shape"]), f"{params:,}", human(macs))
    Console(width=max(100, Console().width)).print(table)


@main.command("compile")
@spec_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write: a torch.export program (.pt2) or standalone PyTorch source (.py).")
@click.option("--batch-size", default=2, show_default=True, help="Batch size of the example input.")
@click.option("--force", is_flag=True, help="Build even a network too large for this machine's memory.")
@reports_errors
def compile_cmd(spec, network, sets, output, batch_size, force):
    """Compile SPEC and write a torch.export program that plain PyTorch loads (torch.export.load)."""
    import torch

    from .api import compile as compile_spec

    out = Path(output)
    if not out.parent.is_dir():         # before the expensive part
        raise SpecError(f"cannot write '{output}': folder '{out.parent}' does not exist")
    model = compile_spec(spec, network, force=force, **parse_sets(sets)).eval()
    if out.suffix == ".py":             # standalone PyTorch source (resdsl/backend/emit.py)
        from .api import load_spec
        from .backend.emit import emit_source

        source = emit_source(model, load_spec(spec, network, **parse_sets(sets)))
        write_atomic(out, lambda tmp: Path(tmp).write_text(source, encoding="utf-8"))
        click.echo(f"wrote {output}: {model.spec_name}, standalone PyTorch source; "
                   f"build() returns the network (state_dict keys as resdsl.compile's)")
        return
    example = torch.randn(batch_size, *model.input_shape)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    write_atomic(out, lambda tmp: torch.export.save(program, tmp))
    n = sum(p.numel() for p in model.parameters())
    click.echo(f"wrote {output}: {model.spec_name}, {n:,} parameters, input {tuple(model.input_shape)}; "
               f"load with torch.export.load('{output}').module()")


# -- commands from subpackages --
# (registered lazily in LAZY_COMMANDS above)
