"""`train --init FILE`: start from weights in a state dict or safetensors file (torchvision, timm,
or a resdsl run), matched by name where the names agree, else module by module in order (the
order transfer_weights uses); a report says what was copied, what had another shape, what is missing."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from resdsl.backend.transfer import leaves_of_module, leaves_of_state, match_in_order, tensor_pairs
from resdsl.train.checkpoint import safe_load, unwrap
from resdsl.train.errors import TrainError


@dataclass
class InitReport:
    copied: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)   # (dst key, dst shape, src shape)
    missing: list[str] = field(default_factory=list)
    unused: int = 0
    by: str = "name"

    def __str__(self) -> str:
        lines = [f"--init: copied {len(self.copied)} tensors (matched by {self.by}), "
                 f"{len(self.mismatched)} shape-mismatched, {len(self.missing)} missing, {self.unused} unused in the file"]
        lines += [f"  shape mismatch {k}: model {list(a)}, file {list(b)}" for k, a, b in self.mismatched[:10]]
        if self.missing:
            lines.append(f"  missing (kept at init): {', '.join(self.missing[:10])}" + (" ..." if len(self.missing) > 10 else ""))
        return "\n".join(lines)


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a .pt/.pth/.bin file read with weights_only=True
    (a resdsl checkpoint's 'model', a 'state_dict' entry, or the dict itself)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TrainError(f"--init {path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise TrainError(f"--init {path}: not a readable safetensors file ({str(e)[:200]})") from None
    else:
        state = safe_load(path, what="weights")
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TrainError(f"--init {path}: not a state dict (expected names mapped to tensors)")
    return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state.items()}


def init_from_state(model: nn.Module, state: dict[str, torch.Tensor]) -> InitReport:
    """Copy what fits: by name when most names agree, else module by module in registration order."""
    model = unwrap(model)
    own = model.state_dict()
    report = InitReport()
    state = _strip_prefix(state, own)
    if sum(k in state for k in own) * 2 >= len(own):
        pairs = [(k, k) for k in own if k in state]
        report.missing = [k for k in own if k not in state]
    else:
        pairs, report.missing, report.by = _by_order(model, state), [], "order"
        report.missing = [k for k in own if k not in {d for d, _ in pairs}]
    used = set()
    with torch.no_grad():
        for dst, src in pairs:
            used.add(src)
            if own[dst].shape == state[src].shape:
                own[dst].copy_(state[src].to(own[dst].dtype))
                report.copied.append(dst)
            else:
                report.mismatched.append((dst, tuple(own[dst].shape), tuple(state[src].shape)))
    report.unused = len(set(state) - used)
    return report


def _strip_prefix(state: dict[str, torch.Tensor], own) -> dict[str, torch.Tensor]:
    """The file's names without a common leading prefix (`backbone.`, `model.`) when that makes them match."""
    first = next(iter(state))
    parts = first.split(".")
    best, hits = "", sum(k in state for k in own)
    for i in range(1, len(parts)):
        prefix = ".".join(parts[:i]) + "."
        n = sum(prefix + k in state for k in own)
        if n > hits:
            best, hits = prefix, n
    return {k.removeprefix(best): v for k, v in state.items()} if best else state


def _by_order(model: nn.Module, state: dict[str, torch.Tensor]) -> list[tuple[str, str]]:
    """(model key, file key) pairs: the file's modules (key prefixes, in file order) against the
    model's weighted modules in registration order, by transfer_weights' one order matcher
    (`match_in_order`, `tensor_pairs`: a file's tensors pair by their short names). Only a pickled
    state dict keeps its order; safetensors files sort their names, so there only name matches
    (after a common prefix) are trusted."""
    pairs = []
    for f, m in match_in_order(leaves_of_state(state), leaves_of_module(model)):
        for fn, _, mn, _ in tensor_pairs(f, m):
            pairs.append((f"{m.name}.{mn}" if m.name else mn, f"{f.name}.{fn}" if f.name else fn))
    return pairs


def init_from_file(model: nn.Module, path: str | Path) -> InitReport:
    if str(path).startswith(("torchvision:", "timm:")):   # pretrained weights through their library's loader
        from resdsl.backend.finetune import load_pretrained
        from resdsl.errors import SpecError

        try:
            return load_pretrained(unwrap(model), str(path))
        except SpecError as e:
            raise TrainError(f"--init {path}: {e.message}") from None
    report = init_from_state(model, read_state(path))
    if not report.copied:
        raise TrainError(f"--init {path}: no tensor of the file fits this model\n{report}")
    return report
