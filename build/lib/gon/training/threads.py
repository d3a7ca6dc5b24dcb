"""torch's CPU thread count, chosen by timing real training steps.

On an idle CPU one thread per core is fastest; with anything else busy on the machine, torch's
threads wait for each other at every parallel region and a conv GON step measured 2,760 ms at
2 threads against 50 ms at 1 (2 cores, one busy neighbour). No fixed choice is right for both,
so :class:`ThreadTuner` measures: the next few training steps run interleaved at 1, 2, 4 ... N
threads (the steps train as usual), the fastest count is kept, and the measurement is repeated
when step times jump (the median of recent steps over ``jump`` times the chosen one's) and every
``recheck_seconds`` of training (a neighbour may have left). A count that is over ``drop`` times
slower than the best so far is not timed again, so a measurement costs a few steps.

Results depend slightly on the thread count (float sums in another order: parameters differ by
~1e-7 after 5 conv GON steps at 1 vs 2 threads); for bit-identical reruns pin ``--threads``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable

import torch
from tqdm.auto import tqdm


def core_count() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def candidate_counts(cores: int | None = None) -> list[int]:
    """1, 2, 4 ... and the core count itself: the thread counts worth timing."""
    cores = cores or core_count()
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return counts + [cores]


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.0f} ms"


def log_line(line: str) -> None:
    """Above any progress bar on the terminal (tqdm.write), else a plain line on stderr."""
    tqdm.write(line, file=sys.stderr)


class ThreadTuner:
    """Sets torch's thread count around each training step: ``before_step()``, the step, ``after_step(seconds)``.

    counts: thread counts to choose from (default :func:`candidate_counts`).
    rounds: timed steps per count in a measurement (interleaved; one untimed warm-up step first).
    log: receives one line when the choice is made or changes, e.g. ``threads: 1 (measured 52 ms vs 2760 ms at 2)``.
    """

    def __init__(
        self,
        counts: list[int] | None = None,
        rounds: int = 3,
        jump: float = 2.0,
        window: int = 8,
        recheck_seconds: float = 300.0,
        drop: float = 3.0,
        log: Callable[[str], None] | None = log_line,
    ):
        self.counts = sorted(set(counts or candidate_counts()))
        if not self.counts or self.counts[0] < 1:
            raise ValueError(f"thread counts must be >= 1, got {counts}")
        self.rounds, self.jump, self.drop = rounds, jump, drop
        self.recheck_seconds, self.log = recheck_seconds, log
        self.chosen: int | None = None
        self.reference = 0.0  # median step seconds at the chosen count when it was measured
        self.samples: dict[int, list[float]] = {}
        self.plan: list[int | None] = []  # thread counts of the measuring steps to come; None: the warm-up step
        self.recent: deque[float] = deque(maxlen=window)
        self.since_check = 0.0
        self.measurements = 0  # how many times the counts were measured
        self.measuring_seconds = 0.0  # time spent in measuring steps (they train too)
        self.reason = ""

    @property
    def measuring(self) -> bool:
        return bool(self.plan)

    def current(self) -> int:
        """The thread count of the next step (the warm-up step runs at the fewest: cheapest on a busy machine)."""
        if self.chosen is None and not self.plan:
            self._start("")
        if not self.plan:
            return self.chosen
        return self.plan[0] if self.plan[0] is not None else self.counts[0]

    def before_step(self) -> None:
        count = self.current()
        if torch.get_num_threads() != count:
            torch.set_num_threads(count)

    def after_step(self, seconds: float) -> None:
        if self.plan:
            self.measuring_seconds += seconds
            count = self.plan.pop(0)
            if count is not None:
                self.samples[count].append(seconds)
                self._drop_slow(count)
            if not self.plan:
                self._choose()
            return
        self.recent.append(seconds)
        self.since_check += seconds
        if len(self.recent) == self.recent.maxlen and statistics.median(self.recent) > self.jump * self.reference:
            self._start(f"; step times had risen {statistics.median(self.recent) / self.reference:.1f}x")
        elif self.since_check > self.recheck_seconds and len(self.counts) > 1:
            self._start("")

    # -- measuring ----------------------------------------------------------------------
    def _start(self, reason: str) -> None:
        """Plan a measurement: a warm-up step, then ``rounds`` rounds over the counts, alternating in order."""
        self.reason = reason
        self.samples = {n: [] for n in self.counts}
        self.plan = [None] if self.chosen is None else []  # the first steps of a run pay one-off costs
        for r in range(self.rounds if len(self.counts) > 1 else 0):
            self.plan += self.counts if r % 2 == 0 else self.counts[::-1]
        if not self.plan:  # one count: nothing to choose
            self.plan = [None]

    def _drop_slow(self, count: int) -> None:
        """Stop timing ``count`` once it is ``drop`` times slower than another count's best step."""
        best = min((min(s) for n, s in self.samples.items() if s and n != count), default=None)
        if best is not None and min(self.samples[count]) > self.drop * best:
            self.plan = [n for n in self.plan if n != count]

    def _choose(self) -> None:
        medians = {n: statistics.median(s) for n, s in self.samples.items() if s}
        self.measurements += 1
        self.recent.clear()
        self.since_check = 0.0
        if not medians:  # a single count: keep it
            self.chosen, self.reference = self.counts[0], float("inf")
            return
        best = min(medians, key=medians.get)
        changed = best != self.chosen
        self.chosen, self.reference = best, medians[best]
        if self.log and (changed or self.measurements == 1):
            others = ", ".join(f"{_ms(medians[n])} at {n}" for n in sorted(medians) if n != best)
            self.log(f"threads: {best} (measured {_ms(medians[best])}{' vs ' + others if others else ''}{self.reason})")

    def summary(self) -> dict:
        """What was chosen and what measuring cost, for records."""
        return {
            "threads": self.chosen,
            "measurements": self.measurements,
            "measuring_seconds": round(self.measuring_seconds, 3),
        }


def choose_threads(step: Callable[[], None], counts: list[int] | None = None, **tuner_options) -> ThreadTuner:
    """Run ``step`` (one training step) until a :class:`ThreadTuner` has chosen; torch keeps the chosen count."""
    tuner = ThreadTuner(counts, **tuner_options)
    while tuner.chosen is None or tuner.measuring:
        tuner.before_step()
        started = time.perf_counter()
        step()
        tuner.after_step(time.perf_counter() - started)
    torch.set_num_threads(tuner.chosen)
    return tuner
