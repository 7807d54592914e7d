"""run(spec, recipe, out_dir): one training run from a spec, the library entry point behind `resdsl train`.

    summary = resdsl.train.run("specs/cifar_resnet.res", {"data": "cifar10:PATH", "epochs": 2}, "runs")

Resuming reads the run directory's own copy of the spec (spec.json), never the source folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from resdsl.train.config import TrainConfig
from resdsl.train.errors import TrainError


def run(spec: str | Path | None, recipe: TrainConfig | Mapping[str, Any] | None = None,
        out_dir: str | Path | None = None, *, network: str | None = None, args: Mapping[str, str] | None = None,
        resume: str | Path | None = None, init: str | Path | None = None, allow_imports: Iterable[str | Path] = (),
        data=None, reporter=None, stop_after_steps: int | None = None) -> dict:
    """Train SPEC (a path, spec text or Program) with `recipe` (a TrainConfig or a dict of its
    fields) into a new run directory under `out_dir` (or continue `resume`); returns the summary.
    `args` are network arguments as written (`{"depth": "20"}`); `data` an ImageData to use
    instead of recipe.data; `init` a weights file to start from (see train/warmstart.py)."""
    from resdsl.api import load_model, load_program
    from resdsl.frontend.load import bundle
    from resdsl.train.restore import run_program
    from resdsl.train.data import load_data
    from resdsl.train.fit import fit, resume_dir
    from resdsl.train.loop import seed_everything

    cfg = _config(recipe, out_dir, network, args, resume)
    if spec is not None:
        prog = load_program(spec, allow_imports)
    elif resume is not None:
        prog = run_program(resume_dir(resume)) or _old_run_spec(resume_dir(resume))
    else:
        raise TrainError("missing SPEC: resdsl train SPEC [options] (or --resume RUN_DIR)")
    if getattr(prog, "preset", None) is not None:      # a zoo name (resnet18): its network and arguments go in
        name, preset = prog.preset                      # the run's config, which its spec bundle does not hold
        cfg = cfg.model_copy(update={"network": cfg.network or name,
                                     "params": {**{k: str(v).lower() if isinstance(v, bool) else str(v)
                                                 for k, v in preset.items()}, **cfg.params}})
    seed_everything(cfg.seed, cfg.deterministic)
    grower = None
    if cfg.grow:
        from resdsl.train.grow import Grower

        grower = Grower(prog, cfg.network, dict(cfg.params), cfg.grow_param)
        grower.check(len(cfg.grow))
        model = grower.model(0)
    else:
        model, prog = load_model(prog, cfg.network, cfg.params, input_size=cfg.input_size)
    if cfg.freeze:
        try:
            model.freeze(cfg.freeze)
        except ValueError as e:
            raise TrainError(f"--freeze: {e}") from None
    if init is not None:
        from resdsl.train.warmstart import init_from_file

        report = init_from_file(model, init)
        if reporter is not None:
            reporter.message(str(report))
    check_classifier(model)
    data = data if data is not None else load_data(cfg.data)
    return fit(model, data, cfg, spec_text=prog.text, spec_name=getattr(model, "spec_name", "model"),
               spec_bundle=bundle(prog), resume=resume, reporter=reporter, stop_after_steps=stop_after_steps,
               grower=grower, source={"spec": _reference(spec), "init": _reference(init)})


def _reference(path) -> str | None:
    """A spec or weights file as config.toml names it: absolute (a zoo name or torchvision:NAME as is)."""
    if path is None or not isinstance(path, (str, Path)) or "\n" in str(path):
        return None
    p = Path(path).expanduser()
    return str(p.resolve()) if p.exists() else str(path)


def check_classifier(model) -> None:
    """Training classifies: the network must output one score per class (C, C×1 or C×1×1). A head
    that forgets its global pool outputs a map, which torch's loss would reject deep inside the first
    step; refuse it here, at the layer that makes the output."""
    from resdsl.errors import SpecError

    shape = tuple(getattr(model, "output_shape", ()) or ())
    if len(shape) > 1 and any(d != 1 for d in shape[1:]):
        raise SpecError(f"training needs one score per class, but the network outputs "
                        f"{'×'.join(map(str, shape))} (a map, not a vector)", getattr(model, "output_span", None)
                        ).with_note("end the head with a global pool: head { ...; avgpool; fc CLASSES }")


def _config(recipe, out_dir, network, args, resume) -> TrainConfig:
    from resdsl.train.fit import resume_dir
    from resdsl.train.rundir import read_args

    given = recipe.model_dump() if isinstance(recipe, TrainConfig) else dict(recipe or {})
    base = {}
    if resume is not None:
        base = read_args(resume_dir(resume))
        base.pop("world_size", None)
        base.setdefault("val_split", 0.0)     # a run from before validation splits trained on every image
    if out_dir is not None:
        given["output"] = str(out_dir)
    if network is not None:
        given["network"] = network
    if args:
        given["params"] = {k: str(v) for k, v in args.items()}
    if isinstance(given.get("data"), str):            # recorded absolute: eval/analyze work from any folder
        from resdsl.train.data import absolute_data

        given["data"] = absolute_data(given["data"])
    return TrainConfig(**{**base, **given})


def _old_run_spec(run: Path):
    """Runs written before spec.json: the top-level NAME.res copied into the run directory."""
    from resdsl.api import load_program

    found = sorted(run.glob("*.res"))
    if not found:
        raise TrainError(f"{run} holds no spec (no spec.json, no .res); name one: resdsl train SPEC --resume {run}")
    return load_program(found[0])
