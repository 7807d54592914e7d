"""Front end speed: .res text -> checked graph (parse, lower, build, infer_shapes, lint).

CIFAR ResNet with n blocks per stage (depth 6n+2), n = 20 ... 2000: seconds, and seconds per
block to show the cost is linear in depth. Target: n = 200 (ResNet-1202) under 0.5 s.

    python benchmarks/bench_frontend.py [--profile N]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "cifar_resnet.res"
SIZES = (20, 50, 100, 200, 500, 1000, 2000)


def front_end(n: int):
    from resdsl import api

    return api.graph_of(api.load_spec(SPEC.read_text(), n=n))


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cold_start() -> float:
    """A fresh interpreter: import resdsl, build the parser, check n = 200 (what `resdsl check` pays)."""
    code = ("import time; t = time.perf_counter(); from resdsl import api; "
            f"api.graph_of(api.load_spec(open({str(SPEC)!r}).read(), n=200)); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", type=int, metavar="N", help="cProfile the front end at n = N instead")
    args = ap.parse_args()
    if args.profile:
        front_end(args.profile)
        cProfile.runctx("front_end(n)", globals(), {"n": args.profile, "front_end": front_end}, "/tmp/frontend.prof")
        pstats.Stats("/tmp/frontend.prof").sort_stats("cumulative").print_stats(25)
        return
    front_end(3)                                     # warm: imports, parser construction
    print(f"{'n':>6} {'depth':>6} {'blocks':>7} {'nodes':>7} {'seconds':>9} {'µs/block':>9}")
    for n in SIZES:
        g = front_end(n)
        secs = best_of(lambda: front_end(n), 3 if n <= 500 else 1)
        blocks = 3 * n
        print(f"{n:>6} {6 * n + 2:>6} {blocks:>7} {g.number_of_nodes():>7} {secs:>9.3f} {secs / blocks * 1e6:>9.1f}")
    print(f"cold start (new interpreter, import + parser + n=200): {cold_start():.3f} s")


if __name__ == "__main__":
    main()
