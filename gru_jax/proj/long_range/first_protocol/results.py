"""The long-range study's runs read back: its arms, grid points, boundaries and fits.

A study folder holds one sweep folder per task (``results/long_range/adding``, ``.../copy``),
each with ``sweep.json`` (the whole grid) and one run summary in ``<point>/`` per finished
run (read through `gru_jax.harness.report.rows.read_runs`). A grid point is (arm, hidden
size, sequence length) with one run per seed; it is

* run: some seeds finished; "solved" there means at least half of its seeds solved;
* pruned: the sweep did not run it because every seed failed at the next shorter length
  (`gru_jax.sweep.prune_reason`), so it counts as unsolved;
* pending: not run yet (the sweep is still going, or was stopped): shown blank.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gru_jax.harness.files import SWEEP_FILE
from gru_jax.harness.report.rows import read_runs
from gru_jax.harness.summary import RunSummary
from gru_jax.harness.sweep import point_names, prune_reason

# arm -> the model overrides that make it (chrono: the GRU's update-gate bias ~ log U[1, T-1]).
ARM_OVERRIDES = {
    "gru": {"model.cell": "gru", "model.chrono": False},
    "chrono-gru": {"model.cell": "gru", "model.chrono": True},
    "lstm": {"model.cell": "lstm", "model.chrono": False},
    "rnn": {"model.cell": "rnn", "model.chrono": False},
    "mingru": {"model.cell": "mingru", "model.chrono": False},
}
ARMS = tuple(ARM_OVERRIDES)
CURVE_HIDDEN = 64  # the hidden size of the gradient and learning-curve figures


def study_points(hidden: Sequence[int], seq_len: Sequence[int], seeds: Sequence[int]
                 ) -> list[dict[str, Any]]:
    """A study's sweep: every arm x hidden x seq_len x seed, in increasing seq_len (the
    sweep's pruning reads the shorter lengths' results)."""
    return [{**arm, "model.hidden_size": h, "task.seq_len": t, "seed": seed}
            for t in seq_len for h in hidden for arm in ARM_OVERRIDES.values() for seed in seeds]


def arm_of(overrides: Mapping[str, Any]) -> str:
    """The study arm of a point: its cell, or chrono-<cell> with chrono initialisation."""
    cell = overrides["model.cell"]
    return f"chrono-{cell}" if overrides.get("model.chrono") else cell


@dataclass
class Point:
    """One grid point (arm, hidden, seq_len) of one task and its runs (one per seed)."""

    arm: str
    hidden: int
    seq_len: int
    seeds: int  # runs the grid asks for
    runs: list[RunSummary] = field(default_factory=list)  # finished summaries
    pruned: bool = False

    @property
    def state(self) -> str:
        return "pruned" if self.pruned else ("run" if self.runs else "pending")

    @property
    def frac_solved(self) -> float | None:
        if self.pruned:
            return 0.0
        return sum(r.solved for r in self.runs) / len(self.runs) if self.runs else None

    @property
    def solved(self) -> bool:
        return bool(self.runs) and 2 * sum(r.solved for r in self.runs) >= len(self.runs)

    @property
    def median_steps(self) -> float | None:
        steps = [r.steps_to_solve for r in self.runs if r.solved]
        return float(np.median(steps)) if steps else None


@dataclass
class TaskResults:
    """A task's sweep folder read back: its grid points and what the runs share."""

    name: str
    folder: Path
    points: dict[tuple[str, int, int], Point]
    metric: str
    solved_at: float
    baseline: float | None
    config: dict  # the base config (budget, optimiser) the grid ran under

    @property
    def hiddens(self) -> list[int]:
        return sorted({h for _, h, _ in self.points})

    @property
    def lengths(self) -> list[int]:
        return sorted({t for _, _, t in self.points})

    @property
    def arms(self) -> list[str]:
        present = {a for a, _, _ in self.points}
        return [a for a in ARMS if a in present]

    def runs(self) -> list[RunSummary]:
        return [r for p in self.points.values() for r in p.runs]

    def boundary(self, arm: str, hidden: int) -> tuple[int | None, bool]:
        """(longest seq_len solved, censored): censored when the grid's longest length is
        solved (the boundary lies beyond) or pending points remain above the last solved."""
        solved = [t for t in self.lengths if (p := self.points.get((arm, hidden, t)))
                  and p.solved]
        best = max(solved) if solved else None
        above = [self.points[(arm, hidden, t)] for t in self.lengths
                 if (arm, hidden, t) in self.points and (best is None or t > best)]
        censored = best == self.lengths[-1] or any(p.state == "pending" for p in above)
        return best, censored


