"""Forward+backward time of compiled specs against the hand-written model of the same architecture.

Pairs: torchvision resnet18 and resnet50 (batch 8, 3×112×112) and a hand-written CIFAR ResNet-20
(batch 64, 3×32×32), each against resdsl's compile of the same spec with the same weights.
Measured in one process, interleaved (A B, then B A, ...). Prints the ratio
reference_time / resdsl_time of the fastest round (robust to other jobs on a shared machine) and
of the median round: 1.0 means no overhead, the target is ≥ 0.98. A control row times the
reference against a copy of itself: its distance from 1.0 is the noise of this machine.

    python benchmarks/bench_forward.py [--rounds 15] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import resdsl

SPECS = Path(__file__).resolve().parents[1] / "specs"


class BasicBlock(nn.Module):
    """He et al. §4.2 basic block with option A shortcut (subsample, zero-pad channels at the end)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.extra = stride, c_out - c_in

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        sc = x
        if self.stride > 1 or self.extra:
            sc = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))
        return F.relu(out + sc, inplace=True)


class CifarResNet(nn.Module):
    """The usual hand-written CIFAR ResNet-6n+2."""

    def __init__(self, n: int = 3, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, c = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for j in range(n):
                layers.append(BasicBlock(c, width, stride if j == 0 else 1))
                c = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x)), inplace=True))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def step_time(model: nn.Module, x: torch.Tensor) -> float:
    t = time.perf_counter()
    model(x).sum().backward()
    return time.perf_counter() - t


def compare(name: str, ref: nn.Module, ours: nn.Module, x: torch.Tensor, rounds: int) -> float:
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in ours.parameters())
    ref.train(), ours.train()
    for _ in range(2):                               # warm-up: allocator, oneDNN primitives
        step_time(ref, x), step_time(ours, x)
    t_ref, t_ours = [], []
    for r in range(rounds):
        pair = [(ref, t_ref), (ours, t_ours)]
        for model, times in (pair if r % 2 == 0 else pair[::-1]):
            model.zero_grad(set_to_none=True)
            times.append(step_time(model, x))
    a, b = min(t_ref), min(t_ours)
    ma, mb = statistics.median(t_ref), statistics.median(t_ours)
    print(f"{name:<34} {tuple(x.shape)!s:<17} reference {a * 1e3:7.1f} ms  resdsl {b * 1e3:7.1f} ms  "
          f"ratio {a / b:.3f}  (median {ma * 1e3:7.1f} / {mb * 1e3:7.1f} ms = {ma / mb:.3f})")
    return a / b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.rounds} interleaved rounds, "
          "forward+backward (train mode); times are the fastest round")
    ratios = []
    for depth in (18, 50):
        ref = getattr(torchvision.models, f"resnet{depth}")()
        ours = resdsl.compile(SPECS / "resnet.res", depth=depth)
        resdsl.transfer_weights(ref, ours)
        ratios.append(compare(f"resnet{depth} vs torchvision", ref, ours, torch.randn(8, 3, 112, 112), args.rounds))
    ref, ours = CifarResNet(3), resdsl.compile(SPECS / "cifar_resnet.res", n=3)
    ours.load_state_dict(dict(zip(ours.state_dict(), ref.state_dict().values())))
    ratios.append(compare("cifar ResNet-20 vs hand-written", ref, ours, torch.randn(64, 3, 32, 32), args.rounds))
    twin = CifarResNet(3)
    twin.load_state_dict(ref.state_dict())
    compare("control: hand-written vs its copy", ref, twin, torch.randn(64, 3, 32, 32), args.rounds)
    print(f"geometric mean ratio (resdsl rows) {statistics.geometric_mean(ratios):.3f}")


if __name__ == "__main__":
    main()
