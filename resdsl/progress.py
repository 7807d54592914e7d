"""Progress for long commands: `with Progress("lesion", total) as p: ... p.step()`.

Silent for work that ends within `after` seconds (fast commands print nothing extra); then, on
stderr, a line about every `every` seconds: done/total, elapsed, and an estimate of the time left
(the mean time per step so far × the steps left). RESDSL_PROGRESS=0 turns it off.
"""
from __future__ import annotations

import os
import sys
import time


def _fmt(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Progress:
    def __init__(self, what: str, total: int, unit: str = "steps", after: float = 3.0, every: float = 5.0,
                 stream=None, clock=time.monotonic):
        self.what, self.total, self.unit, self.after, self.every = what, max(0, int(total)), unit, after, every
        self.stream = stream or sys.stderr
        self.clock = clock
        self.done, self.t0, self.last = 0, clock(), None
        self.on = os.environ.get("RESDSL_PROGRESS", "1") != "0"
        self.lines: list[str] = []

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.last is not None and exc[0] is None:
            self._print(f"{self.what}: {self.done}/{self.total} {self.unit} done in {_fmt(self.clock() - self.t0)}")

    def estimate(self) -> float | None:
        """Seconds left: the mean time per step so far × the steps left."""
        if not self.done:
            return None
        return (self.clock() - self.t0) / self.done * max(0, self.total - self.done)

    def step(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if not self.on or now - self.t0 < self.after or (self.last is not None and now - self.last < self.every):
            return
        self.last = now
        left = self.estimate()
        self._print(f"{self.what}: {self.done}/{self.total} {self.unit}, {_fmt(now - self.t0)} elapsed"
                    + (f", about {_fmt(left)} left" if left is not None and self.done < self.total else ""))

    def _print(self, text: str) -> None:
        self.lines.append(text)
        print(text, file=self.stream, flush=True)
