"""Progress: a live rich bar (loss, accuracy, throughput, ETA) on a terminal, plain lines otherwise.
Throughput is in img/s, or samples/s when the data are sequences (the trainer says which)."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class Reporter:
    """Rank 0's view of training; `quiet` keeps only errors."""

    def __init__(self, quiet: bool = False, live: bool | None = None, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.console = Console(file=self.stream, highlight=False)
        self.bar: Progress | None = None
        self.task = None
        self.lines_per_epoch = 10
        self.where, self.steps, self.every, self.next_line = "", 0, 1, 1 << 62
        self.unit = "img/s"

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self.live:
            (self.bar.console if self.bar else self.console).print(text)
        else:
            print(text, file=self.stream, flush=True)

    def start_epoch(self, epoch: int, epochs: int, steps: int, start: int, unit: str = "img/s") -> None:
        """unit: what the throughput counts per second, "img/s" or "samples/s" (sequences)."""
        self.where, self.steps, self.unit = f"epoch {epoch + 1}/{epochs}", steps, unit
        self.every = max(1, steps // self.lines_per_epoch)
        self.next_line = (start // self.every + 1) * self.every
        if self.quiet or not self.live:
            return
        if self.bar is None:
            self.bar = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.2%}  "
                           "{task.fields[ips]:,.0f} {task.fields[unit]}"),
                TimeRemainingColumn(), console=self.console, transient=False)
            self.bar.start()
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task("train", total=steps, completed=start, epoch=f"{epoch + 1}/{epochs}",
                                      loss=float("nan"), acc=0.0, ips=0.0, unit=unit)

    def update(self, step: int, loss: float, acc: float, ips: float) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=step, loss=loss, acc=acc, ips=ips)
        elif not self.live and not self.quiet and step >= self.next_line and step < self.steps:
            # without a terminal: a plain line about every tenth of an epoch (logs, CI, nohup)
            self.next_line = (step // self.every + 1) * self.every
            self.message(f"  step {step}/{self.steps} of {self.where}  loss {loss:.4f}  acc {acc:.2%}"
                         f"  {ips:,.0f} {self.unit}")

    def end_epoch(self, row: dict, epochs: int) -> None:
        self.message(
            f"epoch {int(row['epoch'])}/{epochs}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f}"
            f" acc {row['train_acc']:.2%}"
            + (f"  val loss {row['val_loss']:.4f} acc {row['val_acc']:.2%}" if row.get("val_acc") is not None else "")
            + f"  test loss {row['test_loss']:.4f} acc {row['test_acc']:.2%}"
            f"  {row['epoch_s']:.1f}s  {row['images_per_s']:,.0f} {self.unit}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
