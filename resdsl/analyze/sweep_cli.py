"""`resdsl sweep SPEC --grid NAME=V1,V2 ...`: train every setting with one recipe, then compare them."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import SpecError
from ..cli_common import network_option, reports_errors, sets_option
from ..train.cli import recipe_options
from ..train.errors import TrainError


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@network_option()
@click.option("--grid", "grid", multiple=True, metavar="NAME=V1,V2",
              help="Values of one network parameter or training option, e.g. depth=20,56, lr=0.1,0.05, seed=1,2,3 "
                   "(repeatable); settings differing only in seed are reported as mean ± std (n).")
@sets_option("A parameter fixed for every setting.")
@click.option("--match", "match_what", type=click.Choice(["params", "macs"]), default=None,
              help="Adjust --adjust per setting so all have the first setting's params (or MACs).")
@click.option("--adjust", default=None, help="The integer parameter --match changes (e.g. width).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray instance).")
@click.option("--ray-cpus", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="CPUs of a local Ray instance (one setting per CPU).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@click.option("-o", "--plot", "figure", type=click.Path(dir_okay=False), help="Curves figure (.png or .svg).")
@click.option("--dry-run", is_flag=True, help="List the settings (and matched values) without training.")
@recipe_options
@reports_errors
def sweep(spec, network, grid, sets, match_what, adjust, backend, address, ray_cpus, as_json, figure, dry_run,
          **options):
    """Train SPEC at every --grid setting; table of params, MACs, validation and test accuracy (mean ± std over
    seeds), time; curves."""
    from ..api import split_sets
    from .common import check_figure_path
    from .compare import groups, match, plot_curves, plot_groups, rows
    from .sweep import check_recipes, parse_grid, run_local, setting_options, settings, state_of

    check_figure_path(figure)
    if options.get("experiment"):
        raise SpecError("sweep names each run directory after its setting; drop --experiment")
    if bool(match_what) != bool(adjust):
        raise SpecError("--match and --adjust go together, e.g. --match params --adjust width")
    todo = settings(parse_grid(grid), split_sets(sets))
    if match_what:
        todo = match(spec, network, todo, match_what, adjust)
    output = options.pop("output", None) or "runs/sweep"
    options = {k: v for k, v in options.items() if v is not None and k != "experiment"}
    from ..train.config import build_config

    check_recipes(todo, options)
    echo = (lambda *a: None) if as_json else click.echo
    pending = [s for s in todo
               if state_of(Path(output) / s.name, build_config(setting_options(options, s)).epochs) != "done"]
    for s in todo:
        echo(f"{s.name}: {'to train' if s in pending else 'done, skipped'}")
    if not dry_run and pending:
        Path(output).mkdir(parents=True, exist_ok=True)
        if backend == "ray":
            _ray(spec, network, pending, options, output, address, ray_cpus, echo)
        else:
            run_local(spec, network, pending, options, output, echo)
    table = rows(spec, network, todo, output)
    pooled = groups(table)
    seeded = any(g["runs"] > 1 for g in pooled)
    if figure:
        if seeded:
            plot_groups(pooled, f"{Path(spec).stem}: {len(pooled)} settings × seeds", figure)
        else:
            plot_curves(table, f"{Path(spec).stem}: {len(todo)} settings", figure)
    if as_json:
        click.echo(json.dumps({"spec": spec, "output": output, "settings": table, "groups": pooled}, indent=2))
    elif seeded:
        _print_groups(pooled)
    else:
        _print(table)


def _ray(spec, network, pending, options, output, address, cpus, echo) -> None:
    """Run on Ray; a task's TrainError or SpecError comes back as one clear message."""
    try:
        import ray.exceptions
    except ImportError:
        raise SpecError("--backend ray needs Ray, which is not installed").with_note(
            "install the extra: pip install 'resdsl[sweep]' (or pip install ray), "
            "or run the settings here with --backend local") from None

    from .sweep import run_ray

    try:
        run_ray(spec, network, pending, options, output, address, cpus, echo)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, (TrainError, SpecError)):
            raise cause from None
        raise TrainError(f"a sweep task failed on Ray: {str(e).strip().splitlines()[-1][:300]}") from None
    except ConnectionError as e:
        raise TrainError(f"cannot reach the Ray cluster at {address}: {e}") from None


def _print(table: list[dict]) -> None:
    from ..cost.tables import human
    from ..cli_common import print_table

    def pct(v):
        return "" if v is None else f"{v:.2%}"

    print_table("sweep (best = best.pt, chosen on validation; its test accuracy)",
                ["setting", "params", "MACs", "status", "epochs", "best val", "best test", "final test", "train time"],
                [[r["setting"], f"{r['params']:,}", human(r["macs"]), r["status"], r["epochs_done"] or "",
                  pct(r["best_val_acc"]), pct(r["best_test_acc"]), pct(r["final_test_acc"]),
                  "" if r["train_s"] is None else f"{r['train_s']:.0f}s"] for r in table])


def pm(stat: dict, percent: bool = True) -> str:
    """`91.23 ± 0.45 (3)`: mean ± sample std (n), in percent; `—` for no finished run."""
    if stat["mean"] is None:
        return "—"
    k = 100 if percent else 1
    sd = "" if stat["std"] is None else f" ± {k * stat['std']:.2f}"
    return f"{k * stat['mean']:.2f}{sd} ({stat['n']})"


def _print_groups(gs: list[dict]) -> None:
    from ..cost.tables import human
    from ..cli_common import print_table

    print_table("sweep: mean ± std (n) over seeds, in %; best.pt chosen on validation",
                ["setting", "params", "MACs", "runs", "best val", "best test", "final test", "train s"],
                [[g["group"], f"{g['params']:,}", human(g["macs"]), f"{g['completed']}/{g['runs']}",
                  pm(g["best_val_acc"]), pm(g["best_test_acc"]), pm(g["final_test_acc"]),
                  "—" if g["train_s"]["mean"] is None else f"{g['train_s']['mean']:.0f}"] for g in gs])
