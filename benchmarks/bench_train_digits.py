"""The README's main job, `resdsl train specs/digits_resnet.res`, run as a user would (a subprocess).

Prints, per seed: final and best test accuracy, seconds of training (summary.json `train_s`: the
epochs' training steps, without start-up and evaluation) and the command's wall time.
Usage: python benchmarks/bench_train_digits.py [--seeds 42 1 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        for seed in args.seeds:
            cmd = [sys.executable, "-m", "resdsl", "train", "specs/digits_resnet.res", "--seed", str(seed),
                   "--output", out, "--experiment", f"s{seed}", "--quiet"]
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True)
            wall = time.perf_counter() - t0
            s = json.loads((Path(out) / f"s{seed}" / "summary.json").read_text())
            print(f"seed {seed}: final test acc {s['final_test_acc']:.2%}  best {s['best_test_acc']:.2%}"
                  f" (epoch {s['best_epoch']})  training {s['train_s']:.1f} s  command wall {wall:.1f} s"
                  f"  ({s['epochs_done']} epochs, {s['params']:,} params)", flush=True)


if __name__ == "__main__":
    main()
