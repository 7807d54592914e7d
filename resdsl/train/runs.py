"""`resdsl runs DIR...`: any set of run directories side by side — a table of what each run was
(the options that differ between them) and what it reached, and their curves in one figure.

A DIR is a run directory (it holds args.json) or a folder of them (a sweep's output, `runs/`),
searched two levels deep.
"""
from __future__ import annotations

import json
from pathlib import Path

from resdsl.train.errors import TrainError

SKIP = {"output", "experiment", "world_size", "device", "workers", "log_interval", "eval_batch_size",
        "on_device_max_mb"}    # options that do not change what a run learns


def find_runs(paths) -> list[Path]:
    """The run directories named by `paths`, in order, each once."""
    found: list[Path] = []
    for p in map(lambda x: Path(x).expanduser(), paths):
        if not p.is_dir():
            raise TrainError(f"{p}: no such folder")
        if (p / "args.json").is_file():
            hits = [p]
        else:
            hits = sorted({a.parent for a in [*p.glob("*/args.json"), *p.glob("*/*/args.json")]})
        if not hits:
            raise TrainError(f"{p} holds no run directory (no args.json in it or two levels below)")
        found += [h for h in hits if h not in found]
    return found


def describe(run: Path) -> dict:
    """One run: its options (args.json, --set values as `set.NAME`), summary and epoch curve."""
    from resdsl.train.rundir import RunDir, read_args

    args = read_args(run)
    params = args.pop("params", {}) or {}
    options = {**{k: v for k, v in args.items() if k not in SKIP}, **{f"set.{k}": v for k, v in params.items()}}
    try:
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    except ValueError:
        summary = {}
    return {"run": str(run), "name": run.name, "options": options, "spec_name": summary.get("spec_name"),
            "status": summary.get("status", "no summary"), "epochs_done": summary.get("epochs_done"),
            "params": summary.get("params"), "best_epoch": summary.get("best_epoch"),
            "best_val_acc": summary.get("best_val_acc"), "best_test_acc": summary.get("best_test_acc"),
            "final_test_acc": summary.get("final_test_acc"), "selected_on": summary.get("selected_on"),
            "train_s": summary.get("train_s"), "curve": RunDir(run).epochs()}


def differing(runs: list[dict]) -> list[str]:
    """The options whose values are not the same in every run (the columns worth showing)."""
    keys = sorted({k for r in runs for k in r["options"]})
    return [k for k in keys if len({json.dumps(r["options"].get(k), sort_keys=True) for r in runs}) > 1]


def compare(paths) -> dict:
    runs = [describe(r) for r in find_runs(paths)]
    return {"runs": runs, "differing": differing(runs)}
