"""`resdsl profile` speed: static profiling of ResNet-152, and compiled zoo vs torchvision throughput.

1. Static: spec -> graph (parse, lower, build, infer_shapes) and the profile document at every
   level, for ResNet-152; median of --static-repeats runs, torch never imported (checked).
2. Measured: forward and forward+backward throughput of resdsl's compiled resnet18/50 against
   torchvision's, same weights layout, timed interleaved (A, B, A, B, ...) by resdsl.cost.measure.
Usage: python benchmarks/bench_profile.py [--batch-size 8] [--size 112] [--repeats 7] [--threads 1]
                                          [--models resnet18 resnet50]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESNET = ROOT / "specs" / "resnet.res"


def static(repeats: int) -> None:
    import resdsl
    from resdsl.cost.static import profile

    graph_t, prof_t = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        net = resdsl.load_spec(RESNET, depth=152)
        g = resdsl.graph_of(net)
        t1 = time.perf_counter()
        docs = [profile(net, g, level, 32) for level in ("network", "stage", "block", "layer")]
        prof_t.append(time.perf_counter() - t1)
        graph_t.append(t1 - t0)
    assert "torch" not in sys.modules, "static profiling imported torch"
    print(f"static ResNet-152 ({len(g)} ops, {docs[-1]['totals']['macs'] / 1e9:.3f} GMACs), "
          f"graph (parse .. infer_shapes) + profile at 4 levels:")
    print(f"  first run (grammar and prelude loaded): {graph_t[0] * 1e3:.0f} + {prof_t[0] * 1e3:.0f} ms")
    g_ms, p_ms = statistics.median(graph_t[1:]) * 1e3, statistics.median(prof_t[1:]) * 1e3
    print(f"  later runs, median of {repeats - 1}: {g_ms:.0f} + {p_ms:.0f} = {g_ms + p_ms:.0f} ms")


def measured(models: list[str], batch_size: int, size: int, repeats: int, warmup: int) -> None:
    import torch
    import torchvision

    import resdsl
    from resdsl.cost.measure import Settings, measure

    depth = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101}
    s = Settings("cpu", batch_size, "fp32", False, False, repeats, warmup)
    print(f"measured on cpu, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"batch {batch_size} at {size}×{size}, fp32, median of {repeats} after {warmup} warm-up")
    print("| model | resdsl fwd /s | torchvision fwd /s | ratio | resdsl fwd+bwd /s | torchvision fwd+bwd /s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in models:
        torch.manual_seed(0)
        ours = resdsl.compile(RESNET, depth=depth[name])
        ref = getattr(torchvision.models, name)()
        a, b = measure([ours, ref], [(3, size, size)] * 2, s)
        cells = []
        for mode in ("forward", "forward_backward"):
            ta, tb = a[mode]["throughput"], b[mode]["throughput"]
            cells += [f"{ta:.1f}", f"{tb:.1f}", f"{ta / tb:.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--static-repeats", type=int, default=6)
    p.add_argument("--models", nargs="*", default=["resnet18", "resnet50"])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (on a shared 2-core machine, 2 threads stall behind other jobs)")
    a = p.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, python {platform.python_version()}")
    static(a.static_repeats)
    if a.models:
        import torch

        torch.set_num_threads(a.threads)
        measured(a.models, a.batch_size, a.size, a.repeats, a.warmup)


if __name__ == "__main__":
    main()
