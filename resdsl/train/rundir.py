"""The run directory: spec, arguments, per-epoch CSV, per-step JSONL, curves, summary, checkpoints."""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from resdsl.atomic import write_atomic
from resdsl.train.errors import TrainError

EPOCH_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_s", "images_per_s")


def new_run_dir(output: str, experiment: str | None) -> Path:
    """`OUTPUT/EXPERIMENT`, or `OUTPUT/YYYY-MM-DD-HHMMSS` (with a suffix if taken); checked writable."""
    root = Path(output).expanduser()
    name = experiment or time.strftime("%Y-%m-%d-%H%M%S")
    path, k = root / name, 1
    while experiment is None and path.exists():
        path, k = root / f"{name}-{k}", k + 1
    if path.is_dir() and any(path.iterdir()):
        raise TrainError(f"run directory {path} exists; use --resume {path} or another --experiment")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainError(f"cannot create run directory {path}: {e.strerror}") from None
    check_writable(path)
    return path


def check_writable(path: Path) -> None:
    probe = path / ".write-test"
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise TrainError(f"run directory {path} is not writable: {e.strerror}") from None


class RunDir:
    """Append-only logs that a resumed run first cuts back to its checkpoint."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.csv = self.path / "metrics.csv"
        self.jsonl = self.path / "metrics.jsonl"

    def write_inputs(self, spec_text: str, spec_name: str, args: dict) -> None:
        (self.path / f"{spec_name}.res").write_text(spec_text)
        (self.path / "args.json").write_text(json.dumps(args, indent=2, sort_keys=True, default=str) + "\n")

    def truncate(self, epochs_done: int, steps_done: int) -> None:
        """Drop rows logged after the checkpoint a resumed run starts from."""
        if self.csv.exists():
            rows = list(csv.DictReader(self.csv.open()))
            self._write_csv([r for r in rows if int(r["epoch"]) <= epochs_done])
        if self.jsonl.exists():
            keep = [ln for ln in self.jsonl.read_text().splitlines() if ln and json.loads(ln)["step"] <= steps_done]
            self.jsonl.write_text("".join(k + "\n" for k in keep))

    def _write_csv(self, rows: list[dict]) -> None:
        with self.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, EPOCH_FIELDS)
            w.writeheader()
            w.writerows(rows)

    def log_steps(self, rows: list[dict]) -> None:
        with self.jsonl.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)

    def log_epoch(self, row: dict) -> None:
        new = not self.csv.exists()
        with self.csv.open("a", newline="") as f:
            w = csv.DictWriter(f, EPOCH_FIELDS)
            if new:
                w.writeheader()
            w.writerow({k: _fmt(row[k]) for k in EPOCH_FIELDS})
            f.flush()
            os.fsync(f.fileno())

    def epochs(self) -> list[dict]:
        if not self.csv.exists():
            return []
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(self.csv.open())]

    def write_summary(self, summary: dict) -> None:
        text = json.dumps(summary, indent=2, default=str) + "\n"
        write_atomic(self.path / "summary.json", lambda tmp: Path(tmp).write_text(text))

    def plot(self) -> None:
        """loss.png, accuracy.png and lr.png from metrics.csv (matplotlib, Agg backend)."""
        rows = self.epochs()
        if not rows:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ep = [r["epoch"] for r in rows]
        for name, keys, ylabel in (("loss", ("train_loss", "test_loss"), "cross-entropy"),
                                   ("accuracy", ("train_acc", "test_acc"), "accuracy"),
                                   ("lr", ("lr",), "learning rate (end of epoch)")):
            fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
            for k in keys:
                ax.plot(ep, [r[k] for r in rows], marker=".", label=k)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.legend()
            fig.tight_layout()
            write_atomic(self.path / f"{name}.png", lambda tmp, fig=fig: fig.savefig(tmp, format="png"))
            plt.close(fig)


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else v
