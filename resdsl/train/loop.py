"""The training loop: fit(model, data, cfg) -> summary, resumable to the same metrics."""
from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resdsl.train import distributed as D
from resdsl.train.checkpoint import load_weights, rng_states, set_rng_states, unwrap
from resdsl.train.config import TrainConfig
from resdsl.train.data import ImageData, check_compatible
from resdsl.train.errors import DivergedError, TrainError
from resdsl.train.grow import optimizer_hyper
from resdsl.train.pipeline import make_pipeline
from resdsl.train.progress import Reporter
from resdsl.train.optim import autocast, clip_gradients, make_optimizer, make_scaler, make_scheduler
from resdsl.train.rundir import RunDir


class Interrupted(Exception):
    """Training stopped on Ctrl-C after writing last.pt; the CLI exits 130."""
    exit_code, prefix = 130, "interrupted"


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; in deterministic mode also forbid nondeterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


@dataclass
class Position:
    """How far training got: whole epochs done, steps into the next epoch, running sums for it."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    loss_sum: float = 0.0
    correct: float = 0.0
    count: float = 0.0
    best_acc: float = -1.0
    best_epoch: int = 0
    train_s: float = 0.0
    last: dict = field(default_factory=dict)
    best_test_acc: float | None = None   # the test accuracy of the epoch chosen (on validation) as best


class StopFlag:
    """Ctrl-C sets a flag checked between steps (a second Ctrl-C interrupts at once)."""

    def __init__(self):
        self.set = False

    def __enter__(self):
        self.old = None
        try:
            self.old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            pass
        return self

    def _handle(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


@torch.no_grad()
def evaluate(model: nn.Module, batches, precision: str, place: D.Place) -> tuple[float, float, int]:
    """Mean cross-entropy, accuracy and image count over `batches`, summed across ranks."""
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=place.device)
    for x, y in batches:
        with autocast(precision, place.device):
            out = model(x)
        sums[0] += F.cross_entropy(out.float(), y, reduction="sum")
        sums[1] += (out.argmax(1) == y).sum()
        sums[2] += len(y)
    loss, correct, n = D.all_sum(sums, place).tolist()
    return loss / n, correct / n, int(n)


def training_loss(net: nn.Module, out: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy of the output, plus weight · that of each auxiliary classifier's output of
    this forward pass (`aux` heads: GoogLeNet, Inception-v3; weight 0.3 unless the spec says)."""
    loss = F.cross_entropy(out, y, label_smoothing=smoothing)
    for w, aux in zip(getattr(net, "aux_weights", ()), getattr(net, "aux_outputs", ())):
        loss = loss + w * F.cross_entropy(aux, y, label_smoothing=smoothing)
    return loss


