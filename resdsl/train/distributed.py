"""torchrun support: process group (NCCL on GPUs, gloo on CPUs), rank-0 helpers, reductions."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from resdsl.train.errors import TrainError


@dataclass(frozen=True)
class Place:
    """Where this process trains: its rank among `world` processes and its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


DEVICE_KINDS = ("cpu", "cuda", "mps", "xpu")   # devices that hold real tensors (not meta, not lazy)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainError(f"--device {name}: no CUDA device is available")
        return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_KINDS:
        raise TrainError(f"unknown --device {name[:40]!r}; expected auto, cpu, cuda or cuda:N") from None
    if device.type != "cpu" and not getattr(torch, device.type).is_available():
        raise TrainError(f"--device {name}: no {device.type} device is available")
    return device


def setup(device_name: str) -> Place:
    """One process, or one of WORLD_SIZE under torchrun (env RANK, WORLD_SIZE, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Place(0, 1, resolve_device(device_name))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Place(rank, world, device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj, place: Place):
    """Rank 0's value of `obj` on every rank."""
    if place.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(t: torch.Tensor, place: Place) -> torch.Tensor:
    if place.world > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def any_rank(flag: bool, place: Place) -> bool:
    """True when `flag` is true on any rank (so all ranks stop at the same step)."""
    if place.world == 1:
        return flag
    t = torch.tensor([float(flag)], device=place.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def sync_buffers(model: torch.nn.Module, place: Place) -> None:
    """Give every rank rank 0's batch-norm running statistics."""
    if place.world > 1:
        for b in model.buffers():
            dist.broadcast(b, src=0)
