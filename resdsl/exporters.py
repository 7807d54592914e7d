"""export(model_or_spec, path): the format is chosen by the file's extension (EXPORTERS).

    .pt2          torch.export program, dynamic batch; load with torch.export.load(path).module()
    .onnx         ONNX (torch.onnx.export), dynamic batch; checked with onnx.checker and run in
                  onnxruntime, whose outputs must equal torch's before the file is written
    .safetensors  the weights (state_dict) only
    .py           standalone, readable PyTorch source (no resdsl import): build() returns the network

A trained model (from a run or checkpoint, `checkpoint=`) is exported with the training set's
input normalisation inside: the exported program takes raw pixel values (0..255, float) as the
training pipeline read them, so the file is a complete model.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import limits
from .atomic import write_atomic
from .errors import SpecError

class Normalized(nn.Module):
    """y = model((x − 255·mean) / (255·std)): a trained network with its input normalisation
    (on a C×L sequence, trained on float data, y = model((x − mean) / std))."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        c, rank = len(mean), len(getattr(model, "input_shape", (0, 0, 0))) - 1
        shape, scale = (1, c) + (1,) * rank, (1 if rank == 1 else 255)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape) * scale)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape) * scale)
        for attr in ("spec_name", "input_shape", "num_classes"):
            setattr(self, attr, getattr(model, attr, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def _example(model: nn.Module, batch_size: int) -> torch.Tensor:
    if batch_size < 1:
        raise SpecError(f"--batch-size must be 1 or more, got {batch_size}")
    limits.EXAMPLE_BATCH.check(batch_size)
    return torch.randn(max(batch_size, 2), *model.input_shape)   # batch 1 would specialise the program


def write_pt2(model: nn.Module, path: Path, batch_size: int) -> None:
    example = _example(model, batch_size)
    batch = torch.export.Dim("batch", min=1, max=limits.EXAMPLE_BATCH.value)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    write_atomic(path, lambda tmp: torch.export.save(program, tmp))


def write_onnx(model: nn.Module, path: Path, batch_size: int) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort

    example = _example(model, batch_size)

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), tmp, dynamo=False, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
        onnx.checker.check_model(onnx.load(tmp), full_check=True)
        session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        for n in (1, 3):                                     # two batch sizes: the batch is dynamic
            x = torch.randn(n, *model.input_shape)
            got = session.run(None, {"input": x.numpy()})[0]
            with torch.no_grad():
                want = model(x).numpy()
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-4):
                raise SpecError(f"ONNX export of {getattr(model, 'spec_name', 'the model')} disagrees with torch "
                                f"(max |diff| {float(np.abs(got - want).max()):.3g} at batch {n}); not written")

    write_atomic(path, write)


def write_safetensors(model: nn.Module, path: Path, batch_size: int) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"spec_name": str(getattr(model, "spec_name", "")), "input_shape": "x".join(map(str, model.input_shape))}
    write_atomic(path, lambda tmp: save_file(state, tmp, metadata=meta))


def write_python(model: nn.Module, path: Path, batch_size: int) -> None:
    """The network as PyTorch source. A trained model (Normalized: weights and input normalisation)
    is written as source plus its weights beside it, PATH.safetensors (the same keys `compile
    --checkpoint -o X.safetensors` writes), which the source's build() loads: the .py then computes
    exactly what the run's model computes, from raw input."""
    from .backend.emit import emit_source

    if not isinstance(model, Normalized):
        source = emit_source(model)
        write_atomic(path, lambda tmp: Path(tmp).write_text(source, encoding="utf-8"))
        return
    weights = path.with_suffix(".safetensors")
    check_target(weights)
    source, footer = emit_source(model.model), _trained_footer(model, weights.name)
    # the untrained build() is replaced; were emit's footer ever reworded, the later def still wins
    source = source.replace(_EMIT_FOOTER, footer) if _EMIT_FOOTER in source else source + "\n\n" + footer + "\n"
    write_safetensors(model, weights, batch_size)
    write_atomic(path, lambda tmp: Path(tmp).write_text(source, encoding="utf-8"))


