"""A search's plan as a pure function of its seed, its settings and the runs' outcomes.

WOA's generation g + 1 depends on the scores of generations <= g, and nothing
else: the proposer's random draws come from one seeded Generator in a fixed
order. So the whole search state (generation, population, leader, budget
spent) is rebuilt by replaying the proposer from the seed over the outcomes
known so far; no worker keeps any of it in memory, and a worker that dies
loses nothing. `replay` is that function::

    outcomes: {run name: score (finished: final metric, minimised; inf for a
               failed or diverged run) | None (a trial is waiting or running)}
    -> Plan(candidates: every proposal so far, in order,
            free: the proposed runs that no trial holds yet (what to train next),
            finished: the budget is spent and every run has its outcome)

The budget counts distinct runs: a proposal equal to an earlier candidate's
overrides (WOA's whales often land on X* or, clipped, on a face of the cube)
reuses that run's score and costs nothing; new runs beyond the budget are
dropped; the search stops once `budget` runs are used (or after
MAX_GENERATIONS_FACTOR times the nominal budget / population generations).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gru_jax.harness.search.space import Dim, from_unit
from gru_jax.harness.search.woa import make_proposer
from gru_jax.harness.sweep.points import point_name

MAX_GENERATIONS_FACTOR = 4  # a search whose proposals keep repeating stops at 4x the generations


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One proposal: its place in the search, its run and where it sits in the cube."""

    index: int  # in proposal order over the whole search
    generation: int
    name: str  # the run's folder (`sweep.point_name` of the overrides)
    overrides: dict[str, Any]
    unit: tuple[float, ...]  # the position u [d] in [0, 1]^d


@dataclasses.dataclass(frozen=True)
class Plan:
    candidates: tuple[Candidate, ...]
    free: tuple[Candidate, ...]  # first proposal of each run no trial holds yet
    finished: bool  # nothing more to propose and every proposed run has its outcome
    generation: int  # the generation under way (== generations run when finished)


def generations_of(budget: int, population: int) -> int:
    """G = ceil(budget / population): the nominal generations (WOA's a falls over them)."""
    return math.ceil(budget / population)


def proposals(x: np.ndarray, space: Sequence[Dim], used: Mapping[str, Any], budget: int):
    """(x, points, names, fresh) of a generation's proposals x [P, d]: new runs in
    proposal order as many as the budget has left; a repeat of an earlier run is
    free (scored from it); the rest are dropped. `fresh`: the new runs' names."""
    points = [from_unit(space, u) for u in x]
    names = [point_name(p) for p in points]
    new = list(dict.fromkeys(nm for nm in names if nm not in used))
    allowed = set(new[:budget - len(used)])
    keep = [i for i, nm in enumerate(names) if nm in used or nm in allowed]
    points, names = [points[i] for i in keep], [names[i] for i in keep]
    fresh = list(dict.fromkeys(nm for nm in names if nm not in used))
    return x[keep], points, names, fresh


def replay(method: str, space: Sequence[Dim], budget: int, population: int, seed: int,
           outcomes: Mapping[str, float | None]) -> Plan:
    """The search's plan given the outcomes so far (see the module docstring).

    WOA stops at the first generation with a run whose outcome is unknown (its
    next move needs every score of this one); random search, whose proposals
    never depend on scores, runs on to the end of the budget, so all its runs
    are free at once.
    """
    generations = generations_of(budget, population)
    proposer = make_proposer(method, len(space), population, generations, seed)
    used: dict[str, None] = {}  # names of the runs counted in the budget, in order
    cands: list[Candidate] = []
    free: list[Candidate] = []
    complete = True  # every run so far has its outcome
    g = 0
    for g in range(generations * MAX_GENERATIONS_FACTOR):  # noqa: B007 - g is returned
        if len(used) >= budget:
            break
        x, points, names, fresh = proposals(
            proposer.ask(population, progress=len(used) / budget), space, used, budget)
        first = set(fresh)
        for u, p, nm in zip(x, points, names, strict=True):
            c = Candidate(len(cands), g, nm, p, tuple(float(v) for v in u))
            cands.append(c)
            if nm in first:
                first.discard(nm)
                if nm not in outcomes:
                    free.append(c)
        used.update(dict.fromkeys(fresh))
        unknown = [nm for nm in fresh if outcomes.get(nm) is None]
        if unknown:
            complete = False
            if proposer.needs_scores:
                return Plan(tuple(cands), tuple(free), False, g)
        proposer.tell(x, [math.inf if outcomes.get(nm) is None else float(outcomes[nm])
                          for nm in names])
    else:
        g += 1
    return Plan(tuple(cands), tuple(free), complete, g)
