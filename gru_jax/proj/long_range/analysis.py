"""The second protocol's numbers: steps-to-solve exponents, boundaries and their growth
with hidden size, each with its censoring and a bootstrap interval.

* alpha per arm (`alpha_fits`): log S = a + alpha log T + beta log H fitted to every
  run of the arm (`fits.interval_regression`). A solve at eval step s is the interval
  (s - eval_every, s] (evals are that far apart; the first eval makes it left-open);
  a run that trained through the budget unsolved is right-censored there.
* T*(budget) (`brackets`): per lineage [longest solved, shortest failed] read at a
  budget and threshold (`searches.lineage_bracket`).
* The boundary's growth (`growth_fits`): log T* = a + b log H over the lineages
  bracketed from both sides, each an interval [log lo, log hi].

Intervals: percentile bootstrap over lineages (arm, hidden size, seed): all runs of
a lineage move together, so the runs along one search are not counted as
independent.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from gru_jax.proj.long_range import fits
from gru_jax.proj.long_range.searches import Key, Run, first_solve, lineage_bracket, reread
from gru_jax.proj.long_range.solve import SOLVED_EVALS

EVAL_EVERY = 100  # design.base_config's train.eval_every
UNHELD = (SOLVED_EVALS - 1) * EVAL_EVERY  # a streak's last eval after its first
REPS = 200  # bootstrap refits


@dataclasses.dataclass(frozen=True)
class Estimate:
    value: float
    low: float  # 95% bootstrap interval
    high: float


@dataclasses.dataclass(frozen=True)
class AlphaFit:
    intercept: float  # a
    alpha: Estimate  # exponent of T
    beta: Estimate | None  # exponent of H (None: one hidden size)
    n: int  # runs
    censored: int  # runs not solved within the budget
    lineages: int

    def steps(self, seq_len: float, hidden: float) -> float:
        """The fitted median steps-to-solve at (T, H)."""
        beta = self.beta.value if self.beta is not None else 0.0
        return math.exp(self.intercept + self.alpha.value * math.log(seq_len)
                        + beta * math.log(hidden))


@dataclasses.dataclass(frozen=True)
class GrowthFit:
    b: Estimate  # T* ~ H^b
    n: int  # bracketed lineages


def _label(key: Key) -> str:
    return "/".join(map(str, key))


def steps_observations(runs: Sequence[Run], budget: int | None = None):
    """(X [n, 3], lo [n], hi [n], groups [n]) of log steps-to-solve; X is
    [1, log T, log H]. Runs undecided at the budget are left out."""
    X, lo, hi, groups = [], [], [], []
    for r in runs:
        d = reread(r, budget)
        if d is None:
            continue
        if d:
            s = first_solve(r)
            lo.append(math.log(s - EVAL_EVERY) if s > EVAL_EVERY else -math.inf)
            hi.append(math.log(s))
        else:
            # No held streak had ended by then, so none had started SOLVED_EVALS - 1
            # evals before it.
            lo.append(math.log(min(budget or r.cap, r.last_step) - UNHELD))
            hi.append(math.inf)
        X.append([1.0, math.log(r.seq_len), math.log(r.hidden)])
        groups.append(_label(r.key))
    return np.asarray(X).reshape(-1, 3), np.asarray(lo), np.asarray(hi), groups


def _estimate(fit: fits.Fit, ci: np.ndarray, j: int) -> Estimate:
    return Estimate(fit.coef[j], float(ci[0, j]), float(ci[1, j]))


def alpha_fit(runs: Sequence[Run], budget: int | None = None) -> AlphaFit | None:
    """The arm's fit; None when nothing is solved or too few runs."""
    X, lo, hi, groups = steps_observations(runs, budget)
    one_size = len(set(X[:, 2])) < 2
    if one_size:
        X = X[:, :2]
    exact_or_bracketed = np.isfinite(hi)
    if len(X) <= X.shape[1] + 1 or exact_or_bracketed.sum() < 2 or len(set(X[:, 1])) < 2:
        return None
    fit, ci = fits.bootstrap(X, lo, hi, groups, reps=REPS)
    return AlphaFit(intercept=fit.coef[0], alpha=_estimate(fit, ci, 1),
                    beta=None if one_size else _estimate(fit, ci, 2),
                    n=len(X), censored=int((~exact_or_bracketed).sum()),
                    lineages=len(set(groups)))


