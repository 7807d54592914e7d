"""`resdsl list`: the zoo (zoo.py) as a table or JSON."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from . import SPECS
from .catalog import NamedEntry, named, zoo


@click.command("list")
@click.option("--specs", "folder", default=str(SPECS), show_default=True,
              type=click.Path(file_okay=False, exists=True),
              help="Folder of .res specs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@click.option("--names", "by_name", is_flag=True,
              help="One row per zoo name (resnet50, regnet_y_400mf, ...: usable wherever a spec path is).")
def list_cmd(folder, as_json, by_name):
    """List the zoo: every network in the specs folder with parameters, MACs, input and reference."""
    from ..cli_common import reports_errors
    from ..cost.tables import human

    if by_name:
        return _list_names(reports_errors(named)(Path(folder)), as_json)
    rows = reports_errors(zoo)(Path(folder))
    if as_json:
        click.echo(json.dumps([asdict(e) for e in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"resdsl zoo: {len(rows)} networks in {folder}", title_justify="left")
    for col, just in (("name", "left"), ("family", "left"), ("params", "right"), ("MACs", "right"),
                      ("input", "right"), ("names", "left"), ("reference", "left")):
        table.add_column(col, justify=just, overflow="fold")
    for e in rows:
        table.add_row(e.name, e.family, f"{e.params:,}", human(e.macs), "×".join(map(str, e.input_shape)),
                      _names(e.names), e.reference)
    Console(width=max(140, Console().width)).print(table)


def _names(names: tuple[str, ...]) -> str:
    """`resnet18 … wide_resnet101_2 (10)` for a long list of zoo names."""
    return " ".join(names) if len(names) <= 2 else f"{names[0]} … {names[-1]} ({len(names)})"


def _list_names(rows: list[NamedEntry], as_json: bool) -> None:
    from ..cost.tables import human

    if as_json:
        click.echo(json.dumps([asdict(e) for e in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"resdsl zoo names: {len(rows)}", title_justify="left")
    for col, just in (("name", "left"), ("spec", "left"), ("arguments", "left"), ("params", "right"),
                      ("MACs", "right")):
        table.add_column(col, justify=just, overflow="fold")
    for e in rows:
        table.add_row(e.name, f"{e.family}.res:{e.network}", e.arguments, f"{e.params:,}", human(e.macs))
    Console(width=max(100, Console().width)).print(table)
