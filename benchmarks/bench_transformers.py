"""Forward+backward of resdsl's compiled transformers against torchvision's own modules, and the
front end (parse → lower → graph → shapes) of vit_h_14.

    python benchmarks/bench_transformers.py [--models vit_b_16 swin_t maxvit_t] [--rounds 5] [--batch 2] [--threads N]

Both models of a pair live in one process, get the same weights (transfer_weights) and the same
input; their steps are interleaved round by round (order reversed every other round), and the
ratio is torchvision's median time over resdsl's (≥ 1: resdsl is as fast or faster). CPU only.
Besides wall time, each step's process CPU time is recorded: on a machine shared with other jobs,
with `--threads 1`, it is far steadier than wall time (a preempted step does not count the wait).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torchvision

import resdsl
from resdsl.backend.transfer import transfer_weights


def step(model, x) -> tuple[float, float]:
    """(wall, process CPU) seconds of one forward+backward."""
    t, c = time.perf_counter(), time.process_time()
    model(x).sum().backward()
    elapsed = time.perf_counter() - t, time.process_time() - c
    model.zero_grad(set_to_none=True)
    return elapsed


def pair(name: str, rounds: int, batch: int) -> dict:
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)().train()
    mine = resdsl.compile(name).train()
    transfer_weights(ref, mine, tuple(mine.input_shape))
    x = torch.randn(batch, *mine.input_shape)
    step(ref, x), step(mine, x)                       # warm-up
    wall = {"torchvision": [], "resdsl": []}
    cpu = {"torchvision": [], "resdsl": []}
    for r in range(rounds):
        order = [("torchvision", ref), ("resdsl", mine)][:: 1 if r % 2 == 0 else -1]
        for key, m in order:
            w, c = step(m, x)
            wall[key].append(w)
            cpu[key].append(c)
    tv, rd = statistics.median(wall["torchvision"]), statistics.median(wall["resdsl"])
    tv_cpu, rd_cpu = statistics.median(cpu["torchvision"]), statistics.median(cpu["resdsl"])
    return {"model": name, "torchvision_s": tv, "resdsl_s": rd, "ratio": tv / rd,
            "best_ratio": min(wall["torchvision"]) / min(wall["resdsl"]),
            "torchvision_cpu_s": tv_cpu, "resdsl_cpu_s": rd_cpu, "cpu_ratio": tv_cpu / rd_cpu}


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
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, CPU, "
          f"{args.rounds} rounds, load average {load}")
    print(f"front end vit_h_14 (graph with shapes, best of 5): {front_end():.3f} s")
    for name in args.models:
        r = pair(name, args.rounds, args.batch)
        print(f"{r['model']:10s} torchvision {r['torchvision_s']:.3f} s  resdsl {r['resdsl_s']:.3f} s  "
              f"ratio {r['ratio']:.3f} (best {r['best_ratio']:.3f}) | CPU time: torchvision "
              f"{r['torchvision_cpu_s']:.3f} s  resdsl {r['resdsl_cpu_s']:.3f} s  ratio {r['cpu_ratio']:.3f}", flush=True)


if __name__ == "__main__":
    main()
