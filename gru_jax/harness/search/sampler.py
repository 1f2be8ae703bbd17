"""The search's Optuna samplers: WOA and random search rebuilt from the study, TPE, CMA-ES.

`ReplaySampler` is an `optuna.samplers.BaseSampler` for the proposers of
`gru_jax.harness.search.woa`. It keeps no state between calls: asked for a
trial, it reads the study's trials, turns them into run outcomes
(`outcomes_of`), replays the proposer from its seed (`plan.replay`) and hands
the trial the first proposed run no trial holds yet. Any number of workers on
any machines may ask it; one that dies loses nothing. In the same order, one
worker asking one trial after another gets exactly the candidates of the
search's sequential driver.

A trial asked while WOA's generation is still being trained elsewhere has no
candidate (system attribute CANDIDATE_ATTR is None): the engine's worker never
trains it (it waits for the generation instead); plain `study.optimize` gets
an independent random sample for it, as Optuna's CMA-ES does outside its space.

TPE and CMA-ES are Optuna's own (`make_sampler`), seeded; they read the study
themselves and need nothing from us.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import optuna
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from gru_jax.harness.errors import ConfigError
from gru_jax.harness.search.plan import Candidate, Plan, replay
from gru_jax.harness.search.space import Dim, distributions
from gru_jax.harness.search.woa import PROPOSERS
from gru_jax.harness.sweep.queue import DIR_ATTR, DUPLICATE_ATTR, POINT_ATTR

SAMPLERS = ("woa", "random", "tpe", "cmaes")  # also gru_jax.harness.search.SAMPLERS
CANDIDATE_ATTR = "search:candidate"  # system attribute: the proposal a trial was given


def outcomes_of(trials: Iterable[FrozenTrial]) -> dict[str, float | None]:
    """{run name: score | None} from a search study's trials (see `plan.replay`).

    A run is finished when a trial of it is COMPLETE (its value, the minimised
    final metric; inf when diverged) or FAILED by the trainer (user attribute
    status "failed": inf) with no copy waiting or running; pending (None) while
    a trial of it waits or runs. A trial failed for its worker's sake (lost,
    preempted) does not count: its retry copy is the run's pending trial.
    Outside the engine (plain `study.optimize`), a trial is its candidate's run
    (CANDIDATE_ATTR) and a failed one is final.
    """
    done: dict[str, float] = {}
    failed: set[str] = set()
    pending: set[str] = set()
    for t in trials:
        if DUPLICATE_ATTR in t.user_attrs:
            continue
        engine = POINT_ATTR in t.user_attrs  # else a plain study.optimize's trial
        cand = t.system_attrs.get(CANDIDATE_ATTR)
        name = t.user_attrs[DIR_ATTR] if engine else cand["name"] if cand else None
        if name is None:
            continue
        if t.state == TrialState.COMPLETE:
            done.setdefault(name, math.inf if t.value is None else float(t.value))
        elif t.state in (TrialState.WAITING, TrialState.RUNNING):
            pending.add(name)
        elif t.state == TrialState.FAIL and (not engine or
                                             t.user_attrs.get("status") == "failed"):
            failed.add(name)
    out: dict[str, float | None] = dict.fromkeys(pending - set(done))
    out.update(dict.fromkeys(failed - pending - set(done), math.inf))
    out.update(done)
    return out


class ReplaySampler(BaseSampler):
    """WOA ("woa") or random search ("random") as an Optuna sampler whose state is
    a pure function of the study's finished trials (see the module docstring).

    `space`: the checked search space (`space.make_space`); the study's trials
    are over `space.distributions(space)`. `budget`: distinct runs in all;
    `population`: whales per generation (random search: proposals per
    generation, which only names the log's generation); `seed`: the proposer's.
    """

    def __init__(self, method: str, space: Sequence[Dim], budget: int, population: int,
                 seed: int):
        if method not in PROPOSERS:
            raise ConfigError(f"--sampler: a replayed proposer is one of "
                              f"{', '.join(PROPOSERS)}, got {method!r}")
        self.method, self.space = method, tuple(space)
        self.budget, self.population, self.seed = budget, population, seed
        self._fallback = RandomSampler(seed=seed)

    def plan(self, study: optuna.Study) -> Plan:
        """The search's plan from the study's trials now."""
        return replay(self.method, self.space, self.budget, self.population, self.seed,
                      outcomes_of(study.get_trials(deepcopy=False)))

    def infer_relative_search_space(self, study, trial) -> dict[str, Any]:
        return distributions(self.space)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # A retried copy or an enqueued trial already has its point.
        if trial.params or "fixed_params" in trial.system_attrs or \
                CANDIDATE_ATTR in trial.system_attrs:
            return
        free = self.plan(study).free
        study._storage.set_trial_system_attr(trial._trial_id, CANDIDATE_ATTR,
                                             candidate_json(free[0]) if free else None)

    def sample_relative(self, study, trial: FrozenTrial, search_space) -> dict[str, Any]:
        # From the storage: the trial Optuna passes here was read before before_trial.
        cand = study._storage.get_trial_system_attrs(trial._trial_id).get(CANDIDATE_ATTR)
        if not cand:
            return {}
        return {k: v for k, v in cand["overrides"].items() if k in search_space}

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)


def candidate_json(c: Candidate) -> dict[str, Any]:
    return {"index": c.index, "generation": c.generation, "name": c.name,
            "overrides": c.overrides, "unit": list(c.unit)}


def make_sampler(method: str, space: Sequence[Dim], budget: int, population: int,
                 seed: int) -> BaseSampler:
    """The search's sampler by name: "woa" | "random" (`ReplaySampler`), "tpe"
    (Optuna's TPESampler, its first `population` trials random) or "cmaes"
    (Optuna's CmaEsSampler, `population` candidates per generation; needs the
    `cmaes` package). Each seeded with `seed`."""
    if method in PROPOSERS:
        return ReplaySampler(method, space, budget, population, seed)
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=population,
                                          multivariate=True)
    if method == "cmaes":
        try:
            import cmaes  # noqa: F401 - Optuna's CmaEsSampler imports it lazily
        except ImportError as e:
            raise ConfigError("--sampler=cmaes: the cmaes package is missing; "
                              "pip install 'gru_jax[sweep]'") from e
        return optuna.samplers.CmaEsSampler(seed=seed, popsize=max(population, 2),
                                            warn_independent_sampling=False)
    raise ConfigError(f"--sampler: must be one of {', '.join(SAMPLERS)}, got {method!r}")
