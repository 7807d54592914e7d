"""`resdsl runs DIR... [-o FIG] [--json]`: compare run directories (see train/runs.py)."""
from __future__ import annotations

import json

import click

from resdsl.cli_common import reports_errors


@click.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--plot", "figure", type=click.Path(dir_okay=False), help="Curves of every run (.png, .svg or .pdf).")
@click.option("--metric", type=click.Choice(["acc", "loss"]), default="acc", show_default=True, help="What the figure plots.")
@click.option("--sort", "sort_key", type=click.Choice(["name", "val", "test"]), default="name", show_default=True,
              help="Row order: by name, or best validation / test accuracy first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@reports_errors
def runs(dirs, figure, metric, sort_key, as_json):
    """Tabulate (and plot) run directories: the options that differ between them, validation and test accuracy."""
    from resdsl.analyze.common import check_figure_path
    from resdsl.analyze.plots import runs_figure
    from resdsl.train.runs import compare

    check_figure_path(figure)
    doc = compare(dirs)
    if sort_key != "name":
        key = "best_val_acc" if sort_key == "val" else "best_test_acc"
        doc["runs"].sort(key=lambda r: -(r[key] if r[key] is not None else -1))
    if figure:
        runs_figure(doc, figure, metric)
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    from resdsl.cli_common import print_table

    def pct(v):
        return "—" if v is None else f"{v:.2%}"

    cols = doc["differing"]
    print_table(f"{len(doc['runs'])} runs (best = best.pt, chosen on validation where the run has a split)",
                ["run", *cols, "status", "done", "params", "best val", "best test", "final test", "train s"],
                [[r["name"], *[_short(r["options"].get(c)) for c in cols], r["status"], r["epochs_done"] or "—",
                  "—" if r["params"] is None else f"{r['params']:,}", pct(r["best_val_acc"]), pct(r["best_test_acc"]),
                  pct(r["final_test_acc"]), "—" if r["train_s"] is None else f"{r['train_s']:.0f}"]
                 for r in doc["runs"]])


def _short(v) -> str:
    text = "—" if v is None else (json.dumps(v) if isinstance(v, (list, dict)) else str(v))
    return text if len(text) <= 30 else text[:29] + "…"
