"""The long differential run: N random valid networks through every backend.

    python benchmarks/fuzz_differential.py N [--start S] [--heavy-every K] [--out DIR]

Network i is tests/netgen.generate(RandomDraw(S + i)) — reproducible from its seed alone. Each is
checked by tests/differential.py (compile, emitted model.py, fuse, fmt, show, check's params and
MACs against flop_counter; every K-th also .pt2 and .onnx). A failing network is written to
DIR/seed-N.res with its error, and the run goes on; the summary counts networks per backend.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from differential import differential  # noqa: E402
from netgen import RandomDraw, generate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--heavy-every", type=int, default=10, help="pt2 and onnx on every K-th network")
    ap.add_argument("--out", default="fuzz-findings")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: run all N)")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)     # tiny tensors: one thread each is fastest, and fair on a shared machine
    out = Path(a.out)
    counts, findings, t0 = collections.Counter(), collections.Counter(), time.time()
    for seed in range(a.start, a.start + a.n):
        if a.seconds and time.time() - t0 > a.seconds:
            break
        text = generate(RandomDraw(seed))
        counts["generated"] += 1
        try:
            for backend in differential(text, seed, heavy=seed % a.heavy_every == 0):
                counts[backend] += 1
        except Exception as e:  # a finding: keep the network and go on
            kind = getattr(e, "backend", type(e).__name__)
            findings[kind] += 1
            out.mkdir(parents=True, exist_ok=True)
            (out / f"seed-{seed}.res").write_text(text + "\n# " + "\n# ".join(
                traceback.format_exc().strip().splitlines()[-12:]) + "\n")
            print(f"seed {seed}: {kind}: {str(e).splitlines()[0][:200]}", flush=True)
        if counts["generated"] % 50 == 0:
            print(f"{counts['generated']} networks, {sum(findings.values())} findings, "
                  f"{time.time() - t0:.0f}s; per backend: {dict(counts)}", flush=True)
    print(f"done: {counts['generated']} networks in {time.time() - t0:.0f}s; checked per backend: {dict(counts)}; "
          f"findings: {dict(findings) or 'none'}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
