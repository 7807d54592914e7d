"""Forward+backward of resdsl's compiled transformers against torchvision's own modules, and the
front end (parse → lower → graph → shapes) of vit_h_14.

    python benchmarks/bench_transformers.py [--models vit_b_16 swin_t maxvit_t] [--rounds 5] [--batch 2]

Both models of a pair live in one process, get the same weights (transfer_weights) and the same
input; their steps are interleaved round by round (order reversed every other round), and the
ratio is torchvision's median time over resdsl's (≥ 1: resdsl is as fast or faster). CPU only.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

import resdsl
from resdsl.backend.transfer import transfer_weights


def step(model, x) -> float:
    t = time.perf_counter()
    model(x).sum().backward()
    elapsed = time.perf_counter() - t
    model.zero_grad(set_to_none=True)
    return elapsed


def pair(name: str, rounds: int, batch: int) -> dict:
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)().train()
    mine = resdsl.compile(name).train()
    transfer_weights(ref, mine, tuple(mine.input_shape))
    x = torch.randn(batch, *mine.input_shape)
    step(ref, x), step(mine, x)                       # warm-up
    times = {"torchvision": [], "resdsl": []}
    for r in range(rounds):
        order = [("torchvision", ref), ("resdsl", mine)][:: 1 if r % 2 == 0 else -1]
        for key, m in order:
            times[key].append(step(m, x))
    tv, rd = statistics.median(times["torchvision"]), statistics.median(times["resdsl"])
    return {"model": name, "torchvision_s": tv, "resdsl_s": rd, "ratio": tv / rd}


def front_end(name: str = "vit_h_14", repeats: int = 5) -> float:
    resdsl.graph(name)                                 # imports and the zoo index, once
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        resdsl.graph(name)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="*", default=["vit_b_16", "swin_t", "maxvit_t"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, CPU")
    print(f"front end vit_h_14 (graph with shapes, best of 5): {front_end():.3f} s")
    for name in args.models:
        r = pair(name, args.rounds, args.batch)
        print(f"{r['model']:10s} torchvision {r['torchvision_s']:.3f} s  resdsl {r['resdsl_s']:.3f} s  "
              f"ratio {r['ratio']:.3f}", flush=True)


if __name__ == "__main__":
    main()
