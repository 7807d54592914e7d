"""Optimiser, learning-rate schedule, loss and mixed precision from a TrainConfig."""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float, exclude_bn_bias: bool) -> list[dict]:
    """Two groups: weights that decay, and (optionally) 1-d tensors (BN scales/shifts, biases) that do not."""
    if not exclude_bn_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.wd_exclude_bn_bias)
    if cfg.opt == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    nesterov = cfg.nesterov or cfg.opt == "nesterov"
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=nesterov and cfg.momentum > 0)


class LrFactor:
    """lr(step) / base lr: linear warm-up, then step (x decay_rate at milestones), cosine or constant."""

    def __init__(self, sched: str, steps_per_epoch: int, epochs: int, warmup_epochs: float,
                 milestones: tuple[int, ...], decay_rate: float, min_ratio: float):
        self.sched, self.spe, self.epochs = sched, steps_per_epoch, epochs
        self.warmup = round(warmup_epochs * steps_per_epoch)
        self.milestones = milestones or (epochs // 2, epochs * 3 // 4)  # He et al.: /10 at 50% and 75%
        self.decay_rate, self.min_ratio = decay_rate, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.sched == "step":
            return self.decay_rate ** sum(step >= m * self.spe for m in self.milestones)
        if self.sched == "cosine":
            t = (step - self.warmup) / max(1, self.epochs * self.spe - self.warmup)
            return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        return 1.0


def make_scheduler(opt: torch.optim.Optimizer, cfg, steps_per_epoch: int):
    """A per-step scheduler; one-cycle is torch's OneCycleLR (it also cycles momentum)."""
    if cfg.sched == "onecycle":
        pct = cfg.warmup_epochs / cfg.epochs if cfg.warmup_epochs else 0.25
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, pct_start=min(pct, 0.9),
            cycle_momentum=cfg.opt != "adamw" and cfg.momentum > 0)
    fn = LrFactor(cfg.sched, steps_per_epoch, cfg.epochs, cfg.warmup_epochs, cfg.decay_milestones,
                  cfg.decay_rate, cfg.min_lr / cfg.lr)
    return torch.optim.lr_scheduler.LambdaLR(opt, fn)


def autocast(precision: str, device: torch.device):
    """bf16/fp16 autocast on the device, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 (bf16 has fp32's range)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def clip_gradients(model: nn.Module, value: float | None, mode: str) -> None:
    if value is None:
        return
    if mode == "norm":
        torch.nn.utils.clip_grad_norm_(model.parameters(), value)
    else:
        torch.nn.utils.clip_grad_value_(model.parameters(), value)