class Trainer:
    """One training run on this process's share of the data."""

    def __init__(self, model: nn.Module, data: ImageData, cfg: TrainConfig, place: D.Place, reporter: Reporter,
                 grower=None):
        from resdsl.train.split import prepare

        data = prepare(data, cfg)
        self.cfg, self.place, self.rep, self.data = cfg, place, reporter, data
        self.limit_hit: str | None = None    # "max_steps" or "time_budget" once the run must stop
        shape = tuple(getattr(model, "input_shape", data.input_shape))
        check_compatible(data, shape, getattr(model, "num_classes", data.num_classes))
        self.pipe = make_pipeline(data, cfg, shape, place.device, place.rank, place.world)
        self.install(model)
        self.sched = make_scheduler(self.opt, cfg, self.pipe.steps)
        self.scaler = make_scaler(cfg.precision, place.device)
        self.pos = Position()
        self.stop = StopFlag()
        self.stop_after_steps: int | None = None  # tests: act as if Ctrl-C came after this global step
        self.grower, self.level, self.levels = grower, 0, []   # multi-level training (train/grow.py)
        if grower is not None:
            self.levels = [grower.record(0, 0, model)]

    def install(self, model: nn.Module) -> None:
        """Place `model` on the device, wrap it (compile, DDP) and give it a fresh optimiser."""
        cfg, place = self.cfg, self.place
        model = model.to(place.device)
        if cfg.channels_last and not self.data.sequences:      # channels-last is a 4-D layout
            model = model.to(memory_format=torch.channels_last)
        if cfg.sync_bn and place.world > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.net = model
        self.opt = make_optimizer(model, cfg)
        runnable = torch.compile(model) if cfg.compile else model
        self.eval_model = runnable
        if place.world > 1:
            ids = [place.device.index] if place.device.type == "cuda" else None
            runnable = nn.parallel.DistributedDataParallel(runnable, device_ids=ids)
        self.model = runnable

    # -- multi-level training -------------------------------------------------------------------
    def set_level(self, level: int, interpolate: bool = True) -> None:
        """Swap in the net of `level` (weights interpolated from this one when `interpolate`).
        As in Chang et al., the deeper net is trained by a new optimiser over its own parameters
        (momentum restarts from zero); the learning-rate schedule continues where it was."""
        new = self.grower.model(level)
        if interpolate:
            self.grower.interpolate(unwrap(self.net).cpu(), new, self.level)
        sched, hyper = self.sched.state_dict(), optimizer_hyper(self.opt)
        self.install(new)
        self.sched = make_scheduler(self.opt, self.cfg, self.pipe.steps)
        self.sched.load_state_dict(sched)
        for group, h in zip(self.opt.param_groups, hyper):
            group.update(h)
        self.level = level

    def grow(self) -> dict:
        """Go one level deeper after this epoch; returns the new level's record."""
        self.set_level(self.level + 1)
        rec = self.grower.record(self.level, self.pos.epoch, unwrap(self.net))
        self.levels.append(rec)
        return rec

    def grow_state(self) -> dict:
        if self.grower is None:
            return {}
        return {"grow": {"level": self.level, "param": self.grower.param, "levels": self.levels,
                         "args": {self.grower.param: self.grower.base * 2 ** self.level}}}

    # -- state --------------------------------------------------------------------------------
    def state(self, extra: dict) -> dict:
        p = self.pos
        return {
            "model": unwrap(self.net).state_dict(), "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng_states(),
            "epoch": p.epoch, "step_in_epoch": p.step_in_epoch, "global_step": p.global_step,
            "partial": [p.loss_sum, p.correct, p.count], "best_acc": p.best_acc, "best_epoch": p.best_epoch,
            "best_test_acc": p.best_test_acc, "limit_hit": self.limit_hit,
            "train_s": p.train_s, "last": p.last, "config": self.cfg.model_dump(mode="json"),
            "mean": self.pipe.mean, "std": self.pipe.std, **self.grow_state(), **extra,
        }

    def restore(self, ck: dict) -> None:
        grow = ck.get("grow")
        if isinstance(grow, dict):
            if self.grower is None:
                raise TrainError(f"cannot resume without --grow: the checkpoint holds grow level {grow.get('level')} "
                                 f"(a deeper net than the spec's); keep the run's --grow")
            if grow.get("level") != self.level:
                self.set_level(int(grow["level"]), interpolate=False)
            self.levels = list(grow.get("levels", self.levels))
        load_weights(self.net, ck["model"], "last.pt")
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        set_rng_states(ck["rng"])
        ls, c, n = ck["partial"] if self.place.main else (0.0, 0.0, 0.0)
        self.pos = Position(ck["epoch"], ck["step_in_epoch"], ck["global_step"], ls, c, n,
                            ck["best_acc"], ck["best_epoch"], ck["train_s"], ck.get("last", {}),
                            ck.get("best_test_acc"))
        self.limit_hit = ck.get("limit_hit")

    # -- steps --------------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            with autocast(self.cfg.precision, self.place.device):
                out = self.model(x)
                loss = training_loss(self.net, out, y, self.cfg.smoothing)
        except ValueError as e:           # batch norm over a single value per channel
            if "more than 1 value per channel" not in str(e):
                raise
            raise TrainError(f"batch norm needs more than one value per channel, but a batch of {len(y)} image(s) "
                             "reaches a 1×1 map; use --batch-size 2 or more") from None
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.clip_grad is not None:
            self.scaler.unscale_(self.opt)
            clip_gradients(self.net, self.cfg.clip_grad, self.cfg.clip_mode)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        return loss.detach(), (out.detach().argmax(1) == y).sum()

    def evaluate(self, split: str = "test") -> tuple[float, float]:
        """Loss and accuracy over the whole test (or validation) set (each rank scores its share)."""
        loss, acc, _ = evaluate(self.eval_model, self.pipe.eval_batches(split), self.cfg.precision, self.place)
        return loss, acc

    def over_limit(self, elapsed: float) -> str | None:
        """Which of --max-steps / --time-budget is used up (None: neither)."""
        cfg, p = self.cfg, self.pos
        if cfg.max_steps is not None and p.global_step >= cfg.max_steps:
            return "max_steps"
        if cfg.time_budget is not None and p.train_s + elapsed >= cfg.time_budget:
            return "time_budget"
        return None

    def run_epoch(self, run: RunDir | None) -> bool:
        """Train one epoch from the current position; False when stopped (Ctrl-C) part-way."""
        p, place, steps = self.pos, self.place, self.pipe.steps
        self.model.train()
        self.rep.start_epoch(p.epoch, self.cfg.epochs, steps, p.step_in_epoch,
                             unit="samples/s" if self.data.sequences else "img/s")
        buf: list[tuple] = []
        t0, seen = time.perf_counter(), 0
        self.count_at_start = p.count        # a resumed epoch's images before the restart: not in its throughput
        for x, y in self.pipe.train_batches(p.epoch, p.step_in_epoch):
            loss, correct = self.train_step(x, y)
            p.step_in_epoch += 1
            p.global_step += 1
            seen += len(y)
            buf.append((p.global_step, loss, correct, len(y), self.opt.param_groups[0]["lr"]))
            if self.cfg.max_steps is not None or self.cfg.time_budget is not None:
                limit = self.over_limit(time.perf_counter() - t0)
                if D.any_rank(limit is not None, place):
                    self.limit_hit = limit or "time_budget"
            stop = self.stop.set or (self.stop_after_steps is not None and p.global_step >= self.stop_after_steps)
            stop = stop or self.limit_hit is not None
            if len(buf) >= self.cfg.log_interval or p.step_in_epoch == steps or stop:
                self.flush(buf, run, seen * place.world / (time.perf_counter() - t0))
                buf = []
            if D.any_rank(stop, place):
                p.train_s += time.perf_counter() - t0
                return False
        p.train_s += time.perf_counter() - t0
        return True

    def flush(self, buf: list[tuple], run: RunDir | None, ips: float) -> None:
        """One device sync per log interval: check the loss, write the steps, move the bar."""
        losses = torch.stack([b[1] for b in buf]).float().cpu().tolist()
        corrects = torch.stack([b[2] for b in buf]).cpu().tolist()
        bad = not all(np.isfinite(losses))
        if D.any_rank(bad, self.place):
            step = next((b[0] for b, v in zip(buf, losses) if not np.isfinite(v)), buf[0][0])
            raise DivergedError(f"loss became {'nan' if any(np.isnan(losses)) else 'inf'} at step {step}"
                                f" (epoch {self.pos.epoch + 1}); try a lower --lr or --clip-grad")
        p = self.pos
        for (_, _, _, n, _), l, c in zip(buf, losses, corrects):
            p.loss_sum, p.correct, p.count = p.loss_sum + l * n, p.correct + c, p.count + n
        if run is not None:
            run.log_steps([{"step": s, "epoch": p.epoch + 1, "loss": l, "acc": c / n, "lr": lr}
                           for (s, _, _, n, lr), l, c in zip(buf, losses, corrects)])
        self.rep.update(p.step_in_epoch, p.loss_sum / max(p.count, 1), p.correct / max(p.count, 1), ips)

    def end_epoch(self, epoch_s: float) -> dict:
        p = self.pos
        sums = D.all_sum(torch.tensor([p.loss_sum, p.correct, p.count, p.count - getattr(self, "count_at_start", 0.0)],
                                      dtype=torch.float64, device=self.place.device), self.place).tolist()
        D.sync_buffers(self.net, self.place)
        val_loss, val_acc = self.evaluate("val") if self.pipe.has_val else (None, None)
        test_loss, test_acc = self.evaluate()
        p.epoch, p.step_in_epoch = p.epoch + 1, 0
        p.loss_sum = p.correct = p.count = 0.0
        return {"epoch": p.epoch, "lr": self.opt.param_groups[0]["lr"], "train_loss": sums[0] / sums[2],
                "train_acc": sums[1] / sums[2], "val_loss": val_loss, "val_acc": val_acc,
                "test_loss": test_loss, "test_acc": test_acc,
                "epoch_s": epoch_s, "images_per_s": sums[3] / max(epoch_s, 1e-9)}   # images of this session only
