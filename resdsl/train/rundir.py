"""The run directory: spec, arguments, per-epoch CSV, per-step JSONL, curves, summary, checkpoints."""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from resdsl.atomic import write_atomic
from resdsl.train.errors import TrainError

EPOCH_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "epoch_s",
                "images_per_s")
OPTIONAL = ("val_loss", "val_acc")        # empty when the run has no validation split (and absent in older runs)


def new_run_dir(output: str, experiment: str | None) -> Path:
    """`OUTPUT/EXPERIMENT`, or `OUTPUT/YYYY-MM-DD-HHMMSS` (with a suffix if taken), created atomically:
    two runs started at once never get the same directory (mkdir fails for the second)."""
    root = Path(output).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainError(f"cannot create run directory under {root}: {e.strerror}") from None
    if experiment is not None:
        path = root / experiment
        if path.is_dir() and unclaimed(path):
            return path            # an empty folder, or one a run was killed in before it wrote its inputs
        _mkdir(path, f"run directory {path} exists; use --resume {path} or another --experiment")
        return path
    name = time.strftime("%Y-%m-%d-%H%M%S")
    for k in range(10_000):
        path = root / (name if k == 0 else f"{name}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise TrainError(f"cannot create run directory {path}: {e.strerror}") from None
    raise TrainError(f"cannot find a free run directory name under {root}")


def unclaimed(path: Path) -> bool:
    """A folder no run owns yet: it holds nothing but what a run writes before its args.json (the
    lock, a write probe, the spec files, temporaries). args.json is written last of a run's inputs."""
    for f in path.iterdir():
        n = f.name
        if not (n in (".lock", "spec.json") or n.startswith((".write-test-", ".")) or n.endswith(".res")):
            return False
    return True


def claim_run_dir(output: str, experiment: str | None, resume: Path | None = None) -> tuple[Path, "RunLock"]:
    """The run directory, locked, for exactly one process. A new run takes OUTPUT/EXPERIMENT (or a
    dated name); two runs started at the same instant may both find the folder free, but only one
    gets its lock, and the lock holder checks again, under the lock, that no run claimed it meanwhile."""
    path = resume if resume is not None else new_run_dir(output, experiment)
    check_writable(path)
    lock = RunLock(path).acquire()
    if resume is None and not unclaimed(path):
        lock.release()
        raise TrainError(f"run directory {path} exists; use --resume {path} or another --experiment")
    return path, lock


def _mkdir(path: Path, exists_message: str) -> None:
    try:
        path.mkdir()
    except FileExistsError:
        raise TrainError(exists_message) from None
    except OSError as e:
        raise TrainError(f"cannot create run directory {path}: {e.strerror}") from None


def check_writable(path: Path) -> None:
    probe = path / f".write-test-{os.getpid()}-{os.urandom(4).hex()}"     # unique per caller, threads too
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise TrainError(f"run directory {path} is not writable: {e.strerror}") from None


class RunLock:
    """An exclusive lock on a run directory (flock on RUN/.lock, holding the writer's pid). The
    kernel drops it when the process ends, even on kill -9, so a dead run never blocks its resume."""

    def __init__(self, path: Path):
        self.path = Path(path) / ".lock"
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise TrainError(f"run directory {self.path.parent} is in use by process {holder}; "
                             "wait for it to finish (or stop it) before writing to this run") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read_args(run: Path) -> dict:
    """A run's args.json, or a clear error when it is missing or corrupt."""
    path = Path(run) / "args.json"
    if not path.is_file():
        raise TrainError(f"{run} is not a run directory (no args.json)")
    try:
        args = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise TrainError(f"{path} is corrupt ({str(e)[:120]}); the run cannot be resumed") from None
    if not isinstance(args, dict):
        raise TrainError(f"{path} is corrupt (not a JSON object); the run cannot be resumed")
    return args


# summary.json's fields that readers use, with their types (None allowed: a run not finished).
SUMMARY_FIELDS = {"status": str, "epochs_done": int, "final_test_acc": (int, float), "best_test_acc": (int, float),
                  "train_s": (int, float)}


def read_summary(run: Path) -> dict:
    """RUN/summary.json as a dict ({} when missing); a corrupt or mistyped one is one clear error."""
    path = Path(run) / "summary.json"
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise TrainError(f"{path} is corrupt ({str(e)[:120]})") from None
    if not isinstance(doc, dict):
        raise TrainError(f"{path} is corrupt (not a JSON object)")
    for name, kind in SUMMARY_FIELDS.items():
        v = doc.get(name)
        if v is not None and (not isinstance(v, kind) or isinstance(v, bool)):
            raise TrainError(f"{path} is corrupt: '{name}' is {type(v).__name__} {str(v)[:40]!r}")
    return doc


class RunDir:
    """Append-only logs that a resumed run first cuts back to its checkpoint."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.csv = self.path / "metrics.csv"
        self.jsonl = self.path / "metrics.jsonl"
        self.events = None        # a TensorBoard SummaryWriter once open_events() ran

    def open_events(self, purge_step: int | None = None, config: dict | None = None) -> None:
        """TensorBoard event files in the run directory (`tensorboard --logdir runs` finds every run).
        A resumed run passes its checkpoint's step: TensorBoard drops the events logged after it.
        Without the tensorboard package the run goes on without them (and says so once)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            import sys

            print("note: tensorboard is not installed; no TensorBoard event files (pip install tensorboard)",
                  file=sys.stderr)
            return
        self.events = SummaryWriter(str(self.path), purge_step=purge_step, flush_secs=30)
        if config is not None and not purge_step:
            text = "\n".join(f"    {k} = {json.dumps(v, default=str)}" for k, v in sorted(config.items()))
            self.events.add_text("config", text, 0)

    def close_events(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None

    def write_inputs(self, spec_text: str, spec_name: str, args: dict, bundle: dict | None = None,
                     config_toml: str | None = None) -> None:
        """The spec (spec.json holds every file it imports; NAME.res the top file, for reading),
        config.toml (train/configfile.py) and args, written last: args.json marks the claim."""
        files = {"spec.json": json.dumps(bundle, indent=1) + "\n"} if bundle is not None else {}
        files[f"{_safe_name(spec_name)}.res"] = spec_text
        if config_toml is not None:
            files["config.toml"] = config_toml
        files["args.json"] = json.dumps(args, indent=2, sort_keys=True, default=str) + "\n"   # last: the claim
        for name, text in files.items():
            write_atomic(self.path / name, lambda tmp, text=text: Path(tmp).write_text(text))

    def truncate(self, epochs_done: int, steps_done: int) -> None:
        """Drop rows logged after the checkpoint a resumed run starts from (and a torn last line)."""
        if self.csv.exists():
            self._write_csv([r for r in _csv_rows(self.csv) if int(float(r["epoch"])) <= epochs_done])
        if self.jsonl.exists():
            rows = [_json_row(ln) for ln in self.jsonl.read_text(errors="replace").splitlines()]
            keep = [json.dumps(r) for r in rows if r is not None and r.get("step", 1 << 62) <= steps_done]
            self.jsonl.write_text("".join(k + "\n" for k in keep))

    def _write_csv(self, rows: list[dict]) -> None:
        with self.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, EPOCH_FIELDS)
            w.writeheader()
            w.writerows(rows)

    def log_steps(self, rows: list[dict]) -> None:
        with self.jsonl.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        if self.events is not None:
            for r in rows:
                for k, tag in (("loss", "step/train_loss"), ("acc", "step/train_acc"), ("lr", "step/lr")):
                    self.events.add_scalar(tag, r[k], r["step"])

    def log_epoch(self, row: dict) -> None:
        if self.csv.exists():
            with self.csv.open(newline="", errors="replace") as f:
                header = f.readline().strip()
            if header != ",".join(EPOCH_FIELDS):      # a run written before the validation columns
                self._write_csv(_csv_rows(self.csv))
        new = not self.csv.exists()
        with self.csv.open("a", newline="") as f:
            w = csv.DictWriter(f, EPOCH_FIELDS)
            if new:
                w.writeheader()
            w.writerow({k: _fmt(row.get(k)) for k in EPOCH_FIELDS})
            f.flush()
            os.fsync(f.fileno())
        if self.events is not None:       # one scalar per metric and epoch, x = epoch
            for k in EPOCH_FIELDS[1:]:
                if row.get(k) is not None:
                    self.events.add_scalar(f"epoch/{k}", row[k], int(row["epoch"]))
            self.events.flush()

    def epochs(self) -> list[dict]:
        return ([{k: float(v) for k, v in r.items() if v != ""} for r in _csv_rows(self.csv)]
                if self.csv.exists() else [])

    def write_levels(self, levels: list[dict]) -> None:
        """levels.json: one record per --grow level (level, epoch it began after, depth, parameters)."""
        text = json.dumps(levels, indent=2) + "\n"
        write_atomic(self.path / "levels.json", lambda tmp: Path(tmp).write_text(text))

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
        for name, keys, ylabel in (("loss", ("train_loss", "val_loss", "test_loss"), "cross-entropy"),
                                   ("accuracy", ("train_acc", "val_acc", "test_acc"), "accuracy"),
                                   ("lr", ("lr",), "learning rate (end of epoch)")):
            fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
            for k in keys:
                if all(k in r for r in rows):
                    ax.plot(ep, [r[k] for r in rows], marker=".", label=k)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.legend()
            fig.tight_layout()
            write_atomic(self.path / f"{name}.png", lambda tmp, fig=fig: fig.savefig(tmp, format="png"))
            plt.close(fig)


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)[:100].strip(".") or "model"


def _json_row(line: str) -> dict | None:
    """One metrics.jsonl row, or None for a torn or foreign line (a crash mid-write)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None


def _csv_rows(path: Path) -> list[dict]:
    """metrics.csv rows with every field numeric; a torn last row is dropped."""
    out = []
    with path.open(newline="", errors="replace") as f:
        for r in csv.DictReader(f):
            try:
                if set(EPOCH_FIELDS) - set(OPTIONAL) <= set(r) <= set(EPOCH_FIELDS) and all(v is not None for v in r.values()):
                    [float(v) for k, v in r.items() if not (k in OPTIONAL and v == "")]
                    out.append({k: r.get(k, "") for k in EPOCH_FIELDS})
            except (TypeError, ValueError):
                continue
    return out

