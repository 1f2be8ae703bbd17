"""The sequential-digits columns of the cost table: per (arm, hidden size), the test
accuracy at the cap and the steps to the task's threshold, over the study's seeds
(runs of `experiments/long_range_digits.py:test`, under <study>/digits).

The accuracy is read at the last eval (the cap, design.DIGITS["cap"]; no early
stop), not at the best eval: the best of twenty evals on the 297 test images
would be selected on the test set. Steps to solve: the first eval at the
threshold, `>cap` where none reached it."""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections import defaultdict

from gru_jax.harness.summary import find_summaries, read_summary
from gru_jax.proj.long_range import design

FOLDER = "digits"


@dataclasses.dataclass(frozen=True)
class DigitsRun:
    arm: str
    hidden: int
    seed: int
    lr: float
    accuracy: float  # test accuracy at the last eval
    steps_to_solve: int | None
    cap: int


def load(folder: str | os.PathLike) -> dict[tuple[str, int], list[DigitsRun]]:
    """{(arm, hidden): finished runs, by seed} under `folder` (missing: {})."""
    out: dict[tuple[str, int], list[DigitsRun]] = defaultdict(list)
    if not os.path.isdir(folder):
        return {}
    for run_dir in find_summaries(folder):
        s = read_summary(run_dir)
        if s is None or not s.finished or "accuracy" not in s.final:
            continue
        c = s.config
        run = DigitsRun(design.arm_of(c), c["model"]["hidden_size"], c["seed"],
                        float(c["train"]["learning_rate"]), float(s.final["accuracy"]),
                        s.steps_to_solve, c["train"]["steps"])
        out[(run.arm, run.hidden)].append(run)
    return {k: sorted(v, key=lambda r: r.seed) for k, v in out.items()}


def accuracy_text(runs: list[DigitsRun]) -> str:
    """'0.973 [0.960, 0.980]': the mean over seeds [min, max]; one seed: its value."""
    if not runs:
        return "not run"
    accs = [r.accuracy for r in runs]
    if len(accs) == 1:
        return f"{accs[0]:.3f}"
    return f"{statistics.fmean(accs):.3f} [{min(accs):.3f}, {max(accs):.3f}]"


def steps_text(runs: list[DigitsRun]) -> str:
    """The steps to the threshold per seed: '400, 500, >2000'."""
    if not runs:
        return "not run"
    return ", ".join(str(r.steps_to_solve) if r.steps_to_solve is not None else f">{r.cap}"
                     for r in runs)
