"""Timing and peak memory of training steps, measured the same way for every model and for the peer.

A :class:`Case` is one training configuration: a closure doing one optimiser step on a fixed
batch. :func:`time_cases` runs the cases of a group interleaved (one step of each per round), so a
background load slows them alike and the ratios between them hold; each figure is the median
of the rounds. Peak memory is measured in one more, untimed, step per case: the step's high-water
mark above what was held before it, from CUDA's allocator statistics on a GPU, and on a CPU from
the process's peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``) with glibc
told to give every allocation of 64 KiB or more its own mapping (``mallopt``), so that freed
tensors leave the resident set at once and it follows the live tensors (this slows allocation,
hence the separate step).
"""

from __future__ import annotations

import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gon.models import GradientOriginModel
from gon.training.cpu_memory import LIBC, M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX
from gon.training.loop import training_step


@dataclass
class Case:
    """One training configuration of a benchmark group."""

    group: str  # e.g. "implicit 28x28x1": the cases whose ratios are compared
    name: str  # e.g. "shared origin"
    batch: int
    step: Callable[[], None]  # one optimiser step (forward, backward, update) on a fixed batch
    params: int = 0
    note: str = ""
    times: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)

    def result(self) -> dict:
        seconds = statistics.median(self.times)
        return {
            "group": self.group,
            "name": self.name,
            "batch": self.batch,
            "params": self.params,
            "step_ms": 1000 * seconds,
            "images_per_s": self.batch / seconds,
            "peak_mb": statistics.median(self.peaks) if self.peaks else None,
            "repeats": len(self.times),
            "step_ms_all": [round(1000 * t, 2) for t in self.times],
            "note": self.note,
        }


def optimiser_step(model: GradientOriginModel, x: torch.Tensor, lr: float = 1e-4) -> Callable[[], None]:
    """One Adam step of ``model`` on its own training objective, on the batch x."""
    model.train()
    step = training_step(model, lr, x.device, cuda_graphs=False, log=None)
    batch = {"x": x, "index": torch.arange(len(x), device=x.device)}  # GLO: the codes of training images 0..B-1
    return lambda: step(batch)


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.mb``: the block's high-water mark above its start
    (None where it cannot be measured: a CPU off Linux/glibc)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.mb: float | None = None
        self.start: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            try:
                LIBC.malloc_trim(0)  # hand freed memory back, so the resident set is what is live
                Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to VmRSS
                self.start = _proc_status_kb("VmRSS") * 1024
            except (OSError, AttributeError):
                self.start = None
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        elif self.start is not None:
            self.mb = max(0.0, (_proc_status_kb("VmHWM") * 1024 - self.start) / 2**20)


def _proc_status_kb(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1))


def measure_memory(step: Callable[[], None], device: torch.device) -> float | None:
    """Peak memory (MB) of one call of ``step`` above what was held before it."""
    small_maps = device.type != "cuda" and LIBC is not None and LIBC.mallopt(M_MMAP_THRESHOLD, 1 << 16) == 1
    try:
        with PeakMemory(device) as peak:
            step()
    finally:
        if small_maps:  # back to the training setting: large blocks reused from the heap, as when timing
            LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
    return peak.mb if (device.type == "cuda" or small_maps) else None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cases(
    cases: list[Case], repeats: int, device: torch.device, warmup: int = 2, log: Callable[[str], None] | None = None
) -> list[dict]:
    """Run every case ``warmup + repeats`` times, interleaved, then once more for its peak memory;
    the median step time and the peak of each. (The first steps pay one-off costs: oneDNN kernel
    selection, Adam's state; two warm-up rounds cover them.)"""
    for round_ in range(warmup + repeats):
        for case in cases:
            synchronize(device)
            started = time.perf_counter()
            case.step()
            synchronize(device)
            seconds = time.perf_counter() - started
            if round_ >= warmup:
                case.times.append(seconds)
            if log:
                label = (
                    f"warm-up {round_ + 1}/{warmup}" if round_ < warmup else f"round {round_ - warmup + 1}/{repeats}"
                )
                log(f"  {case.group} | {case.name}: {label} {1000 * seconds:.0f} ms")
    for case in cases:
        peak = measure_memory(case.step, device)
        if peak is not None:
            case.peaks.append(peak)
    return [case.result() for case in cases]


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_cores": _cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
