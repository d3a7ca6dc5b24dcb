"""Training beside a busy neighbour: conv GON steps at 1 thread, at one per core, and at the measured
choice (:class:`gon.training.threads.ThreadTuner`), on the machine as it is and with a neighbour process that
keeps every core busy.

The three configurations run interleaved (one step of each per round, each its own model and Adam,
the order rotating from round to round), so a changing background load slows them alike; each
figure is the median of the rounds. The
measured choice starts afresh in each condition and its measuring steps are timed like the others
(the mean shows what measuring cost). The neighbour is a separate Python process multiplying
matrices on as many torch threads as there are cores; it exits when killed or when this process
ends (it watches its parent), so it never outlives the benchmark.
"""

from __future__ import annotations

import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from gon.bench.measure import optimiser_step
from gon.models import GON
from gon.training.threads import ThreadTuner, core_count

#: the neighbour: torch matmuls on N threads until its parent is gone; says "ready" once started
NEIGHBOUR = """
import os, sys, torch
torch.set_num_threads(int(sys.argv[1]))
parent = os.getppid()
a = torch.rand(384, 384)
print("ready", flush=True)
while os.getppid() == parent:
    for _ in range(20):
        b = a @ a
"""


class BusyNeighbour:
    """``with BusyNeighbour(threads):`` a process keeping ``threads`` cores busy for the block's duration."""

    def __init__(self, threads: int, start_timeout: float = 120.0):
        self.threads, self.start_timeout = threads, start_timeout
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> BusyNeighbour:
        self.process = subprocess.Popen(
            [sys.executable, "-c", NEIGHBOUR, str(self.threads)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the benchmark, which then ends the neighbour itself
        )
        ready, _, _ = select.select([self.process.stdout], [], [], self.start_timeout)  # torch's import
        if not ready or self.process.stdout.readline().strip() != "ready":
            self.__exit__()
            raise RuntimeError(f"the busy neighbour process did not start within {self.start_timeout:g} s")
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=30)
            self.process.stdout.close()
        self.process = None


class _Configuration:
    """One conv GON trained at a fixed thread count (``threads``) or the measured one (None)."""

    def __init__(self, name: str, threads: int | None, batch: int, device: torch.device):
        torch.manual_seed(0)
        x = torch.rand(batch, 1, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
        self.name, self.threads, self.batch = name, threads, batch
        self.step = optimiser_step(GON().to(device), x)
        self.tuner: ThreadTuner | None = None
        self.times: list[float] = []

    def start(self, log: Callable[[str], None]) -> None:
        self.times = []
        if self.threads is None:
            self.tuner = ThreadTuner(log=lambda line: log(f"  {self.name}: {line}"))

    def timed_step(self) -> float:
        if self.tuner is not None:
            self.tuner.before_step()
        else:
            torch.set_num_threads(self.threads)
        started = time.perf_counter()
        self.step()
        seconds = time.perf_counter() - started
        if self.tuner is not None:
            self.tuner.after_step(seconds)
        return seconds


def run_contention(batch: int, repeats: int, device: torch.device, log: Callable[[str], None] = print) -> list[dict]:
    """Rows of conv GON step times by thread choice, idle and beside a busy neighbour."""
    cores = core_count()
    previous = torch.get_num_threads()
    configurations = [
        _Configuration("1 thread", 1, batch, device),
        _Configuration(f"{cores} threads (one per core)", cores, batch, device),
        _Configuration("measured choice (gon.training.threads)", None, batch, device),
    ]
    rows = []
    try:
        for condition in ("no added neighbour", "busy neighbour"):
            log(
                f"== {condition}"
                + (f": a process multiplying matrices on {cores} threads" if "busy" in condition else "")
            )
            if condition == "busy neighbour":
                with BusyNeighbour(cores):
                    rows += _measure(condition, configurations, repeats, log)
            else:
                rows += _measure(condition, configurations, repeats, log)
    finally:
        torch.set_num_threads(previous)
    return rows


def _measure(condition: str, configurations: list[_Configuration], repeats: int, log) -> list[dict]:
    for c in configurations:
        c.start(log)
    for round_ in range(repeats):
        k = round_ % len(configurations)  # each goes first in turn: a step pays for the threads its predecessor
        for c in configurations[k:] + configurations[:k]:  # left spinning (OpenMP waits busy after a region)
            c.times.append(c.timed_step())
        log(
            f"  round {round_ + 1}/{repeats}: "
            + ", ".join(f"{c.name} {1000 * c.times[-1]:.0f} ms" for c in configurations)
        )
    rows = []
    for c in configurations:
        median = statistics.median(c.times)
        row = {
            "condition": condition,
            "name": c.name,
            "batch": c.batch,
            "step_ms": 1000 * median,
            "mean_step_ms": 1000 * statistics.mean(c.times),
            "steps_per_s": 1 / median,
            "repeats": len(c.times),
            "step_ms_all": [round(1000 * t, 1) for t in c.times],
        }
        if c.tuner is not None:
            row.update(chosen_threads=c.tuner.chosen, measurements=c.tuner.measurements)
        rows.append(row)
    one = rows[0]["step_ms"]
    best_fixed = min(r["step_ms"] for r in rows[:-1])
    for row in rows:
        row["vs_1_thread"] = row["step_ms"] / one
        row["vs_best_fixed"] = row["step_ms"] / best_fixed
    return rows
