"""Search beyond grids: random search and the whale optimization algorithm (WOA).

A search tunes a few config keys (e.g. learning rate, hidden size, clipping
norm) within a fixed budget of trainings. Its pieces:

- a search space, ``{dotted key: (low, high, scale, type)}`` with scale "log" or
  "linear" and type int or float (`make_space`), and the map between the unit
  cube [0, 1]^d and config overrides (`from_unit`, `to_unit`);
- proposers with an ask/tell interface over the unit cube (`RandomSearch`,
  `WhaleSearch`), each driven by a numpy Generator seeded from one seed, so the
  same seed and the same scores give the same proposals;
- the driver `run_search`, which asks a generation of candidates, trains each
  with the project's one trainer in its own subfolder (named by
  `gru_jax.harness.sweep.point_name`, run through `gru_jax.harness.sweep.run_sweep`:
  each candidate a trial of the folder's Optuna study, with the same
  skip-if-finished, retries and failure records as a sweep), scores them from
  their summaries and tells the proposer::

    DIR/search.json                                          every candidate, its score
    DIR/hidden_size=23,clip_norm=0.5,learning_rate=0.0143/   one training
    ...

The budget counts trainings: a proposal that maps to an earlier candidate's
overrides (WOA's whales often land on X* or, clipped, on a face of the cube)
reuses that run's score, is logged, and costs nothing; the search stops once
`budget` distinct runs are used (or after MAX_GENERATIONS_FACTOR times the
nominal budget / population generations).

Scores are minimised: the final eval metric of a ``done`` run (mse as is,
accuracy negated); a diverged or failed run scores +inf (the worst) and the
search goes on. Started again in the same folder, a search replays its
proposals from the seed and reuses every finished (done or diverged)
candidate's summary, so it reaches the same result without training those
again; a failed or preempted candidate is trained again, as in a sweep.

The whale optimization algorithm (Mirjalili & Lewis 2016, Advances in
Engineering Software 95) moves a population of P "whales" X_i in [0, 1]^d
around the best position found so far, X*. With a falling linearly from 2
to 0 over the search (a = 2 (1 - s / B) after s of the budget's B trainings;
2 (1 - g / G) at generation g of G when no proposal repeats an earlier one),
and per whale the uniform draws r1, r2, p in [0, 1] and l in [-1, 1]::

    A = 2 a r1 - a,  C = 2 r2
    p <  0.5, |A| <  1:  X_i' = X* - A |C X* - X_i|              (encircling prey)
    p <  0.5, |A| >= 1:  X_i' = X_r - A |C X_r - X_i|            (search for prey,
                                                                 X_r a random whale)
    p >= 0.5:            X_i' = |X* - X_i| e^{b l} cos(2 pi l) + X*  (bubble-net spiral, b = 1)

then clipped to the cube. Early on (a near 2) |A| >= 1 is common and whales
explore around random members; late (a near 0) they close in on X*.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from gru_jax.harness import sweep
from gru_jax.harness.config import config_to_dict
from gru_jax.harness.errors import ConfigError, WorkdirError
from gru_jax.harness.files import SEARCH_FILE, write_json_atomic
from gru_jax.harness.keys import flatten
from gru_jax.harness.metrics import higher_is_better, minimised
from gru_jax.harness.summary import RunSummary, read_summary

SEARCH_LOCK = ".search.lock"  # no longer written: the study in DIR is the queue
METHODS = ("woa", "random")
SIG_DIGITS = 3  # float values are rounded so folder names stay short and readable
MAX_GENERATIONS_FACTOR = 4  # a search whose proposals keep repeating stops at 4x the generations


# ---------------------------------------------------------------- search space


@dataclass(frozen=True)
class Dim:
    """One searched config key: values in [low, high] on a log or linear scale."""

    key: str
    low: float
    high: float
    scale: str = "log"  # "log" | "linear"
    integer: bool = False

    def to_json(self) -> list:
        return [self.low, self.high, self.scale, "int" if self.integer else "float"]


def make_space(spec: Mapping[str, Sequence[Any]] | Sequence[Dim]) -> tuple[Dim, ...]:
    """A checked search space from ``{key: (low, high, scale, type)}``.

    `scale` is "log" or "linear" (default "log"), `type` int or float (or their
    names; default float). ConfigError names a bad entry.

    >>> make_space({"model.hidden_size": (8, 64, "log", int)})[0].integer
    True
    """
    if isinstance(spec, Mapping):
        dims = []
        for key, entry in spec.items():
            if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or \
                    not 2 <= len(entry) <= 4:
                raise ConfigError(f"search space {key}: want (low, high, scale, type), "
                                  f"got {entry!r}")
            low, high, *rest = entry
            scale = rest[0] if rest else "log"
            kind = rest[1] if len(rest) > 1 else float
            if kind not in (int, float, "int", "float"):
                raise ConfigError(f"search space {key}: type must be int or float, got {kind!r}")
            dims.append(Dim(key, low, high, scale, kind in (int, "int")))
    else:
        dims = list(spec)
    if not dims:
        raise ConfigError("search space: no keys to search")
    for d in dims:
        if not isinstance(d.key, str) or not d.key or any(not p for p in d.key.split(".")):
            raise ConfigError(f"search space: bad key {d.key!r} (want e.g. 'model.hidden_size')")
        for name, v in (("low", d.low), ("high", d.high)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"search space {d.key}: {name} must be a finite number, "
                                  f"got {v!r}")
        if not d.low < d.high:
            raise ConfigError(f"search space {d.key}: need low < high, got {d.low}, {d.high}")
        if d.scale not in ("log", "linear"):
            raise ConfigError(f"search space {d.key}: scale must be log or linear, "
                              f"got {d.scale!r}")
        if d.scale == "log" and d.low <= 0:
            raise ConfigError(f"search space {d.key}: a log scale needs low > 0, got {d.low}")
        if d.integer and math.ceil(d.low) > math.floor(d.high):
            raise ConfigError(f"search space {d.key}: no integer in [{d.low}, {d.high}]")
    keys = [d.key for d in dims]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"search space: a key appears twice in {keys}")
    return tuple(dims)


def _round_sig(x: float, digits: int = SIG_DIGITS) -> float:
    return float(f"{x:.{digits - 1}e}") if x else 0.0


def from_unit(space: Sequence[Dim], u: Sequence[float]) -> dict[str, Any]:
    """Config overrides for a point u [d] of the unit cube (clipped to it first).

    u_j = 0 is `low` and 1 is `high`, linear in the value or in its log. Ints
    are rounded to the nearest integer, floats to SIG_DIGITS significant
    digits, both kept within [low, high].
    """
    u = np.clip(np.asarray(u, np.float64), 0.0, 1.0)
    if u.shape != (len(space),):
        raise ValueError(f"from_unit: want a point of shape [{len(space)}], got {u.shape}")
    out: dict[str, Any] = {}
    for d, uj in zip(space, u, strict=True):
        if d.scale == "log":
            v = math.exp(math.log(d.low) + uj * (math.log(d.high) - math.log(d.low)))
        else:
            v = d.low + uj * (d.high - d.low)
        if d.integer:
            out[d.key] = int(min(max(round(v), math.ceil(d.low)), math.floor(d.high)))
        else:
            out[d.key] = min(max(_round_sig(v), d.low), d.high)
    return out


def to_unit(space: Sequence[Dim], overrides: Mapping[str, Any]) -> np.ndarray:
    """The point u [d] of the unit cube for overrides (values clipped to [low, high])."""
    u = np.empty(len(space))
    for j, d in enumerate(space):
        v = min(max(float(overrides[d.key]), d.low), d.high)
        if d.scale == "log":
            u[j] = (math.log(v) - math.log(d.low)) / (math.log(d.high) - math.log(d.low))
        else:
            u[j] = (v - d.low) / (d.high - d.low)
    return np.clip(u, 0.0, 1.0)


# ---------------------------------------------------------------- proposers


class RandomSearch:
    """Uniform proposals in the unit cube; `tell` only keeps the best.

    With the same seed its first P proposals are WhaleSearch's initial
    population, so the two methods start from the same candidates.
    """

    def __init__(self, dim: int, seed: int):
        self.dim = dim
        self.rng = np.random.default_rng(seed)
        self.best_x: np.ndarray | None = None
        self.best_score = math.inf

    def ask(self, n: int, progress: float | None = None) -> np.ndarray:
        """n proposals [n, dim] in [0, 1] (`progress` is unused)."""
        return self.rng.random((n, self.dim))

    def tell(self, x: np.ndarray, scores: Sequence[float]) -> None:
        """Scores [n] of the proposals x [n, dim] (lower is better; inf: failed)."""
        _update_best(self, x, scores)


def _update_best(proposer, x: np.ndarray, scores: Sequence[float]) -> None:
    scores = np.asarray(scores, np.float64)
    if scores.size and np.isfinite(scores).any():
        i = int(np.nanargmin(np.where(np.isfinite(scores), scores, np.inf)))
        if scores[i] < proposer.best_score:  # strict: ties keep the earlier (replay-stable)
            proposer.best_x, proposer.best_score = np.array(x[i]), float(scores[i])


def woa_a(generation: int, generations: int) -> float:
    """a = 2 (1 - g / G): 2 at the start, falling linearly towards 0 (Mirjalili's
    reference code uses a = 2 - t (2 / Max_iter) at iteration t)."""
    return 2.0 * (1.0 - generation / generations)


def woa_update(positions: np.ndarray, leader: np.ndarray, a: float,
               rng: np.random.Generator, b: float = 1.0) -> np.ndarray:
    """One WOA move of every whale: positions [P, d], leader X* [d] -> new [P, d].

    Per whale i (scalars A and C per whale, as in the authors' reference code)::

        A = 2 a r1 - a, C = 2 r2, r1, r2, p ~ U[0, 1], l ~ U[-1, 1]
        p <  0.5, |A| <  1:  X* - A |C X* - X_i|
        p <  0.5, |A| >= 1:  X_r - A |C X_r - X_i|, X_r a uniformly drawn whale
        p >= 0.5:            |X* - X_i| e^{b l} cos(2 pi l) + X*

    The result is clipped to [0, 1]. Pure given the generator's state: the draws
    are taken in a fixed order (r1, r2, p, l, r), P of each.
    """
    x = np.asarray(positions, np.float64)
    leader = np.asarray(leader, np.float64)
    n = x.shape[0]
    r1, r2, p = rng.random(n), rng.random(n), rng.random(n)
    l = rng.uniform(-1.0, 1.0, n)  # noqa: E741 - the paper's name
    r = rng.integers(0, n, n)
    A, C = (2 * a * r1 - a)[:, None], (2 * r2)[:, None]
    encircle = leader - A * np.abs(C * leader - x)
    x_rand = x[r]
    explore = x_rand - A * np.abs(C * x_rand - x)
    spiral = (np.abs(leader - x) * (np.exp(b * l) * np.cos(2 * np.pi * l))[:, None] + leader)
    new = np.where((p < 0.5)[:, None],
                   np.where(np.abs(A) < 1, encircle, explore),
                   spiral)
    return np.clip(new, 0.0, 1.0)


class WhaleSearch:
    """The whale optimization algorithm as an ask/tell proposer over [0, 1]^dim.

    Generation 0 is `population` uniform points; generation g >= 1 moves the
    previous generation's whales with `woa_update` around the best point told so
    far, at a = 2 (1 - progress) when `ask` is given the fraction of the budget
    spent, else at a = `woa_a(g, generations)`. Whales keep their moved positions whatever
    they score (no greedy selection, as in the paper). If nothing has scored yet
    (every candidate failed), the population is drawn afresh.
    """

    def __init__(self, dim: int, population: int, generations: int, seed: int,
                 b: float = 1.0):
        if population < 1 or generations < 1:
            raise ValueError("WhaleSearch: population and generations must be >= 1")
        self.dim, self.population, self.generations, self.b = dim, population, generations, b
        self.rng = np.random.default_rng(seed)
        self.generation = 0
        self.positions: np.ndarray | None = None
        self.best_x: np.ndarray | None = None
        self.best_score = math.inf

    def ask(self, n: int | None = None, progress: float | None = None) -> np.ndarray:
        """The next generation's first n (default all P) whales [n, dim]; `progress`
        in [0, 1] is the fraction of the budget spent (sets a)."""
        n = self.population if n is None else n
        if n > self.population:
            raise ValueError(f"WhaleSearch.ask: at most {self.population} per generation")
        if self.positions is None or self.best_x is None:
            self.positions = self.rng.random((self.population, self.dim))
        else:
            a = (woa_a(self.generation, self.generations) if progress is None
                 else 2.0 * (1.0 - min(max(progress, 0.0), 1.0)))
            self.positions = woa_update(self.positions, self.best_x, a, self.rng, self.b)
        return self.positions[:n].copy()

    def tell(self, x: np.ndarray, scores: Sequence[float]) -> None:
        """Scores [n] of the last `ask` (lower is better; inf: failed)."""
        _update_best(self, x, scores)
        self.generation += 1


def make_proposer(method: str, dim: int, population: int, generations: int, seed: int):
    """RandomSearch or WhaleSearch by name ("random" | "woa")."""
    if method == "random":
        return RandomSearch(dim, seed)
    if method == "woa":
        return WhaleSearch(dim, population, generations, seed)
    raise ConfigError(f"--method: must be one of {', '.join(METHODS)}, got {method!r}")


# ---------------------------------------------------------------- objective, budget


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


def budget_candidates(budget: int | None, budget_steps: int | None, steps: int) -> int:
    """Candidate trainings allowed: `budget`, or budget_steps // steps (each
    candidate trains `steps` = train.steps). Exactly one must be given."""
    if (budget is None) == (budget_steps is None):
        raise ConfigError("--budget or --budget_steps: give exactly one")
    if budget is None:
        if isinstance(budget_steps, bool) or not isinstance(budget_steps, int) or \
                budget_steps < steps:
            raise ConfigError(f"--budget_steps: must be an int >= train.steps ({steps}), "
                              f"got {budget_steps!r}")
        return budget_steps // steps
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"--budget: must be a positive int, got {budget!r}")
    return budget


# ---------------------------------------------------------------- the driver


def _settings(method, seed, population, budget, space, config) -> dict:
    return {"method": method, "seed": seed, "population": population, "budget": budget,
            "space": {d.key: d.to_json() for d in space},
            "steps": int(config.train.steps)}


def _check_resume(workdir: Path, settings: dict, base_config: dict) -> None:
    """A search.json already in `workdir` must be this search's: same settings and
    base config (else its candidates would score a different question)."""
    try:
        old = json.loads((workdir / SEARCH_FILE).read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        raise WorkdirError(f"{workdir / SEARCH_FILE}: unreadable ({e})") from e
    hint = "use a new --workdir, or the same settings to resume"
    for key, value in settings.items():
        if old.get(key) != value:
            raise WorkdirError(f"{workdir}: holds a different search ({key} "
                               f"{old.get(key)!r}, now {value!r}); {hint}")
    was, now = flatten(old.get("base_config") or {}), flatten(base_config)
    diff = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
    if old.get("base_config") is not None and diff:
        k = diff[0]
        raise WorkdirError(f"{workdir}: holds a search over a different config ({k} "
                           f"{was.get(k)!r}, now {now.get(k)!r}); {hint}")


def run_search(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    space: Mapping[str, Sequence[Any]] | Sequence[Dim],
    method: str = "woa",
    budget: int | None = None,
    population: int = 8,
    seed: int = 0,
    *,
    budget_steps: int | None = None,
    train_fn: sweep.TrainFn | None = None,
    validate: Callable[[ml_collections.ConfigDict], Any] | None = None,
    log: Callable[[str], None] | None = None,
    storage: str | None = None,
) -> dict[str, Any]:
    """Searches `space` over `config` with `method` ("woa" | "random") and returns
    the search log (also written to ``workdir/search.json`` after every generation)::

        {"method", "seed", "population", "budget", "generations", "space", "steps",
         "metric", "mode": "min" | "max", "status": "done" | "preempted",
         "candidates": [{"index", "generation", "name", "overrides", "unit" [d],
                         "status", "value" (final[metric] or None), "score",
                         "trained" (bool: trained by this call)}],
         "best": the best candidate (lowest score) or None}

    Each generation asks the proposer for `population` candidates; each new one
    is a point of `gru_jax.harness.sweep.run_sweep` (its own folder, skipped when its
    summary says done/diverged, failures recorded) trained by `train_fn(config,
    run_dir)` (default gru_jax.harness.train.train_and_evaluate) with the same
    train.steps. `budget` (or budget_steps // train.steps) counts distinct runs:
    a proposal equal to an earlier candidate reuses its run for free, and new
    proposals beyond the budget are dropped, so the search never trains more.

    The candidates of one generation are independent trainings: `run_sweep`
    gets them as one list, which is where packing or sharding them would go.
    """
    space = make_space(space)
    budget = budget_candidates(budget, budget_steps, int(config.train.steps))
    _check_ints(population=(population, 1), seed=(seed, 0))
    generations = math.ceil(budget / population)
    proposer = make_proposer(method, len(space), population, generations, seed)
    # Both corners through the config's own checks: a bad key or bound fails
    # before anything trains.
    sweep.expand([from_unit(space, np.zeros(len(space))),
                  from_unit(space, np.ones(len(space)))], config, validate)
    say = log or (lambda msg: print(msg, flush=True))

    workdir = Path(workdir)
    settings = _settings(method, seed, population, budget, space, config)
    _make_folder(workdir)
    # No lock: the folder's Optuna study is the queue; concurrent copies share its points.
    base = config_to_dict(config)
    _check_resume(workdir, settings, base)
    log_ = {**settings, "generations": generations, "metric": None, "mode": None,
            "status": "running", "candidates": [], "best": None, "base_config": base}
    summaries: dict[str, RunSummary | None] = {}  # name -> summary: the runs used so far
    for g in range(generations * MAX_GENERATIONS_FACTOR):
        if len(summaries) >= budget:
            break
        x, points, names, fresh = _proposals(
            proposer.ask(population, progress=len(summaries) / budget), space, summaries,
            budget)
        say(f"generation {g}: {len(points)} candidates ({len(fresh)} new runs, "
            f"{len(summaries) + len(fresh)}/{budget} of the budget; {method}, seed {seed})")
        results = _train_fresh(config, fresh, workdir, train_fn, validate, say, storage)
        if len(results) < len(fresh) or any(r["status"] == "preempted" for r in results):
            log_["status"] = "preempted"  # run_sweep stopped: the job is being taken away
            _finish_generation(workdir, log_)
            say("preempted: run the same command again to resume the search")
            return log_
        ran = {r["name"] for r in results if r["action"] == "ran"}
        summaries.update({r["name"]: r["summary"] for r in results})
        proposer.tell(x, _log_candidates(log_, g, x, points, names, summaries, ran))
        _finish_generation(workdir, log_)
    log_["status"] = "done"
    _finish_generation(workdir, log_)
    return log_


def _train_fresh(config, fresh: list[dict], workdir: Path, train_fn, validate, say,
                 storage: str | None = None) -> list:
    """The new candidates checked, then trained as points of the folder's Optuna
    study (gru_jax.harness.sweep: each point once, whoever runs it; another copy of
    this search in the same folder proposes the same candidates and shares them)."""
    if not fresh:
        return []
    results = sweep.run_sweep(config, fresh, workdir, train_fn, validate=validate, log=say,
                              storage=storage, write_plan=False, poll=0.5)
    if any(r.get("preempted") for r in results):
        return [r for r in results if r["action"] == "ran" and r["status"] != "preempted"]
    return results


def _check_ints(**values: tuple[Any, int]) -> None:
    """Each --NAME=(value, least) must be an int >= least."""
    for name, (value, least) in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"--{name}: must be an int >= {least}, got {value!r}")


def _make_folder(workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkdirError(f"{workdir}: cannot create the search folder ({e})") from e


def _proposals(x: np.ndarray, space, summaries: Mapping[str, Any], budget: int):
    """(x, points, names, fresh) of a generation's proposals x [P, d]: new runs in
    proposal order as many as the budget has left; a repeat of an earlier run is
    free (scored from it); the rest are dropped. `fresh`: the new runs' points."""
    points = [from_unit(space, u) for u in x]
    names = [sweep.point_name(p) for p in points]
    new = list(dict.fromkeys(nm for nm in names if nm not in summaries))
    allowed = set(new[:budget - len(summaries)])
    keep = [i for i, nm in enumerate(names) if nm in summaries or nm in allowed]
    points, names = [points[i] for i in keep], [names[i] for i in keep]
    fresh = list({nm: p for nm, p in zip(names, points, strict=True)
                  if nm not in summaries}.values())
    return x[keep], points, names, fresh


def _log_candidates(log_: dict, g: int, x, points, names, summaries, ran: set) -> list[float]:
    """Each candidate of generation `g` into the log (the metric from the first run
    that has one); their scores, in order."""
    scores = []
    for u, point, name in zip(x, points, names, strict=True):
        summary = summaries[name]
        if log_["metric"] is None and summary is not None and summary.metric:
            log_["metric"] = summary.metric
            log_["mode"] = "max" if higher_is_better(summary.metric) else "min"
        s = score(summary)
        log_["candidates"].append({
            "index": len(log_["candidates"]), "generation": g, "name": name,
            "overrides": point, "unit": [float(v) for v in u],
            "status": summary.status if summary is not None else None,
            "value": summary.final_value if math.isfinite(s) else None,
            "score": s if math.isfinite(s) else None,
            "trained": name in ran})
        ran.discard(name)  # a duplicate within the generation was not trained again
        scores.append(s)
    return scores


def _finish_generation(workdir: Path, log_: dict) -> None:
    """Best so far into the log, the log into search.json (whose candidates are
    also what scripts/report.py reads as the folder's planned runs)."""
    scored = [c for c in log_["candidates"] if c["score"] is not None]
    log_["best"] = min(scored, key=lambda c: c["score"]) if scored else None
    write_json_atomic(workdir / SEARCH_FILE, log_)


# ---------------------------------------------------------------- tables


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def format_table(log_: Mapping[str, Any], top: int | None = 5) -> str:
    """A markdown table of the `top` best runs (all when None), best first, failed
    and diverged last; a run proposed several times is one row (its first
    candidate's index and generation; `proposed`: how often)."""
    runs: dict[str, dict] = {}
    for c in log_["candidates"]:
        runs.setdefault(c["name"], {**c, "proposed": 0})["proposed"] += 1
    rows_ = sorted(runs.values(),
                   key=lambda c: (c["score"] is None, c["score"] or 0.0, c["index"]))
    if top is not None:
        rows_ = rows_[:top]
    keys = list(log_["space"])
    short = sweep.short_keys(keys)
    metric = log_.get("metric") or "score"
    head = ["#", "gen", *(short[k] for k in keys), "status", metric, "proposed"]
    rows = [[str(c["index"]), str(c["generation"]),
             *(_fmt_value(c["overrides"][k]) for k in keys),
             str(c["status"]), _fmt_value(c["value"]), str(c["proposed"])] for c in rows_]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def load_search_space(config_file: str | os.PathLike, arg: str | None = None):
    """`get_search_space()` (or `get_search_space(arg)`) of an experiment file;
    ConfigError if it has none."""
    import inspect

    get = getattr(sweep.load_experiment(config_file), "get_search_space", None)
    if get is None:
        raise ConfigError(f"--config: {config_file} has no get_search_space()")
    takes_arg = len(inspect.signature(get).parameters) > 0
    return get(arg) if (takes_arg and arg is not None) else get()


def compare(workdirs: Sequence[str | os.PathLike]) -> str:
    """A markdown table comparing finished searches (their search.json), one row
    per search, then per method the median and best of the searches' best values.

    Columns: method, seed, candidates, trained runs, best value, the candidate
    index where it was found, median of all candidates' values, runs at the
    task's solved threshold (when the summaries give one), failed or diverged
    runs, the search's training time (sum of its runs' wall_time_sec).
    """
    import statistics

    rows, by_method = [], {}
    for wd in workdirs:
        wd = Path(wd)
        try:
            log_ = json.loads((wd / SEARCH_FILE).read_text())
        except (OSError, ValueError) as e:
            raise WorkdirError(f"{wd / SEARCH_FILE}: unreadable ({e})") from e
        cands = log_["candidates"]
        values = [c["value"] for c in cands if c["value"] is not None]
        solved, wall = 0, 0.0
        for name in {c["name"] for c in cands}:
            s = read_summary(wd / name)
            solved += bool(s is not None and s.solved)
            wall += s.wall_time_sec if s is not None and s.wall_time_sec else 0.0
        best = log_["best"]
        rows.append([log_["method"], str(log_["seed"]), str(len(cands)),
                     str(len({c["name"] for c in cands})),
                     _fmt_value(best["value"] if best else None),
                     str(best["index"]) if best else "-",
                     _fmt_value(statistics.median(values) if values else None),
                     str(solved), str(len({c["name"] for c in cands if c["value"] is None})),
                     f"{wall:.0f} s"])
        if best:
            by_method.setdefault(log_["method"], []).append(best["value"])
    metric = next((json.loads((Path(w) / SEARCH_FILE).read_text()).get("metric")
                   for w in workdirs), None) or "score"
    head = ["method", "seed", "candidates", "runs trained", f"best {metric}", "found at #",
            f"median {metric}", "runs solved", "failed/diverged", "train time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", f"| method | searches | median of best {metric} | best {metric} |",
              "|---|---|---|---|"]
    for method, bests in by_method.items():
        pick = max if higher_is_better(metric) else min
        lines.append(f"| {method} | {len(bests)} | {_fmt_value(statistics.median(bests))} | "
                     f"{_fmt_value(pick(bests))} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m gru_jax.harness.search DIR [DIR ...]: the comparison table
    import sys

    print(compare(sys.argv[1:]))