_EMIT_FOOTER = '''def build() -> Network:
    """The network, with PyTorch's default initialisation (load a state_dict for trained weights)."""
    return Network()'''


def _trained_footer(model: "Normalized", weights: str) -> str:
    """Normalized (as exporters.Normalized) and a build() that loads the trained weights."""
    rank = len(model.input_shape) - 1
    scale = "1" if rank == 1 else "255"
    return f'''class Normalized(nn.Module):
    """The trained network with its input normalisation: y = model((x - mean) / std), x raw input
    ({"sequence values" if rank == 1 else "pixels 0..255"}); mean and std are the training set's, times {scale}."""

    def __init__(self):
        super().__init__()
        self.model = Network()
        self.register_buffer("mean", torch.zeros((1, {len(model.mean.flatten())}) + (1,) * {rank}))
        self.register_buffer("std", torch.ones((1, {len(model.std.flatten())}) + (1,) * {rank}))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


WEIGHTS = {weights!r}   # trained weights and normalisation, written beside this file


def build(weights: str | None = None) -> Normalized:
    """The trained network: its weights and normalisation from WEIGHTS (beside this file) or `weights`."""
    import os

    from safetensors.torch import load_file

    model = Normalized()
    path = weights or os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS)
    model.load_state_dict(load_file(path))
    return model.eval()'''


EXPORTERS: dict[str, Callable[[nn.Module, Path, int], None]] = {
    ".pt2": write_pt2,
    ".onnx": write_onnx,
    ".safetensors": write_safetensors,
    ".py": write_python,
}


def check_target(path: str | Path) -> Path:
    """The output path, checked before any work: a known extension, an existing folder, no symlink."""
    out = Path(path)
    if out.suffix not in EXPORTERS:
        raise SpecError(f"cannot export to '{out.name}': unknown extension '{out.suffix}'").with_note(
            "choose the format by extension: " + ", ".join(EXPORTERS))
    if not out.parent.is_dir():
        raise SpecError(f"cannot write '{path}': folder '{out.parent}' does not exist")
    if out.is_symlink():
        raise SpecError(f"refusing to write '{path}': it is a symbolic link").with_note(
            "name the real file, or remove the link first")
    return out


def _free_space_check(out: Path) -> None:
    if shutil.disk_usage(out.parent).free < 1 << 20:
        raise SpecError(f"cannot write '{out}': the disk is full")


def export(model_or_spec: Any, path: str | Path, *, batch_size: int = 2, checkpoint: str | Path | None = None,
           network: str | None = None, force: bool = False, fused: bool = False, **args: Any) -> nn.Module:
    """Write a model (an nn.Module, a spec path/text, or with `checkpoint=` a trained run) to
    `path`, in the format its extension names; `fused=True` exports the inference form
    (resdsl.fuse: BN folded, linear branches merged). Returns the exported module (eval mode)."""
    out = check_target(path)
    model = _model(model_or_spec, checkpoint, network, force, args).eval()
    if fused:
        model = _fused(model)
    _free_space_check(out)
    try:
        EXPORTERS[out.suffix](model, out, batch_size)
    except OSError as e:
        raise SpecError(f"cannot write '{out}': {e.strerror or e}") from None
    return model


def _fused(model: nn.Module) -> nn.Module:
    from .backend.fuse import fuse

    if isinstance(model, Normalized):
        model.model = fuse(model.model)
        return model
    return fuse(model)


def _model(model_or_spec, checkpoint, network, force, args) -> nn.Module:
    from .api import load_model
    from .train.restore import load_run

    if checkpoint is not None:
        spec = None if model_or_spec is None or isinstance(model_or_spec, nn.Module) else model_or_spec
        model, ck = load_run(checkpoint, spec, network, args or None)
        mean, std = ck.get("mean"), ck.get("std")
        if mean and std and len(mean) == model.input_shape[0]:
            return Normalized(model, mean, std)
        return model
    if isinstance(model_or_spec, nn.Module):
        return model_or_spec
    return load_model(model_or_spec, network, args, force=force)[0]


__all__ = ["export", "EXPORTERS", "Normalized", "check_target"]
