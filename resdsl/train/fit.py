"""fit(): a whole run — run directory, resume, per-epoch checkpoints and logs, summary, clean stops."""
from __future__ import annotations

import time
from pathlib import Path

import torch.distributed as dist
from torch import nn

from resdsl.train import distributed as D
from resdsl.train.checkpoint import load_checkpoint, save_atomic
from resdsl.train.config import TrainConfig
from resdsl.train.data import ImageData
from resdsl.train.errors import DivergedError, TrainError
from resdsl.train.loop import Interrupted, Trainer
from resdsl.train.progress import Reporter
from resdsl.train.rundir import RunDir, claim_run_dir


def fit(model: nn.Module, data: ImageData, cfg: TrainConfig, *, spec_text: str = "", spec_name: str = "model",
        spec_bundle: dict | None = None, resume: str | Path | None = None, reporter: Reporter | None = None,
        stop_after_steps: int | None = None, grower=None, source: dict | None = None) -> dict:
    """Train `model` on `data` with recipe `cfg`; returns the summary also written to summary.json.
    `resume` is a run directory (or its last.pt); a run killed before its first checkpoint starts
    again from epoch 1 in the same directory. `grower` (train/grow.py) makes the net deeper at
    the epochs of cfg.grow."""
    owns_group = not dist.is_initialized()
    place = D.setup(cfg.device)
    rep = (reporter or Reporter()) if place.main else Reporter(quiet=True)
    lock = run = None
    try:
        trainer = Trainer(model, data, cfg, place, rep, grower)
        trainer.stop_after_steps = stop_after_steps
        run, lock, fresh = _open_run(cfg, place, resume, trainer)
        if run is not None and fresh:
            from resdsl.train.configfile import config_text

            used = cfg.model_dump(mode="json")
            run.write_inputs(spec_text, spec_name, {**used, "world_size": place.world}, spec_bundle,
                             config_text(used, **(source or {"spec": None, "init": None})))
        if run is not None and grower is not None:
            run.write_levels(trainer.levels)
        if run is not None:
            run.open_events(purge_step=None if fresh else trainer.pos.global_step + 1,
                            config=cfg.model_dump(mode="json"))
        meta = {"spec_name": spec_name, "spec_text": spec_text, "spec_bundle": spec_bundle, "data": data.name,
                "input_shape": list(data.input_shape), "num_classes": data.num_classes}
        return _train(trainer, run, meta)
    finally:
        rep.close()
        if run is not None:
            run.close_events()
        if lock is not None:
            lock.release()
        if owns_group:
            D.teardown()


def resume_dir(resume: str | Path) -> Path:
    """The run directory named by --resume: the directory itself or its last.pt (never best.pt:
    training continues from the last state; to start a new run from the best weights use --init)."""
    path = Path(resume).expanduser()
    if path.is_file() or path.suffix == ".pt":
        if path.name != "last.pt":
            raise TrainError(f"--resume {resume}: training continues from a run's last state (RUN or RUN/last.pt); "
                             f"to start a new run from these weights use --init {resume}")
        path = path.parent
    if not path.is_dir():
        raise TrainError(f"--resume {resume}: no such run directory")
    return path


def _open_run(cfg: TrainConfig, place: D.Place, resume, trainer: Trainer):
    """Rank 0 creates (or reopens and locks) the run directory; every rank learns its path or the error.
    Returns (run, lock, fresh): fresh when the run starts at epoch 1 (new, or killed before a checkpoint)."""
    outcome, lock = ("ok", None, False), None
    if place.main:
        try:
            path, lock = claim_run_dir(cfg.output, cfg.experiment, resume_dir(resume) if resume else None)
            outcome = ("ok", str(path), resume is None or not (path / "last.pt").is_file())
        except TrainError as e:
            outcome = ("error", str(e), False)
    kind, value, fresh = D.broadcast_object(outcome, place)
    if kind == "error":
        raise TrainError(value)
    if resume is not None and not fresh:
        ck = load_checkpoint(Path(value) / "last.pt")
        trainer.restore(ck)
        trainer.rep.message(f"resuming {value} at epoch {ck['epoch'] + 1}, step {ck['step_in_epoch']}")
    elif resume is not None:
        trainer.rep.message(f"{value} has no checkpoint yet (stopped before its first epoch ended); "
                            "starting it again from epoch 1")
    if not place.main:
        return None, None, fresh
    run = RunDir(Path(value))
    if resume is not None:
        run.truncate(trainer.pos.epoch, trainer.pos.global_step)
    else:
        trainer.rep.message(f"run directory: {value}")
    return run, lock, fresh


