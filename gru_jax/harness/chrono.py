"""Training time, measured as big_vision's `Chrono` measures it.

* The first step of a session compiles; timing starts after it has finished
  (`start`), so speed is that of the compiled program.
* Time spent inside `paused()` (evaluation, logging, checkpoints) is not
  training time.
* Totals survive restarts: a checkpoint stores `totals(...)` (wall time,
  training time, timed steps) and the next session adds its own to them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping

TOTALS = ("wall_time_sec", "train_time_sec", "train_steps_timed")


class Chrono:
    """One session's clock: wall time since it was made, training time since `start`."""

    def __init__(self, clock=time.perf_counter):
        self._clock = clock
        self._t0 = clock()  # the session's start
        self._train_t0: float | None = None  # when timing started (after the first step)
        self._steps = 0  # steps timed
        self._paused = 0.0  # seconds paused since timing started
        self._mark = (0.0, 0)  # (training time, steps) at the last `rate()`

    @property
    def started(self) -> bool:
        return self._train_t0 is not None

    def start(self) -> None:
        """The first (compiling) step has finished: time the steps from here."""
        self._train_t0 = self._clock()

    def tick(self) -> None:
        """One more training step (counted once timing has started)."""
        self._steps += self.started

    @contextlib.contextmanager
    def paused(self):
        """Time inside is not training time."""
        t = self._clock()
        try:
            yield
        finally:
            if self.started:
                self._paused += self._clock() - t

    def train_time(self) -> float:
        """Seconds of training since `start` (0 before), pauses left out."""
        if not self.started:
            return 0.0
        return self._clock() - self._train_t0 - self._paused

    def rate(self) -> float | None:
        """Steps per second of training since the last call (None: nothing timed)."""
        t, n = self.train_time(), self._steps
        (t_prev, n_prev), self._mark = self._mark, (t, n)
        return (n - n_prev) / (t - t_prev) if n > n_prev and t > t_prev else None

    def totals(self, saved: Mapping[str, float]) -> dict[str, float]:
        """`saved` totals (of the sessions before, TOTALS keys) plus this session's."""
        return {"wall_time_sec": saved["wall_time_sec"] + self._clock() - self._t0,
                "train_time_sec": saved["train_time_sec"] + self.train_time(),
                "train_steps_timed": saved["train_steps_timed"] + self._steps}

    @staticmethod
    def speed(totals: Mapping[str, float]) -> tuple[float | None, float | None]:
        """(steps per second, milliseconds per step) of `totals`; None if nothing timed."""
        t, n = totals["train_time_sec"], totals["train_steps_timed"]
        if not n or t <= 0:
            return None, None
        return n / t, 1000.0 * t / n
