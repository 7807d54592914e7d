"""Training throughput (images/s): resdsl's loop against plain hand-written PyTorch loops, same process.

Each model is trained by three loops, interleaved round by round so machine load hits all alike:
  resdsl        resdsl.train's Trainer.run_epoch (on-device crop+flip, normalise, step, logging)
  plain-loader  the usual hand-written loop: DataLoader(workers) + torchvision per-image transforms
  plain-tensor  the leanest loop: pre-normalised tensor in memory, slices, no augmentation at all
All start from the same weights, use SGD (momentum 0.9, wd 5e-4), batch 128, fp32, on the CPU.
Usage: python benchmarks/bench_train_throughput.py [--rounds 3] [--steps 8] [--models resnet20 tv_resnet18]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import resdsl
from resdsl.train import TrainConfig, load_data
from resdsl.train.distributed import Place
from resdsl.train.loop import Trainer
from resdsl.train.progress import Reporter

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cifar10_subset.npz"
BATCH = 128


def make_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "resnet20":
        return resdsl.compile(ROOT / "specs" / "cifar_resnet.res", n=3)
    import torchvision

    return torchvision.models.resnet18(num_classes=10)  # torchvision's own model, on 32x32 images


def resdsl_loop(model, data, steps: int) -> float:
    cfg = TrainConfig(batch_size=BATCH, lr=0.05, epochs=100, sched="none", log_interval=10)
    tr = Trainer(model, data, cfg, Place(0, 1, torch.device("cpu")), Reporter(quiet=True))
    tr.stop_after_steps = 2
    tr.run_epoch(None)  # warm-up
    tr.pos.step_in_epoch, tr.pos.global_step, tr.stop_after_steps = 0, 0, steps
    t0 = time.perf_counter()
    tr.run_epoch(None)
    return steps * BATCH / (time.perf_counter() - t0)


def _sgd_step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def plain_loader_loop(model, data, steps: int, workers: int = 2) -> float:
    from torchvision import transforms as T

    mean = data.train_x.float().div(255).mean((0, 2, 3)).tolist()
    std = data.train_x.float().div(255).std((0, 2, 3)).tolist()
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    images = data.train_x.permute(0, 2, 3, 1).numpy()

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            from PIL import Image

            return tf(Image.fromarray(images[i])), int(data.train_y[i])

    loader = torch.utils.data.DataLoader(DS(), batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    it = iter(loader)
    for _ in range(2):  # warm-up (workers started)
        _sgd_step(model, opt, *next(it))
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = _sgd_step(model, opt, *next(it))
    loss.item()
    return steps * BATCH / (time.perf_counter() - t0)


def plain_tensor_loop(model, data, steps: int) -> float:
    x = data.train_x.float().div(255)
    x = (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)
    y = data.train_y
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    perm = torch.randperm(len(x))
    for i in range(2):
        _sgd_step(model, opt, x[perm[i * BATCH:(i + 1) * BATCH]], y[perm[i * BATCH:(i + 1) * BATCH]])
    t0 = time.perf_counter()
    for i in range(2, 2 + steps):
        idx = perm[i * BATCH:(i + 1) * BATCH]
        loss = _sgd_step(model, opt, x[idx], y[idx])
    loss.item()
    return steps * BATCH / (time.perf_counter() - t0)


LOOPS = {"resdsl": resdsl_loop, "plain-loader": plain_loader_loop, "plain-tensor": plain_tensor_loop}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--models", nargs="+", default=["resnet20", "tv_resnet18"])
    args = ap.parse_args()
    data = load_data(f"npz:{DATA}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, {args.steps} timed steps")
    for name in args.models:
        base = make_model(name)
        ips = {k: [] for k in LOOPS}
        for r in range(args.rounds):
            order = list(LOOPS) if r % 2 == 0 else list(reversed(LOOPS))
            for k in order:
                ips[k].append(LOOPS[k](copy.deepcopy(base), data, args.steps))
        med = {k: statistics.median(v) for k, v in ips.items()}
        for k, v in ips.items():
            print(f"{name:12s} {k:13s} median {med[k]:7.1f} img/s   rounds {' '.join(f'{x:.1f}' for x in v)}")
        print(f"{name:12s} ratio resdsl/plain-loader {med['resdsl'] / med['plain-loader']:.2f}"
              f"   resdsl/plain-tensor {med['resdsl'] / med['plain-tensor']:.2f}", flush=True)


if __name__ == "__main__":
    main()
