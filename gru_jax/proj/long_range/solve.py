"""When a run of the second protocol counts as solved: one rule, read from the run's
eval history by the adaptive search, its report and the capacity control alike (the
learning-rate calibration keeps the rule its rates were frozen under: calibration.py).

Solved by a budget B: SOLVED_EVALS evals in a row at the threshold, the last of
them at or before step B. That is the trainer's own stop rule
(`train.stop_when_solved = SOLVED_EVALS`), so a run that stopped itself solved is
solved, and a run re-read at a smaller budget or a stricter threshold is decided as
the same run stopped there would have been. Its steps to solve: the first eval of
that streak. Not a solve: one eval at the threshold that is lost again (a run that
touches 0.99 accuracy at step 1500 and ends at 0.73), nor a lone final eval at it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

from gru_jax.harness.summary import RunSummary

SOLVED_EVALS = 3


@dataclasses.dataclass(frozen=True)
class Solve:
    start: int  # step of the streak's first eval: the run's steps to solve
    held: int  # step of its SOLVED_EVALS-th eval: where the trainer stops


def at_threshold(metric: str, threshold: float) -> Callable[[Mapping], bool]:
    """Whether one eval meets `threshold` (mse: at or below; accuracy: at or above)."""
    if metric == "accuracy":
        return lambda e: math.isfinite(e.get(metric, math.nan)) and e[metric] >= threshold
    return lambda e: math.isfinite(e.get(metric, math.nan)) and e[metric] <= threshold


def first_solve(history: Sequence[Mapping], metric: str, threshold: float,
                evals: int = SOLVED_EVALS) -> Solve | None:
    """The first run of `evals` evals in a row at `threshold` in an eval history
    ({"step", metric, ...} in step order), or None."""
    ok, start, streak = at_threshold(metric, threshold), None, 0
    for e in history:
        if ok(e):
            start = int(e["step"]) if streak == 0 else start
            streak += 1
            if streak == evals:
                return Solve(start, int(e["step"]))
        else:
            streak = 0
    return None


def within(held: Solve | None, budget: int) -> bool:
    """Whether a streak (`first_solve`'s) was held by step `budget`."""
    return held is not None and held.held <= budget


def summary_solve(s: RunSummary) -> Solve | None:
    """`first_solve` of a run's summary at its task's metric and threshold."""
    return first_solve(s.eval_history or (), s.task.metric, float(s.task.solved_at))


def solved_within_cap(s: RunSummary) -> bool:
    """Solved within the run's own budget (its config's train.steps)."""
    return within(summary_solve(s), s.config["train"]["steps"])