def _train(tr: Trainer, run: RunDir | None, meta: dict) -> dict:
    cfg, p, t_start = tr.cfg, tr.pos, time.perf_counter()
    status = "completed"
    tr.limit_hit = tr.over_limit(0.0)
    select = "val_acc" if tr.pipe.has_val else "test_acc"   # best.pt: chosen on validation when there is one
    if select == "test_acc" and p.epoch == 0:
        tr.rep.message("note: no validation split (--val-split 0): best.pt is chosen on the test set, "
                       "so its test accuracy is optimistic")
    try:
        with tr.stop:
            while p.epoch < cfg.epochs and tr.limit_hit is None:
                t0 = time.perf_counter()
                if not tr.run_epoch(run) and tr.limit_hit is None:
                    status = "interrupted"
                    break
                row = tr.end_epoch(time.perf_counter() - t0)
                p.last = row
                improved = row[select] > p.best_acc
                if improved:
                    p.best_acc, p.best_epoch, p.best_test_acc = row[select], p.epoch, row["test_acc"]
                if run is not None:
                    run.log_epoch(row)
                    if improved:                  # the net that was scored, before any growing
                        save_atomic(tr.state(meta), run.path / "best.pt")
                grown = tr.grow() if p.epoch in cfg.grow else None
                if run is not None:
                    save_atomic(tr.state(meta), run.path / "last.pt")
                    if grown is not None:
                        run.write_levels(tr.levels)
                    run.write_summary(_summary(tr, run, meta, "running", t_start))
                tr.rep.end_epoch(row, cfg.epochs)
                if tr.limit_hit is not None:
                    tr.rep.message(f"stopped by --{tr.limit_hit.replace('_', '-')} after {p.global_step} steps, "
                                   f"{p.train_s:.1f}s of training")
                if grown is not None:
                    tr.rep.message(f"grew to level {grown['level']}: {tr.grower.param} = {grown[tr.grower.param]}, "
                                   f"depth {grown['depth']}, {grown['params']:,} parameters, "
                                   f"step scale {grown['step_scale']}")
    except DivergedError:
        _finish(tr, run, meta, "diverged", t_start, save=False)
        raise
    summary = _finish(tr, run, meta, status, t_start, save=status == "interrupted")
    if status == "interrupted":
        raise Interrupted(f"stopped at epoch {p.epoch + 1} step {p.step_in_epoch};"
                          f" continue with --resume {run.path if run else cfg.output}")
    return summary


def _finish(tr: Trainer, run: RunDir | None, meta: dict, status: str, t_start: float, save: bool) -> dict:
    summary = _summary(tr, run, meta, status, t_start)
    if run is not None:
        if save:
            save_atomic(tr.state(meta), run.path / "last.pt")
        run.write_summary(summary)
        run.plot()
    return summary


def _data_from_run(data: str, run: RunDir | None) -> str | None:
    from resdsl.train.data import data_from_run

    return data_from_run(data, run.path) if run is not None else None


def _summary(tr: Trainer, run: RunDir | None, meta: dict, status: str, t_start: float) -> dict:
    p, last = tr.pos, tr.pos.last
    return {
        "status": status, "spec_name": meta["spec_name"], "data": meta["data"], "run_dir": str(run.path) if run else None,
        "epochs_done": p.epoch, "epochs": tr.cfg.epochs, "global_step": p.global_step,
        "final_test_acc": last.get("test_acc"), "final_test_loss": last.get("test_loss"),
        # best.pt's epoch is chosen on validation (when there is a split); its test accuracy is reported
        "best_test_acc": p.best_test_acc if p.best_acc >= 0 else None, "best_epoch": p.best_epoch or None,
        "best_val_acc": p.best_acc if p.best_acc >= 0 and tr.pipe.has_val else None,
        "final_val_acc": last.get("val_acc"), "stopped_by": tr.limit_hit,
        **(tr.data.split or {}), "data_from_run": _data_from_run(tr.cfg.data, run),
        "train_s": round(p.train_s, 3), "wall_s_this_session": round(time.perf_counter() - t_start, 3),
        "params": sum(x.numel() for x in tr.net.parameters()), "device": str(tr.place.device),
        "world_size": tr.place.world, **({"levels": tr.levels} if tr.grower is not None else {}),
    }
