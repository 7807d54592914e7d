"""Inference time of `resdsl.fuse`d models against torchvision's and timm's eval models.

Rows (1 thread, eval, no_grad, 3×224×224, batch 1 and 16, same weights everywhere):
  ResNet-50   torchvision resnet50 eager eval  vs  resdsl.fuse(resnet.res) (BN folded, channels_last)
  ResNet-50   the same, fused with memory_format=None (NCHW kept: folding alone)
  RepVGG-A0   resdsl repvgg_a0 in training form (eval)  vs  resdsl.fuse of it
  RepVGG-A0   timm repvgg_a0 after timm.utils.reparameterize_model  vs  resdsl.fuse
  control     torchvision resnet50 against a copy of itself (its distance from 1.0 is the noise)
Interleaved in one process (A B, then B A, ...). Prints reference_time / fused_time of the median
round and of the fastest round, by this thread's CPU time (robust to other jobs on a shared
machine) and by the wall clock, and the largest relative output difference. Targets: ResNet-50 ≥ 1.15, RepVGG-A0 ≥ 1.3 (training form) and
≥ 1.0 (timm reparameterised).

    python benchmarks/bench_fuse.py [--rounds 7] [--batches 1 16]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
import torchvision

import resdsl

SPECS = Path(__file__).resolve().parents[1] / "specs"


def randomise_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Trained-looking BN statistics, so that folding is not a no-op."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


def timed(model, x) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread): with one thread, torch computes in the caller's
    thread, so its CPU time is the work done, much less disturbed by other jobs than the wall clock."""
    t, c = time.perf_counter(), time.thread_time()
    model(x)
    return time.perf_counter() - t, time.thread_time() - c


def compare(name: str, ref, ours, x: torch.Tensor, rounds: int) -> None:
    with torch.no_grad():
        a, b = ref(x), ours(x)
        rel = ((a - b).abs().max() / a.abs().max()).item()
        for _ in range(1):                                  # warm-up: allocator, oneDNN primitives
            timed(ref, x), timed(ours, x)
        t_ref, t_ours = [], []
        for r in range(rounds):
            pair = ((ref, t_ref), (ours, t_ours)) if r % 2 == 0 else ((ours, t_ours), (ref, t_ref))
            for m, ts in pair:
                ts.append(timed(m, x))
    med = lambda ts, i: statistics.median(t[i] for t in ts)           # noqa: E731
    cpu, wall = med(t_ref, 1) / med(t_ours, 1), med(t_ref, 0) / med(t_ours, 0)
    best = min(t[1] for t in t_ref) / min(t[1] for t in t_ours)
    print(f"{name:50s} batch {x.shape[0]:2d}  CPU median {cpu:5.2f}×  best {best:5.2f}×  wall median {wall:5.2f}×  "
          f"({med(t_ours, 1) * 1e3:6.1f} vs {med(t_ref, 1) * 1e3:6.1f} ms CPU)  rel diff {rel:.1e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--only", choices=["resnet50", "repvgg"], default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = []
    if args.only in (None, "resnet50"):
        tv = randomise_bn(torchvision.models.resnet50())
        ours = resdsl.compile(SPECS / "resnet.res")
        resdsl.transfer_weights(tv, ours)
        rows += [("ResNet-50: torchvision eval / fused", tv, resdsl.fuse(ours)),
                 ("ResNet-50: torchvision eval / fused, NCHW kept", tv, resdsl.fuse(ours, memory_format=None)),
                 ("control: torchvision / torchvision", tv, copy.deepcopy(tv))]
    if args.only in (None, "repvgg"):
        import timm
        from timm.utils import reparameterize_model

        ref = randomise_bn(timm.create_model("repvgg_a0"))
        a0 = resdsl.compile(SPECS / "repvgg.res", "repvgg_a0")
        resdsl.transfer_weights(ref, a0)
        a0.eval()
        fused = resdsl.fuse(a0)
        rows += [("RepVGG-A0: training form / fused", a0, fused),
                 ("RepVGG-A0: timm reparameterized / fused", reparameterize_model(ref), fused)]
    print(f"torch {torch.__version__}, 1 thread, eval, no_grad, 3×224×224, {args.rounds} rounds")
    for batch in args.batches:
        x = torch.randn(batch, 3, 224, 224)
        for name, ref, ours in rows:
            compare(name, ref, ours, x, args.rounds)


if __name__ == "__main__":
    main()
