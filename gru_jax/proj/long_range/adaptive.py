"""The adaptive search over the length T for one (arm, hidden size, seed): a lineage.

Rule (stateless: the next trial is a pure function of the lineage's finished runs,
so a search resumes at any moment and many workers can run it):

1. Grow: start at rung START of `design.LADDER` and climb GROW rungs (x2 in T) at a
   time while every run solves within its cap (solved: `solve`'s rule, the one the
   report reads).
2. Extend once: a run below the first failed rung that fails at the base cap but
   is still improving over its last quarter (`still_improving`) is resumed to twice
   the cap (the schedule is constant, so this is the same run, longer).
3. Bisect: between the longest solved rung below the first failed rung and that
   failed rung, in log T, to one rung (a factor sqrt 2).

The lineage's bracket is [longest solved, shortest failed] (`bracket`); a solve
above the first failure (seed noise) does not move it. Censored: no failure up to
the top rung searched (a lower bound), or a failure at the first rung (an upper
bound).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from gru_jax.harness.summary import RunSummary
from gru_jax.proj.long_range import solve

START, GROW = 0, 2
IMPROVING = 0.9  # the last quarter's best error below 0.9x the best before it


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A finished run of a lineage at one rung."""

    rung: int
    cap: int  # the steps it was allowed
    solved: bool  # within `cap`, by `solve`'s rule
    improving: bool  # still improving over its last quarter (meaningless if solved)
    diverged: bool = False  # stopped on a non-finite loss: it cannot go on


def still_improving(history: Sequence[dict], metric: str, cap: int) -> bool:
    """Whether the best eval error (mse, or 1 - accuracy) over the last quarter of
    `cap` steps is below IMPROVING x the best before it."""
    def err(e):
        v = e.get(metric, math.nan)
        return (1.0 - v if metric == "accuracy" else v) if math.isfinite(v) else math.inf

    late = [err(e) for e in history if e["step"] > 0.75 * cap]
    early = [err(e) for e in history if e["step"] <= 0.75 * cap]
    return bool(late and early and min(late) < IMPROVING * min(early))


def _final(outcomes: Sequence[Outcome]) -> dict[int, Outcome]:
    """Per rung, the run that decides it: the extended one where there is one."""
    out: dict[int, Outcome] = {}
    for o in sorted(outcomes, key=lambda o: o.cap):
        out[o.rung] = o
    return out


def _failed(o: Outcome, base_cap: int) -> bool:
    """Failed for good: not solved, and diverged, extended already or not improving."""
    return not o.solved and (o.diverged or o.cap > base_cap or not o.improving)


def next_trial(outcomes: Sequence[Outcome], base_cap: int, top: int) -> tuple[int, int] | None:
    """(rung, cap) of the lineage's next run, or None when its search is over.
    `top`: the highest rung the search may try."""
    runs = _final(outcomes)
    for r, o in sorted(runs.items()):
        if _failed(o, base_cap):
            break  # above the first failure a run cannot move the bracket
        if not o.solved:
            return r, 2 * base_cap  # extend the still-improving run once
    if not runs:
        return START, base_cap
    lo, hi = bracket(outcomes, base_cap)
    if hi is None:  # nothing failed yet: climb
        nxt = min(lo + GROW, top)
        return (nxt, base_cap) if nxt > lo else None
    if lo is not None and hi - lo > 1:
        return (lo + hi) // 2, base_cap
    return None


def bracket(outcomes: Sequence[Outcome], base_cap: int) -> tuple[int | None, int | None]:
    """(longest solved rung below the first failure, first failed rung); None where
    there is none (censored)."""
    runs = _final(outcomes)
    failed = [r for r, o in runs.items() if _failed(o, base_cap)]
    hi = min(failed) if failed else None
    solved = [r for r, o in runs.items() if o.solved and (hi is None or r < hi)]
    return (max(solved) if solved else None), hi


