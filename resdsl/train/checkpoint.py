"""Checkpoints: written atomically (temp file in the same folder, fsync, rename), with every RNG state.

A checkpoint may hold only tensors, numbers, strings, None, lists, tuples and dicts: it is read
with `torch.load(weights_only=True)`, which executes no code, so a hostile `.pt` is a clean error.
Checkpoints written before this rule keep NumPy's RNG state as an ndarray; the allow-list below
admits exactly the NumPy globals needed to rebuild a plain numeric array, nothing else.
"""
from __future__ import annotations

import math
import pickle
import random
from pathlib import Path
from typing import Any, Callable

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


def check_archive(path: Path, what: str = "checkpoint") -> None:
    """Bound what a checkpoint may expand to, before torch reads it. torch.save writes a zip whose
    members are stored, never compressed, so a member that is compressed (or declares a size other
    than the bytes it takes on disk) is not one of ours: refusing it bounds the expansion by the
    file's own size (a 10 MB deflate bomb would otherwise allocate gigabytes)."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return                          # the legacy (non-zip) format: torch reads it as a stream
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise TrainError(f"cannot read {what} {path}: {e}") from None
    size = Path(path).stat().st_size
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise TrainError(f"refusing to load {what} {path}: member '{info.filename[:80]}' is compressed "
                             f"({info.compress_size:,} bytes declaring {info.file_size:,}); torch.save never "
                             "compresses, so this file was not written by resdsl or torch")
    if sum(i.file_size for i in infos) > size:
        raise TrainError(f"refusing to load {what} {path}: its members declare more bytes than the file holds")


def safe_load(path: Path, map_location="cpu", what: str = "checkpoint"):
    """torch.load with weights_only=True: tensors and plain containers only, never code; the
    archive's declared sizes are checked first (check_archive)."""
    check_archive(path, what)
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
    check_fields(ck, path)
    return ck


def _str_map(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) for k in v)


def _numbers(v) -> bool:
    return (isinstance(v, (list, tuple)) and 0 < len(v) <= 4096
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))


def _opt(check):
    return lambda v: v is None or check(v)


def _scalar(v) -> bool:
    return isinstance(v, (str, int, float, bool)) or v is None


# Every field resdsl reads from a checkpoint, with its type. One schema, checked once, at load:
# every reader after this may index without guarding, and a wrong type is one line, not a traceback.
FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "model": ("a mapping of parameter names to tensors",
              lambda v: _str_map(v) and all(isinstance(t, torch.Tensor) for t in v.values())),
    "mean": ("a list of finite numbers (one per input channel)", _opt(_numbers)),
    "std": ("a list of positive finite numbers (one per input channel)", _opt(lambda v: _numbers(v) and min(v) > 0)),
    "config": ("a mapping", _opt(_str_map)),
    "spec_text": ("spec text (a string)", _opt(lambda v: isinstance(v, str))),
    "spec_name": ("a string", _opt(lambda v: isinstance(v, str))),
    "spec_bundle": ("a spec bundle {main: str, files: {str: str}}", _opt(
        lambda v: _str_map(v) and isinstance(v.get("main"), str) and _str_map(v.get("files"))
        and all(isinstance(t, str) for t in v["files"].values()))),
    "grow": ("a mapping", _opt(_str_map)),
    "epoch": ("an integer", _opt(lambda v: isinstance(v, int) and not isinstance(v, bool))),
    "step_in_epoch": ("an integer", _opt(lambda v: isinstance(v, int) and not isinstance(v, bool))),
    "global_step": ("an integer", _opt(lambda v: isinstance(v, int) and not isinstance(v, bool))),
    "best_acc": ("a number", _opt(lambda v: isinstance(v, (int, float)))),
    "best_epoch": ("an integer", _opt(lambda v: isinstance(v, int))),
    "train_s": ("a number", _opt(lambda v: isinstance(v, (int, float)))),
    "optimizer": ("a mapping", _opt(_str_map)),
    "scheduler": ("a mapping", _opt(_str_map)),
    "scaler": ("a mapping", _opt(_str_map)),
    "rng": ("a mapping", _opt(_str_map)),
    "partial": ("three numbers", _opt(lambda v: isinstance(v, (list, tuple)) and len(v) == 3)),
    "last": ("a mapping", _opt(_str_map)),
}
CONFIG_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "data": ("a dataset name (a string)", _opt(lambda v: isinstance(v, str))),
    "network": ("a network name (a string)", _opt(lambda v: isinstance(v, str))),
    "params": ("a mapping of argument names to values", _opt(
        lambda v: _str_map(v) and all(_scalar(x) for x in v.values()))),
    "precision": ("a string", _opt(lambda v: isinstance(v, str))),
}


def check_fields(ck: dict, path) -> None:
    """The schema of every field read from a checkpoint (FIELDS, CONFIG_FIELDS); one line per mistake."""
    def bad(name, what, value):
        raise TrainError(f"{path} is not a valid resdsl checkpoint: '{name}' must be {what}, "
                         f"not {type(value).__name__} {clip_repr(value)}")

    for name, (what, ok) in FIELDS.items():
        if name in ck and not ok(ck[name]):
            bad(name, what, ck[name])
    for name, (what, ok) in CONFIG_FIELDS.items():
        if isinstance(ck.get("config"), dict) and name in ck["config"] and not ok(ck["config"][name]):
            bad(f"config.{name}", what, ck["config"][name])
    mean, std = ck.get("mean"), ck.get("std")
    if (mean is None) != (std is None) or (mean is not None and len(mean) != len(std)):
        raise TrainError(f"{path} is not a valid resdsl checkpoint: 'mean' and 'std' must both be given, "
                         "with one value per input channel each")


def clip_repr(value) -> str:
    text = repr(value) if not isinstance(value, torch.Tensor) else f"tensor{tuple(value.shape)}"
    return text if len(text) <= 60 else text[:57] + "..."


def load_weights(model: nn.Module, state: dict, source: str) -> None:
    """Load a state dict, turning a mismatch into one clear line."""
    try:
        unwrap(model).load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise TrainError(f"checkpoint {source} does not fit this model: {' '.join(first[:3])[:400]}") from None
