"""Checkpoints: written atomically (temp file in the same folder, fsync, rename), with every RNG state."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from resdsl.atomic import write_atomic

from resdsl.train.errors import TrainError


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def rng_states() -> dict:
    """Python, NumPy, torch (CPU) and CUDA generator states."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save through write_atomic: a crash never leaves a torn checkpoint."""
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """A checkpoint written by save_atomic; a clear error when missing or unreadable."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise TrainError(f"no checkpoint at {path}")
    try:
        # RNG states hold numpy arrays and Python tuples, so the full unpickler is needed;
        # only load checkpoints you trust (the same rule as torch.load's weights_only=False).
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise TrainError(f"cannot read checkpoint {path}: {e}") from None


def load_weights(model: nn.Module, state: dict, source: str) -> None:
    """Load a state dict, turning a mismatch into one clear line."""
    try:
        unwrap(model).load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise TrainError(f"checkpoint {source} does not fit this model: {' '.join(first[:3])[:400]}") from None
