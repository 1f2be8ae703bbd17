"""Training time, measured as big_vision's `Chrono` measures it, and itemised.

* The programs are compiled ahead of time (inside `paused("compile_sec")`), so
  timing starts with the first step (`start`) and every step is timed; a step
  is timed until its results are ready (the trainer waits for each interval's
  steps inside training time: the steps run asynchronously).
* Time spent inside `paused(kind)` (evaluation, checkpoints, logging) is not
  training time; it is added to that kind's total (nested pauses count once,
  to the outermost kind), so a run's summary says where its wall time went.
* Totals survive restarts: a checkpoint stores `totals(...)` and the next
  session adds its own to them.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Mapping

PAUSES = ("compile_sec", "eval_sec", "checkpoint_sec", "log_sec")
TOTALS = ("wall_time_sec", "train_time_sec", "train_steps_timed", *PAUSES)


class Chrono:
    """One session's clock: wall time since it was made, training time since `start`,
    and the seconds spent on each kind of pause (PAUSES)."""

    def __init__(self, clock=time.perf_counter):
        self._clock = clock
        self._t0 = clock()  # the session's start
        self._train_t0: float | None = None  # when timing started
        self._steps = 0  # steps timed
        self._paused = 0.0  # seconds paused since timing started
        self._kinds: dict[str, float] = collections.defaultdict(float)
        self._depth = 0  # nesting of `paused`
        self._mark = (0.0, 0)  # (training time, steps) at the last `rate()`

    def start(self) -> None:
        """Time the steps from here (the trainer calls it just before its loop); what was
        paused before is not inside training time, so it is not subtracted from it."""
        self._train_t0 = self._clock()
        self._paused = 0.0

    def tick(self, n: int = 1) -> None:
        """`n` more training steps."""
        self._steps += n

    @contextlib.contextmanager
    def paused(self, kind: str = "log_sec"):
        """Time inside is not training time; it counts to `kind` (outermost only)."""
        t = self._clock()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                dt = self._clock() - t
                self._kinds[kind] += dt
                self._paused += dt

    def train_time(self) -> float:
        """Seconds of training since `start`, pauses left out (0 for a session that
        ended before its loop started)."""
        if self._train_t0 is None:
            return 0.0
        return self._clock() - self._train_t0 - self._paused

    def rate(self) -> float | None:
        """Steps per second of training since the last call (None: nothing timed)."""
        t, n = self.train_time(), self._steps
        (t_prev, n_prev), self._mark = self._mark, (t, n)
        return (n - n_prev) / (t - t_prev) if n > n_prev and t > t_prev else None

    def totals(self, saved: Mapping[str, float]) -> dict[str, float]:
        """`saved` totals (of the sessions before, TOTALS keys; missing ones are 0)
        plus this session's."""
        out = {"wall_time_sec": saved.get("wall_time_sec", 0) + self._clock() - self._t0,
               "train_time_sec": saved.get("train_time_sec", 0) + self.train_time(),
               "train_steps_timed": saved.get("train_steps_timed", 0) + self._steps}
        for k in PAUSES:
            out[k] = saved.get(k, 0) + self._kinds.get(k, 0.0)
        return out

    @staticmethod
    def speed(totals: Mapping[str, float]) -> tuple[float | None, float | None]:
        """(steps per second, milliseconds per step) of `totals`; None if nothing timed."""
        t, n = totals["train_time_sec"], totals["train_steps_timed"]
        if not n or t <= 0:
            return None, None
        return n / t, 1000.0 * t / n