def load_task(folder: str | os.PathLike) -> TaskResults:
    """A task's sweep folder: the grid from sweep.json, each point's finished runs."""
    folder = Path(folder)
    grid = json.loads((folder / SWEEP_FILE).read_text())
    overrides = [p["overrides"] for p in grid["points"]]
    names = point_names(overrides)
    points: dict[tuple[str, int, int], Point] = {}
    info = None
    summaries = read_runs(folder, names)
    for i, (o, name) in enumerate(zip(overrides, names, strict=True)):
        key = (arm_of(o), int(o["model.hidden_size"]), int(o["task.seq_len"]))
        p = points.setdefault(key, Point(*key, seeds=0))
        p.seeds += 1
        s = summaries[name]
        if s is not None and s.finished:
            p.runs.append(s)
            info = info or s
        elif s is None and prune_reason(i, overrides, names, folder, "task.seq_len"):
            p.pruned = True
    if info is None:
        raise ValueError(f"{folder}: no finished run yet")
    return TaskResults(name=info.config["task"]["name"], folder=folder, points=points,
                       metric=info.metric, solved_at=info.task.solved_at,
                       baseline=info.task.baseline, config=grid.get("base_config") or {})


# The first protocol's task folders; the second protocol's (capacity/, calibration/,
# search/) sit beside them in results/long_range and are not part of it.
TASK_FOLDERS = ("adding", "copy")


def load_study(study: str | os.PathLike) -> list[TaskResults]:
    """Every task folder of the first protocol (with a sweep.json) of a study folder."""
    study = Path(study)
    tasks = [load_task(study / name) for name in TASK_FOLDERS
             if (study / name / SWEEP_FILE).is_file()]
    if not tasks:
        raise ValueError(f"{study}: no task folder with a {SWEEP_FILE}")
    return tasks


def fit_boundary(hiddens: Sequence[int], bounds: Sequence[int]) -> tuple[float, float] | None:
    """Least squares of log2 T* = a + b log2 H over uncensored points: (a, b), or None
    with fewer than two distinct hidden sizes. T* ~ 2^a H^b."""
    if len(set(hiddens)) < 2:
        return None
    b, a = np.polyfit(np.log2(hiddens), np.log2(bounds), 1)
    return float(a), float(b)


def boundaries(tr: TaskResults) -> dict[str, list[tuple[int, int | None, bool]]]:
    """arm -> [(hidden, longest length solved or None, censored)]."""
    return {arm: [(h, *tr.boundary(arm, h)) for h in tr.hiddens] for arm in tr.arms}


def boundary_fits(tr: TaskResults) -> dict[str, tuple[float, float] | None]:
    """arm -> `fit_boundary` over its hidden sizes with a boundary inside the grid."""
    fits = {}
    for arm, rows in boundaries(tr).items():
        inside = [(h, t) for h, t, cens in rows if t is not None and not cens]
        fits[arm] = fit_boundary(*map(list, zip(*inside, strict=True))) if inside else None
    return fits


def curve_hidden(tr: TaskResults) -> int:
    """CURVE_HIDDEN if the grid has it, else its largest hidden size."""
    return CURVE_HIDDEN if CURVE_HIDDEN in tr.hiddens else tr.hiddens[-1]


def gradient_length(tr: TaskResults, hidden: int | None = None) -> int | None:
    """The longest length at which every arm has a finished run at `hidden`
    (default `curve_hidden`): where the gradient and learning-curve figures are drawn."""
    hidden = hidden or curve_hidden(tr)
    ok = [t for t in tr.lengths if all(
        (p := tr.points.get((a, hidden, t))) and p.runs for a in tr.arms)]
    return max(ok) if ok else None


def best_boundary(tr: TaskResults, arm: str) -> tuple[int | None, bool, int | None]:
    """(longest length solved at any hidden size, censored, the hidden size); censored
    when any hidden size's boundary may still lie further out."""
    rows = boundaries(tr)[arm]
    solved = [(t, h) for h, t, _ in rows if t is not None]
    t, h = max(solved) if solved else (None, None)
    return t, any(c for _, _, c in rows), h


def equal_params_hidden(tr: TaskResults, ref: tuple[str, int] = ("gru", CURVE_HIDDEN)
                        ) -> dict[str, int]:
    """arm -> the grid hidden size whose parameter count is nearest (in ratio) to the
    reference arm's at its hidden size."""
    params = {}
    for (arm, h, _), p in tr.points.items():
        if p.runs:
            params[(arm, h)] = p.runs[0].num_params
    target = params.get(ref)
    out = {}
    for arm in tr.arms:
        sizes = [h for (a, h) in params if a == arm]
        if target is None or not sizes:
            out[arm] = ref[1]
            continue
        out[arm] = min(sizes, key=lambda h: abs(math.log(params[(arm, h)] / target)))
    return out


def median_curve(curves: list[list[float]]) -> np.ndarray:
    """Median over runs of ||dL/dh_t|| / ||dL/dh_{T-1}||, against lag (index 0 = t = T-1)."""
    rel = [np.asarray(c, np.float64)[::-1] / c[-1] for c in curves if c and c[-1]]
    return np.median(np.stack(rel), axis=0)


def value_at(run: RunSummary, step: int, metric: str) -> float:
    """The run's eval metric at `step`, or its last one before (NaN before its first)."""
    v = math.nan
    for e in run.eval_history:
        if e["step"] > step:
            break
        v = e[metric] if e[metric] is not None else math.nan
    return v
