"""Measured cost: forward and forward+backward latency, throughput and peak memory (imports torch lazily).

Method: each model gets `warmup` untimed steps, then `repeats` timed steps; the device is
synchronised before and after each step and the median is reported. Several models are timed
interleaved (A, B, A, B, ...) in one process, so drift of a noisy machine falls on all alike.
Forward runs in eval mode under no_grad; forward+backward in train mode on loss = sum(output).
bf16/fp16 run the fp32 model under torch.autocast (mixed precision, as in training).
Peak memory is measured afterwards, one fwd+bwd step per model: on CUDA the caching allocator's
peak (torch.cuda.max_memory_allocated); on CPU the process's peak resident set (VmHWM, reset
through /proc/self/clear_refs; where that is not possible, ru_maxrss since the process began).
"""
from __future__ import annotations

import contextlib
import gc
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    device: str = "cpu"
    batch_size: int = 8
    precision: str = "fp32"        # fp32 | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    repeats: int = 5
    warmup: int = 2


class Bench:
    """One model prepared for timing: on its device, in its memory format, with its input."""

    def __init__(self, model, input_shape: tuple[int, ...], s: Settings):
        import torch

        self.s, self.torch = s, torch
        fmt = torch.channels_last if s.channels_last else torch.contiguous_format
        model = model.to(s.device, memory_format=fmt)
        self.model = torch.compile(model) if s.compile else model
        self.params = list(model.parameters())
        self.x = torch.randn(s.batch_size, *input_shape, device=s.device)
        if self.x.dim() == 4:
            self.x = self.x.contiguous(memory_format=fmt)

    def autocast(self):
        if self.s.precision == "fp32":
            return contextlib.nullcontext()
        dtype = {"bf16": self.torch.bfloat16, "fp16": self.torch.float16}[self.s.precision]
        return self.torch.autocast(self.s.device.split(":")[0], dtype=dtype)

    def forward(self) -> None:
        self.model.eval()
        with self.torch.no_grad(), self.autocast():
            self.model(self.x)

    def forward_backward(self) -> None:
        self.model.train()
        for p in self.params:
            p.grad = None
        with self.autocast():
            loss = self.model(self.x).float().sum()
        loss.backward()

    def sync(self) -> None:
        if self.s.device.startswith("cuda"):
            self.torch.cuda.synchronize()

    def time(self, step) -> float:
        self.sync()
        t = time.perf_counter()
        step()
        self.sync()
        return time.perf_counter() - t


def measure(models: list, input_shapes: list[tuple[int, ...]], s: Settings) -> list[dict]:
    """Timings and peak memory of each model, interleaved (see the module docstring)."""
    import torch

    benches = [Bench(m, shape, s) for m, shape in zip(models, input_shapes)]
    results = [{"settings": asdict(s), "threads": torch.get_num_threads()} for _ in benches]
    for mode in ("forward", "forward_backward"):
        for b in benches:
            for _ in range(s.warmup):
                getattr(b, mode)()
        times: list[list[float]] = [[] for _ in benches]
        for _ in range(s.repeats):
            for i, b in enumerate(benches):
                times[i].append(b.time(getattr(b, mode)))
        for r, ts in zip(results, times):
            med = statistics.median(ts)
            r[mode] = {"latency_ms": med * 1e3, "throughput": s.batch_size / med,
                       "times_ms": [t * 1e3 for t in ts]}
    for r, b in zip(results, benches):
        r["peak_memory"] = peak_memory(b)
    return results


def peak_memory(b: Bench) -> dict:
    """Peak memory of one forward+backward step (see the module docstring for what is measured)."""
    torch = b.torch
    gc.collect()
    if b.s.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        b.forward_backward()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        return {"bytes": peak, "baseline_bytes": base, "increase_bytes": peak - base, "kind": "cuda allocator peak"}
    _trim_heap()     # freed pages back to the OS, else the step reuses resident memory and seems to need none
    reset = _reset_rss_peak()
    base = _status("VmRSS")
    b.forward_backward()
    if reset:
        peak = _status("VmHWM")
        return {"bytes": peak, "baseline_bytes": base, "increase_bytes": peak - base,
                "kind": "process RSS peak (VmHWM)"}
    return {"bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "baseline_bytes": base,
            "increase_bytes": None, "kind": "process RSS peak since start (ru_maxrss)"}


def _trim_heap() -> None:
    """glibc's malloc_trim(0): return the heap's free pages, so RSS is the memory in use."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status(field: str) -> int | None:
    """A memory figure of /proc/self/status in bytes (None where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
