"""A search's log, rebuilt from its study and its runs' summaries (DIR/search.json)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from gru_jax.harness.files import SEARCH_FILE, write_json_atomic
from gru_jax.harness.metrics import higher_is_better, minimised
from gru_jax.harness.search.plan import MAX_GENERATIONS_FACTOR, generations_of, replay
from gru_jax.harness.search.sampler import outcomes_of
from gru_jax.harness.search.space import make_space, snap_point, to_unit
from gru_jax.harness.search.woa import PROPOSERS
from gru_jax.harness.summary import RunSummary, read_summary
from gru_jax.harness.sweep.queue import DIR_ATTR, DUPLICATE_ATTR, POINT_ATTR

SETTINGS_ATTR = "search"  # study user attribute: the search's settings (search.json's keys)
WORKDIR_ATTR = "search:workdir"  # study user attribute: the search's folder
BASE_ATTR = "search:base_config"
REPEAT_ATTR = "repeat_of"  # user attribute of a free repeat: the trial whose run it reuses
IDLE_ATTR = "no_candidate"  # user attribute of a trial asked when WOA had no free run left


def score(summary: RunSummary | None) -> float:
    """The minimised score of a run: its final metric (negated for one that goes
    up, `metrics.minimised`) when the run is done with a finite value, else +inf
    (failed, diverged, missing)."""
    if summary is None or summary.status != "done":
        return math.inf
    value = summary.final_value
    if value is None or not math.isfinite(value):
        return math.inf
    return minimised(summary.metric, float(value))



def search_log(study: optuna.Study, trained: set[str] | frozenset = frozenset(),
               preempted: bool = False) -> dict[str, Any]:
    """The search's log, rebuilt from its study and its runs' summaries::

        {"method", "seed", "population", "budget", "generations", "space", "steps",
         "study", "metric", "mode": "min" | "max",
         "status": "done" | "running" | "preempted",
         "candidates": [{"index", "generation", "name", "overrides", "unit" [d],
                         "status", "value" (final[metric] or None), "score",
                         "trained" (bool: trained by this process)}],
         "best": the best candidate (lowest score) or None, "base_config"}

    WOA and random search: every proposal of the replayed plan (repeats of a
    run included); TPE and CMA-ES: every trial that is a run or a repeat, in
    trial order (generation: index // population).
    """
    settings = study.user_attrs[SETTINGS_ATTR]
    workdir = Path(study.user_attrs[WORKDIR_ATTR])
    space = make_space({k: tuple(v) for k, v in settings["space"].items()})
    method, budget, population = settings["method"], settings["budget"], settings["population"]
    trials = study.get_trials(deepcopy=False)
    outcomes = outcomes_of(trials)
    if method in PROPOSERS:
        plan = replay(method, space, budget, population, settings["seed"], outcomes)
        cands = [(c.generation, c.name, c.overrides, list(c.unit)) for c in plan.candidates]
        finished = plan.finished
    else:
        cands, seen = [], set()
        for t in trials:
            key = t.user_attrs.get(POINT_ATTR)
            repeat = REPEAT_ATTR in t.user_attrs and t.state == TrialState.COMPLETE
            if not repeat and (key is None or key in seen or DUPLICATE_ATTR in t.user_attrs):
                continue
            if key is not None:
                seen.add(key)
            ov = snap_point(space, t.params)
            cands.append((len(cands) // population, t.user_attrs[DIR_ATTR], ov,
                          [float(v) for v in to_unit(space, ov)]))
        cap = MAX_GENERATIONS_FACTOR * generations_of(budget, population) * population
        finished = (len(seen) >= budget or len(trials) >= cap) and \
            all(v is not None for v in outcomes.values())
    log_ = {**settings, "generations": generations_of(budget, population),
            "study": study.study_name, "metric": None, "mode": None,
            "status": "done" if finished else "preempted" if preempted else "running",
            "candidates": [], "best": None, "base_config": study.user_attrs.get(BASE_ATTR)}
    summaries: dict[str, RunSummary | None] = {}
    first = set()
    for g, name, ov, unit in cands:
        if name not in summaries:
            known = outcomes.get(name) is not None
            summaries[name] = read_summary(workdir / name) if known else None
        summary = summaries[name]
        if log_["metric"] is None and summary is not None and summary.metric:
            log_["metric"] = summary.metric
            log_["mode"] = "max" if higher_is_better(summary.metric) else "min"
        s = score(summary)
        log_["candidates"].append({
            "index": len(log_["candidates"]), "generation": g, "name": name,
            "overrides": ov, "unit": unit,
            "status": summary.status if summary is not None else None,
            "value": summary.final_value if math.isfinite(s) else None,
            "score": s if math.isfinite(s) else None,
            "trained": name in trained and name not in first})
        first.add(name)
    scored = [c for c in log_["candidates"] if c["score"] is not None]
    log_["best"] = min(scored, key=lambda c: c["score"]) if scored else None
    return log_


def write_log(workdir: Path, log_: dict) -> None:
    """The log into search.json (whose candidates are also what scripts/report.py
    reads as the folder's planned runs)."""
    write_json_atomic(Path(workdir) / SEARCH_FILE, log_)
