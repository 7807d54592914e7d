"""`resdsl sweep`: several settings of a spec trained with one recipe, each an ordinary run directory.

A setting is one point of the grid (`--grid n=3,9 --grid skip=zeropad,none --grid lr=0.1,0.05
--grid seed=1,2`); its run directory is OUTPUT/`n=3_skip=none_lr=0.1_seed=1`. A grid name that is a
training option (a TrainConfig field: lr, seed, epochs, batch_size, ...) varies the recipe; any
other name is a network parameter. Settings that differ only in `seed` form one group, reported
as mean ± std (n) (analyze/compare.py). A setting whose summary says "completed" with the recipe's epochs is
skipped; one with a last.pt is resumed; the rest start fresh. Trials run here one after another,
or as Ray tasks (`--backend ray`), one per setting; Ray schedules them, resdsl does not.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError


TRAINING_EXCLUDED = ("output", "experiment", "network", "params")   # set by the sweep itself


def training_options() -> set[str]:
    """Names a --grid may give that vary the recipe rather than the network."""
    from ..train.config import TrainConfig

    return set(TrainConfig.model_fields) - set(TRAINING_EXCLUDED)


@dataclass(frozen=True)
class Setting:
    """One grid point: network parameter values and training options as written (strings),
    `order` the names as the run-directory name lists them."""

    params: dict
    recipe: dict = None
    order: tuple = ()

    @property
    def values(self) -> dict:
        both = {**self.params, **(self.recipe or {})}
        names = list(self.order) + [k for k in both if k not in self.order]
        return {k: both[k] for k in names if k in both}

    @property
    def name(self) -> str:
        return "_".join(f"{k}={v}" for k, v in self.values.items()) or "default"

    @property
    def group(self) -> str:
        """The setting without its seed: the runs whose results are averaged together."""
        return "_".join(f"{k}={v}" for k, v in self.values.items() if k != "seed") or "default"

    def __hash__(self):
        return hash(self.name)


def parse_grid(items: tuple[str, ...]) -> dict[str, list[str]]:
    """`--grid NAME=V1,V2` options -> {NAME: [V1, V2]}; values are spec expressions, kept as text."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip().replace("-", "_")        # --grid batch-size=64,128 as the option is spelled
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
    """The Cartesian product of the grid, each with the fixed `--set` values; grid names that are
    training options go to the setting's recipe."""
    if set(grid) & set(fixed):
        raise SpecError(f"parameter(s) {', '.join(sorted(set(grid) & set(fixed)))} both in --grid and --set")
    names, train = list(grid), training_options()
    out = []
    for combo in itertools.product(*(grid[n] for n in names)):
        point = dict(zip(names, combo))
        out.append(Setting({**fixed, **{k: v for k, v in point.items() if k not in train}},
                           {k: v for k, v in point.items() if k in train}, tuple(fixed) + tuple(names)))
    return out


def setting_options(options: dict, setting: Setting) -> dict:
    """The sweep's recipe options with this setting's training values (strings, converted as
    `resdsl train` converts its options)."""
    return {**options, **(setting.recipe or {})}


def check_recipes(todo: list[Setting], options: dict) -> None:
    """Every setting's recipe is valid before anything trains (a bad --grid lr=-1 fails at once)."""
    from ..train.config import build_config

    for s in todo:
        build_config(setting_options(options, s))


def state_of(run: Path, epochs: int) -> str:
    """'done' (completed with these epochs, or stopped by its --max-steps/--time-budget), 'resume' (a last.pt to continue, or a run stopped before
    its first checkpoint, which starts again) or 'new'."""
    from ..train.errors import TrainError
    from ..train.rundir import read_summary

    try:
        s = read_summary(run)
    except TrainError:
        s = {}                     # a corrupt summary: the setting is trained again
    if s.get("status") == "completed" and (s.get("epochs_done") == epochs or s.get("stopped_by")):
        return "done"
    # a setting killed before its first checkpoint has args.json and no last.pt: resuming it
    # starts it again from epoch 1 in its own directory (train/fit.py), so it can always run again
    return "resume" if (run / "last.pt").is_file() or (run / "args.json").is_file() else "new"


def train_setting(spec: str, network: str | None, setting: Setting, options: dict, output: str) -> dict:
    """Train one setting in this process through resdsl.train.run, resuming where it stopped."""
    from ..train.config import build_config, recipe_from_options
    from ..train.progress import Reporter
    from ..train.session import run as train_run

    name, params, options = setting.name, setting.params, setting_options(options, setting)
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
        summary = train_setting(spec, network, s, options, output)
        echo(f"  {s.name}: {_result(summary)}")


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
        futures = {task.remote(str(Path(spec).resolve()), network, s, options,
                               str(Path(output).resolve())): s for s in todo}
        for f, s in futures.items():
            summary = ray.get(f)
            echo(f"  {s.name}: {_result(summary)}")
    finally:
        if started:
            ray.shutdown()


def _result(summary: dict) -> str:
    val = summary.get("best_val_acc")
    return ((f"validation {val:.2%}, " if val is not None else "")
            + f"test {summary['best_test_acc']:.2%} (best.pt), {summary['train_s']:.0f}s")
