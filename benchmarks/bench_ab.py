"""Front-end time of two source trees, alternated: `resdsl` of tree A, then B, then A, ...

    python benchmarks/bench_ab.py TREE_A TREE_B [--n 200] [--rounds 6]

Each run is a fresh interpreter with PYTHONPATH set to the tree, timing bench_frontend's work
(cifar_resnet.res at n blocks per stage, .res text -> checked graph) best of 3 after a warm-up.
Alternating rounds on one machine makes the comparison fair when other jobs load the CPU; the
ratio of the fastest runs (A / B) is the number to read.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

CODE = """
import time
from pathlib import Path
from resdsl import api
spec = (Path(api.__file__).parent / "zoo" / "specs" / "cifar_resnet.res").read_text()
api.graph_of(api.load_spec(spec, n=3))
best = 1e9
for _ in range(3):
    t = time.perf_counter(); api.graph_of(api.load_spec(spec, n={n})); best = min(best, time.perf_counter() - t)
print(best)
"""


def once(tree: str, n: int) -> float:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run([sys.executable, "-c", CODE.format(n=n)], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    times = {args.a: [], args.b: []}
    for r in range(args.rounds):
        for tree in ((args.a, args.b) if r % 2 == 0 else (args.b, args.a)):
            times[tree].append(once(tree, args.n))
    for tree, ts in times.items():
        print(f"{tree}: best {min(ts):.3f} s, median {statistics.median(ts):.3f} s over {len(ts)} runs")
    print(f"A/B best {min(times[args.a]) / min(times[args.b]):.3f}, "
          f"median {statistics.median(times[args.a]) / statistics.median(times[args.b]):.3f}")


if __name__ == "__main__":
    main()