def alpha_fits(by_arm: Mapping[str, Sequence[Run]], budget: int | None = None
               ) -> dict[str, AlphaFit | None]:
    return {arm: alpha_fit(runs, budget) for arm, runs in by_arm.items()}


Bracket = tuple[int | None, int | None]


def brackets(lineages: Mapping[Key, Sequence[Run]], budget: int | None = None,
             threshold: float | None = None) -> dict[Key, Bracket]:
    """Each lineage's [longest solved, shortest failed] at a budget and threshold."""
    return {k: lineage_bracket(v, budget, threshold) for k, v in lineages.items()}


def growth_fit(bracketed: Mapping[Key, Bracket]) -> GrowthFit | None:
    """log T* = a + b log H over the lineages (of one arm) bracketed from both
    sides; None when fewer than 3 or one hidden size."""
    rows = [(h, lo, hi) for (_, h, _), (lo, hi) in bracketed.items()
            if lo is not None and hi is not None]
    if len(rows) < 3 or len({h for h, *_ in rows}) < 2:
        return None
    X = np.array([[1.0, math.log(h)] for h, *_ in rows])
    lo = np.array([math.log(lo) for _, lo, _ in rows])
    hi = np.array([math.log(hi) for *_, hi in rows])
    fit, ci = fits.bootstrap(X, lo, hi, list(range(len(rows))), reps=REPS)
    return GrowthFit(b=_estimate(fit, ci, 1), n=len(rows))


def bracket_text(b: Bracket, top: int | None = None) -> str:
    """'113-160'; '>=1280' (solved up to the top searched, no failure); '<10'
    (failed at the first length); '?' (nothing decided)."""
    lo, hi = b
    if lo is not None and hi is not None:
        return f"{lo}-{hi}"
    if lo is not None:
        return f">={lo}"
    return f"<{hi}" if hi is not None else "?"


def seeds_text(bs: Sequence[Bracket]) -> str:
    """The brackets of one (arm, hidden size)'s seeds, equal ones merged: '113-160 x2, 160-226'."""
    out: list[tuple[str, int]] = []
    for text in sorted((bracket_text(b) for b in bs), key=lambda t: (_order(t), t)):
        if out and out[-1][0] == text:
            out[-1] = (text, out[-1][1] + 1)
        else:
            out.append((text, 1))
    return ", ".join(t if n == 1 else f"{t} x{n}" for t, n in out)


def _order(text: str) -> float:
    digits = "".join(c if c.isdigit() else " " for c in text).split()
    return float(digits[0]) if digits else math.inf


ESCAPED = 0.5  # a copy run escaped the memoryless plateau: best loss <= this x baseline


def loss_ratio(run: Run) -> float | None:
    """A copy run's best eval cross-entropy over the memoryless baseline C log K / (T + 2C)
    (1: at the plateau; 0: perfect recall); None without a finite loss."""
    losses = [e["loss"] for e in run.history if math.isfinite(e.get("loss", math.nan))]
    return min(losses) / run.baseline if losses and run.baseline else None


def escaped(run: Run) -> bool:
    """Whether a copy run's best loss fell to ESCAPED x the memoryless baseline (the
    literature's criterion: leaving the plateau; ours, solved, is recall accuracy)."""
    x = loss_ratio(run)
    return x is not None and x <= ESCAPED


def plateau_bracket(runs: Sequence[Run]) -> Bracket:
    """One lineage's [longest T that escaped the plateau, shortest T that stayed on it]
    (escapes above the first stay do not count, as solves above the first failure)."""
    stayed = [r.seq_len for r in runs if not escaped(r)]
    hi = min(stayed, default=None)
    return max((r.seq_len for r in runs if escaped(r) and (hi is None or r.seq_len < hi)),
               default=None), hi


def both_sides(bs: Sequence[Bracket]) -> bool:
    """Every seed bracketed from both sides."""
    return bool(bs) and all(lo is not None and hi is not None for lo, hi in bs)
