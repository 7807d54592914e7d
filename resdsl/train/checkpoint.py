"""Checkpoints: written atomically (temp file in the same folder, fsync, rename), with every RNG state.

A checkpoint may hold only tensors, numbers, strings, None, lists, tuples and dicts: it is read
with `torch.load(weights_only=True)`, which executes no code, so a hostile `.pt` is a clean error.
Checkpoints written before this rule keep NumPy's RNG state as an ndarray; the allow-list below
admits exactly the NumPy globals needed to rebuild a plain numeric array, nothing else.
"""
from __future__ import annotations

import pickle
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
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _numpy_state() -> tuple:
    """NumPy's legacy RNG state with its key array as a tensor (loadable with weights_only=True)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    name, keys, *rest = states["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((name, keys.astype(np.uint32), *rest))
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save through write_atomic: a crash never leaves a torn checkpoint."""
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def _numpy_globals() -> list:
    """The NumPy globals an old checkpoint's RNG array needs (an ndarray of uint32), nothing more."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def safe_load(path: Path, map_location="cpu", what: str = "checkpoint"):
    """torch.load with weights_only=True: tensors and plain containers only, never code."""
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        why = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines()[0][:200]
        raise TrainError(f"refusing to load {what} {path}: it holds more than tensors and plain data "
                         f"({why}); resdsl never runs code from a checkpoint") from None
    except Exception as e:  # a truncated or foreign file
        raise TrainError(f"cannot read {what} {path}: {str(e).splitlines()[0][:300] if str(e) else type(e).__name__}") from None


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """A checkpoint written by save_atomic; a clear error when missing, unreadable or hostile."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise TrainError(f"no checkpoint at {path}")
    ck = safe_load(path, map_location)
    if not isinstance(ck, dict) or "model" not in ck:
        raise TrainError(f"{path} is not a resdsl checkpoint (no 'model' entry)")
    return ck


def load_weights(model: nn.Module, state: dict, source: str) -> None:
    """Load a state dict, turning a mismatch into one clear line."""
    try:
        unwrap(model).load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise TrainError(f"checkpoint {source} does not fit this model: {' '.join(first[:3])[:400]}") from None
