"""What every analysis shares: a trained run loaded through the train package, test batches, figures."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..atomic import write_atomic
from ..errors import SpecError

FIGURE_FORMATS = (".png", ".svg")


@dataclass
class Trained:
    """A compiled network with a run's weights, in eval mode, and its graph and normalised test data."""

    model: nn.Module
    graph: object
    x: torch.Tensor
    y: torch.Tensor
    source: str


def load_run(checkpoint: str, limit: int, data: str | None = None) -> Trained:
    """A run directory (best.pt) or checkpoint file, through resdsl.train's own loader and format."""
    from ..train.restore import load_run as load_trained, run_data, run_program

    path = Path(checkpoint).expanduser()
    path = path / "best.pt" if path.is_dir() else path
    model, ck = load_trained(path)
    x, y = test_data(data or run_data((ck.get("config") or {}).get("data"), path), model, limit, ck.get("mean"), ck.get("std"))
    return Trained(model.eval(), graph_of_run(run_program(path.parent, ck), ck), x, y, str(path))


def graph_of_run(program, ck: dict):
    """The annotated graph of a run's spec (the Program load_run compiled), with the run's parameters."""
    from .. import api

    cfg = ck.get("config") or {}
    params = {**(cfg.get("params") or {}), **(ck["grow"].get("args", {}) if isinstance(ck.get("grow"), dict) else {})}
    sets = {k: str(v) for k, v in params.items()}        # as written (a --grow run: its level's depth)
    return api.graph(program, cfg.get("network"), **sets)


def test_data(spec: str, model: nn.Module, limit: int, mean=None, std=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `limit` test images of a dataset, normalised with the training set's statistics."""
    from ..train.data import channel_stats, check_compatible, load_data

    data = load_data(spec)
    check_compatible(data, tuple(model.input_shape), model.num_classes)
    if not data.in_memory:
        raise SpecError(f"analysis needs an in-memory dataset; {spec} is an image folder")
    if not mean or len(mean) != data.input_shape[0]:
        mean, std = channel_stats(data.train_x)
    x = data.test_x[:limit].float() / 255
    m, s = (torch.tensor(v).view(1, -1, 1, 1) for v in (mean, std))
    return (x - m) / s, data.test_y[:limit]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Top-1 accuracy of `model` (in eval mode) on the tensors x, y."""
    return accuracy_and_loss(model, x, y, batch)[0]


@torch.no_grad()
def accuracy_and_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of `model` (in eval mode) on the tensors x, y."""
    correct, total_loss = 0, 0.0
    for i in range(0, len(x), batch):
        out = model(x[i:i + batch])
        correct += (out.argmax(1) == y[i:i + batch]).sum().item()
        total_loss += torch.nn.functional.cross_entropy(out, y[i:i + batch], reduction="sum").item()
    return correct / max(1, len(x)), total_loss / max(1, len(x))


def check_figure_path(path: str | None) -> None:
    """`-o` must name a .png or .svg file in an existing folder (checked before any work is done)."""
    if path is None:
        return
    p = Path(path)
    if p.suffix.lower() not in FIGURE_FORMATS:
        raise SpecError(f"-o {path}: the figure must end in .png or .svg")
    if not p.parent.expanduser().is_dir():
        raise SpecError(f"-o {path}: no folder {p.parent}")


def save_figure(fig, path: str) -> None:
    """Write a matplotlib figure atomically, the format chosen by the suffix."""
    import matplotlib.pyplot as plt

    fmt = Path(path).suffix.lower().lstrip(".")
    write_atomic(Path(path).expanduser(), lambda tmp: fig.savefig(tmp, format=fmt, dpi=110))
    plt.close(fig)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def block_module(model: nn.Module, name: str) -> nn.Module:
    """The compiled module of graph block `name` (`stages.{i}.blocks.{j}`)."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise SpecError(f"the compiled network has no module {name}") from None


def branch_modules(block: nn.Module) -> list[nn.Module]:
    """A block's residual branches: `residual`, or each of `residuals.k`."""
    if getattr(block, "residual", None) is not None:
        return [block.residual]
    return list(getattr(block, "residuals", None) or [])


@torch.no_grad()
def calibrate_bn(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set every batch norm's running statistics to those of the batch x (one forward pass in
    training mode, cumulative averages), then return the model in eval mode: an untrained net
    as it computes at its first training step, not with BN's initial identity statistics."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    model(x)
    for m in bns:
        m.momentum = 0.1
    return model.eval()
