"""`resdsl sweep`: several settings of a spec trained with one recipe, each an ordinary run directory.

A setting is one point of the grid (`--grid n=3,9 --grid skip=zeropad,none`); its run directory
is OUTPUT/`n=3_skip=none`. A setting whose summary says "completed" with the recipe's epochs is
skipped; one with a last.pt is resumed; the rest start fresh. Trials run here one after another,
or as Ray tasks (`--backend ray`), one per setting; Ray schedules them, resdsl does not.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError


@dataclass(frozen=True)
class Setting:
    """One grid point: parameter values as written (strings), and its run-directory name."""

    params: dict

    @property
    def name(self) -> str:
        return "_".join(f"{k}={v}" for k, v in self.params.items()) or "default"


def parse_grid(items: tuple[str, ...]) -> dict[str, list[str]]:
    """`--grid NAME=V1,V2` options -> {NAME: [V1, V2]}; values are spec expressions, kept as text."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, eq, text = item.partition("=")
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not eq or not name.strip().isidentifier() or not values:
            raise SpecError(f"--grid expects NAME=V1,V2,..., got '{item}'")
        if name.strip() in grid:
            raise SpecError(f"--grid {name.strip()} given twice")
        for v in values:
            if any(c in v for c in "/\\\0") or v in (".", ".."):
                raise SpecError(f"--grid {name.strip()}: value '{v}' cannot name a run directory")
        grid[name.strip()] = values
    return grid


def settings(grid: dict[str, list[str]], fixed: dict[str, str]) -> list[Setting]:
    """The Cartesian product of the grid, each with the fixed `--set` values."""
    if set(grid) & set(fixed):
        raise SpecError(f"parameter(s) {', '.join(sorted(set(grid) & set(fixed)))} both in --grid and --set")
    names = list(grid)
    return [Setting({**fixed, **dict(zip(names, combo))}) for combo in itertools.product(*(grid[n] for n in names))]


def state_of(run: Path, epochs: int) -> str:
    """'done' (completed with these epochs), 'resume' (a last.pt to continue, or a run stopped before
    its first checkpoint, which starts again) or 'new'."""
    from ..train.errors import TrainError
    from ..train.rundir import read_summary

    try:
        s = read_summary(run)
    except TrainError:
        s = {}                     # a corrupt summary: the setting is trained again
    if s.get("status") == "completed" and s.get("epochs_done") == epochs:
        return "done"
    # a setting killed before its first checkpoint has args.json and no last.pt: resuming it
    # starts it again from epoch 1 in its own directory (train/fit.py), so it can always run again
    return "resume" if (run / "last.pt").is_file() or (run / "args.json").is_file() else "new"


def train_setting(spec: str, network: str | None, params: dict, options: dict, output: str) -> dict:
    """Train one setting in this process through resdsl.train.run, resuming where it stopped."""
    from ..train.config import build_config, recipe_from_options
    from ..train.progress import Reporter
    from ..train.session import run as train_run

    name = Setting(params).name
    run = Path(output) / name
    state = state_of(run, build_config(options).epochs)
    if state == "done":
        from ..train.rundir import read_summary

        return read_summary(run)
    # the CLI's strings turned into TrainConfig fields as `resdsl train` does (--decay-milestones 8,12)
    recipe = {k: v for k, v in recipe_from_options(options).items() if k not in ("params", "network")}
    recipe.update(output=output, experiment=name)
    return train_run(spec, recipe, output, network=network, args={k: str(v) for k, v in params.items()},
                     resume=str(run) if state == "resume" else None, reporter=Reporter(quiet=True))


def run_local(spec, network, todo: list[Setting], options: dict, output: str, echo) -> None:
    for s in todo:
        echo(f"training {s.name} ...")
        summary = train_setting(spec, network, s.params, options, output)
        echo(f"  {s.name}: test accuracy {summary['final_test_acc']:.2%}, {summary['train_s']:.0f}s")


def run_ray(spec, network, todo: list[Setting], options: dict, output: str, address: str | None,
            cpus: int, echo) -> None:
    """One Ray task per setting on an existing cluster (`address`) or a local Ray instance."""
    import os

    import ray

    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                     os.environ.get("PYTHONPATH", "")])),
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}}
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else cpus, runtime_env=env,
                 include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(train_setting)
        futures = {task.remote(str(Path(spec).resolve()), network, s.params, options,
                               str(Path(output).resolve())): s for s in todo}
        for f, s in futures.items():
            summary = ray.get(f)
            echo(f"  {s.name}: test accuracy {summary['final_test_acc']:.2%}, {summary['train_s']:.0f}s")
    finally:
        if started:
            ray.shutdown()