@dataclasses.dataclass(frozen=True)
class Lineage:
    arm: str
    hidden: int
    seed: int

    def folder(self, seq_len: int) -> str:
        return f"{self.arm}/H{self.hidden}/seed{self.seed}/T{seq_len}"


class LengthSearch:
    """The sweep engine's point source (initial / next) for the searches of many
    lineages on one task: each point is `design.point(...)` at a ladder rung, in
    its own folder ``<arm>/H<hidden>/seed<seed>/T<T>`` (an extension reuses it).
    `pack_seeds`: queue the seeds of one arm, size and T next to each other, so a
    worker that packs (`scripts/sweep.py --pack`, the default on a GPU) trains them
    as one program."""

    def __init__(self, task: str, lineages: Sequence[Lineage], learning_rate, *,
                 base_cap: int, top: int | Callable[[int], int],
                 copy_len: dict[int, int] | None = None, pack_seeds: bool = False):
        from gru_jax.proj.long_range import design

        self.task, self.lineages, self.lr = task, list(lineages), learning_rate
        self.base_cap, self._design = base_cap, design
        self.top = top if callable(top) else (lambda hidden: top)  # hidden -> rung
        self.copy_len = copy_len or {}  # copy: {hidden: C} (the capacity control's)
        self.pack_seeds = pack_seeds

    def _point(self, ln: Lineage, rung: int, cap: int) -> dict:
        T = self._design.LADDER[rung]
        p = self._design.point(self.task, ln.arm, ln.hidden, T, ln.seed,
                               self.lr(ln.arm, ln.hidden), cap, self.copy_len.get(ln.hidden))
        return {**p, "workdir": ln.folder(T)}

    def _queued(self, trials) -> list[dict]:
        """trials: (lineage, rung, cap) -> their points in queue order. Cheapest step
        first (smaller T x H, the cost `design.top_rung` equalises; then the smaller
        size), so a search cut short has bracketed the most pairs; then seed by seed,
        so the runs that share a program (the seeds of one arm, size and T) are apart
        in the queue and two workers rarely compile one program
        at once (the later seeds find it in the persistent cache); or, `pack_seeds`,
        seed after seed of one arm."""
        order = {ln: i for i, ln in enumerate(self.lineages)}
        arms = tuple(self._design.ARMS)
        def key(t):
            ln, rung, _ = t
            apart = (arms.index(ln.arm), ln.seed) if self.pack_seeds else (ln.seed, order[ln])
            return self._design.LADDER[rung] * ln.hidden, ln.hidden, *apart
        trials = sorted(trials, key=key)
        return [self._point(ln, rung, cap) for ln, rung, cap in trials]

    def initial(self) -> list[dict]:
        return self._queued((ln, START, self.base_cap) for ln in self.lineages)

    def outcomes(self, finished) -> dict[Lineage, list[Outcome]]:
        """finished: (point, summary dict) pairs -> each lineage's outcomes."""
        rung_of = {T: r for r, T in enumerate(self._design.LADDER)}
        by: dict[Lineage, list[Outcome]] = {ln: [] for ln in self.lineages}
        for point, summary in finished:
            ln = Lineage(self._design.arm_of(summary["config"]), point["model.hidden_size"],
                         point["seed"])
            if ln not in by or point["task.seq_len"] not in rung_of:
                continue
            s, cap = RunSummary.from_dict(summary), point["train.steps"]
            by[ln].append(Outcome(
                rung_of[point["task.seq_len"]], cap, solve.solved_within_cap(s),
                still_improving(s.eval_history or [], s.task.metric, cap),
                s.status == "diverged"))
        return by

    def next(self, finished) -> list[dict]:
        trials = ((ln, *nxt) for ln, outs in self.outcomes(finished).items()
                  if (nxt := next_trial(outs, self.base_cap, self.top(ln.hidden))) is not None)
        return self._queued(trials)
