"""A search on the sweep engine: each candidate a trial of the search's Optuna study.

    DIR/study.db                                             the study (default storage)
    DIR/search.json                                          every candidate, its score
    DIR/hidden_size=23,clip_norm=0.5,learning_rate=0.0143/   one training
    ...

`SearchWorker` is the sweep's `Worker` (claim, heartbeat, train in the run's
folder, tell, retry a lost worker's run from its checkpoint, multi-host
broadcast) whose next trial comes from the study's sampler: it asks the study
(`study.ask`, which hands out a retried copy first), turns the sampled params
into config overrides and trains them. For WOA it asks only when the replayed
plan has a free run (while a generation is trained elsewhere it waits); for
TPE and CMA-ES while the budget has runs left. A proposal equal to a finished
run is told that run's score at once (a free repeat, user attribute
REPEAT_ATTR); two workers that sampled the same run at once leave it to one
(the other trial PRUNED with `duplicate_of`).

The study's user attributes hold the search's settings, base config and folder,
so the log (`search_log`) and the report are rebuilt from the study alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from gru_jax.harness.config import apply_overrides, config_to_dict
from gru_jax.harness.errors import ConfigError, WorkdirError
from gru_jax.harness.files import SEARCH_FILE
from gru_jax.harness.keys import flatten
from gru_jax.harness.search.log import (  # noqa: F401 - score, search_log: public here too
    BASE_ATTR,
    IDLE_ATTR,
    REPEAT_ATTR,
    SETTINGS_ATTR,
    WORKDIR_ATTR,
    score,
    search_log,
    write_log,
)
from gru_jax.harness.search.plan import MAX_GENERATIONS_FACTOR, generations_of, replay
from gru_jax.harness.search.sampler import (
    CANDIDATE_ATTR,
    SAMPLERS,
    make_sampler,
    outcomes_of,
)
from gru_jax.harness.search.space import Dim, distributions, make_space, snap_point
from gru_jax.harness.search.woa import PROPOSERS
from gru_jax.harness.sweep import points as points_
from gru_jax.harness.sweep.queue import (
    DIR_ATTR,
    DUPLICATE_ATTR,
    OWNER_ATTR,
    POINT_ATTR,
    drop_duplicate,
    owner,
    point_of,
    requeue,
)
from gru_jax.harness.sweep.worker import Job, Worker


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """What a search worker needs besides the base config, picklable."""

    method: str  # a sampler name (SAMPLERS)
    space: tuple[Dim, ...]
    budget: int  # distinct runs
    population: int
    seed: int
    study: str  # the study's name in the storage

    @property
    def settings(self) -> dict[str, Any]:
        """search.json's settings (a resumed search must have the same)."""
        return {"method": self.method, "seed": self.seed, "population": self.population,
                "budget": self.budget, "space": {d.key: d.to_json() for d in self.space}}


def default_study(method: str, seed: int) -> str:
    return f"search-{method}-seed{seed}"


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


def check_ints(**values: tuple[Any, int]) -> None:
    """Each --NAME=(value, least) must be an int >= least."""
    for name, (value, least) in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"--{name}: must be an int >= {least}, got {value!r}")


# ---------------------------------------------------------------- the worker


@contextlib.contextmanager
def _quiet_ask():
    # study.ask warns that heartbeats are meant for study.optimize; the worker beats
    # for its trials itself (Worker._train), so the warning says nothing here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _suggest(trial: optuna.Trial, name: str, d) -> Any:
    """The sampler's value for one key of the space (Optuna's public suggest API)."""
    if isinstance(d, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, d.low, d.high, log=d.log)
    return trial.suggest_float(name, d.low, d.high, log=d.log)


class SearchWorker(Worker):
    """The sweep's Worker whose trials come from the search's sampler (see the
    module docstring). `spec`: the search; the study's sampler must be
    `make_sampler` of the same spec (`open_search` makes it)."""

    def __init__(self, study: optuna.Study | None, workdir, config, spec: SearchSpec,
                 train_fn=None, *, validate=None, log: Callable[[str], None] | None = None,
                 poll: float = 0.5):
        super().__init__(study, workdir, config, None, train_fn, validate=validate, log=log,
                         poll=poll)
        self.spec = spec
        self.dists = distributions(spec.space)

    def _may_ask(self, trials: Sequence[FrozenTrial]) -> bool:
        """True while the sampler has a run to propose now."""
        s = self.spec
        if s.method in PROPOSERS:
            return bool(replay(s.method, s.space, s.budget, s.population, s.seed,
                               outcomes_of(trials)).free)
        runs = {t.user_attrs[POINT_ATTR] for t in trials
                if POINT_ATTR in t.user_attrs and DUPLICATE_ATTR not in t.user_attrs}
        cap = MAX_GENERATIONS_FACTOR * generations_of(s.budget, s.population) * s.population
        return len(runs) < s.budget and len(trials) < cap

    def _claim(self, like: Job | None = None) -> Job | None:
        """The sampler's next run (`like` is not honoured: the sampler chooses; a run
        that does not pack with it is trained after the pack)."""
        storage = self.study._storage
        while True:
            trials = self.study.get_trials(deepcopy=False)
            if not any(t.state == TrialState.WAITING for t in trials) and \
                    not self._may_ask(trials):
                return None
            with _quiet_ask():
                trial = self.study.ask()  # a waiting retry first, else a new trial
            tid = trial._trial_id
            storage.set_trial_system_attr(tid, OWNER_ATTR, owner())
            if is_heartbeat_enabled(storage):
                storage.record_heartbeat(tid)
            frozen = storage.get_trial(tid)
            if POINT_ATTR in frozen.user_attrs:  # a lost or preempted run, retried
                if drop_duplicate(self.study, frozen):
                    continue
                return self._job(frozen)
            cand = frozen.system_attrs.get(CANDIDATE_ATTR)
            if self.spec.method in PROPOSERS and not cand:
                # Another worker took the generation's last free run between our plan and
                # this trial: drop it unsampled and wait for the generation.
                storage.set_trial_user_attr(tid, IDLE_ATTR, True)
                storage.set_trial_state_values(tid, state=TrialState.PRUNED)
                return None
            params = {k: _suggest(trial, k, d) for k, d in self.dists.items()}
            point = dict(cand["overrides"]) if cand else snap_point(self.spec.space, params)
            key = points_.canonical(point)
            prior = next((t for t in trials if t.state == TrialState.COMPLETE
                          and t.user_attrs.get(POINT_ATTR) == key
                          and DUPLICATE_ATTR not in t.user_attrs), None)
            if prior is not None:  # a repeat of a finished run: its score, for free
                storage.set_trial_user_attr(tid, REPEAT_ATTR, prior.number)
                storage.set_trial_user_attr(tid, DIR_ATTR, prior.user_attrs[DIR_ATTR])
                self.study.tell(trial, prior.value)
                continue
            # Folder first: another worker reading the study between these two writes
            # takes a trial with POINT_ATTR for an engine run and reads its DIR_ATTR.
            storage.set_trial_user_attr(tid, DIR_ATTR, points_.point_dir(point))
            storage.set_trial_user_attr(tid, POINT_ATTR, key)
            other = self._held_elsewhere(tid, key)
            if other is not None:
                # Sampled at the same moment by another worker: leave the run to one of
                # us (both may step back; the sampler proposes it again next time).
                storage.set_trial_user_attr(tid, DUPLICATE_ATTR, other)
                storage.set_trial_state_values(tid, state=TrialState.PRUNED)
                time.sleep(random.uniform(0, self.poll))
                continue
            job = self._job(storage.get_trial(tid))
            where = f"generation {cand['generation']}, candidate {cand['index']}" \
                if self.spec.method in PROPOSERS else f"trial {frozen.number}"
            self.say(f"{self.spec.method} {where}: {self._name(job)}")
            return job

    def _held_elsewhere(self, tid: int, key: str) -> int | None:
        """The number of another live trial of the same run, if any."""
        for t in self.study.get_trials(deepcopy=False):
            if (t._trial_id != tid and t.user_attrs.get(POINT_ATTR) == key
                    and DUPLICATE_ATTR not in t.user_attrs
                    and t.state in (TrialState.WAITING, TrialState.RUNNING,
                                    TrialState.COMPLETE)):
                return t.number
        return None

    def _job(self, trial: FrozenTrial) -> Job:
        point = points_.expand([point_of(trial)])[0]
        return Job(trial, point, self.workdir / trial.user_attrs[DIR_ATTR],
                   apply_overrides(self.config, points_.overrides_of(point)))


# ---------------------------------------------------------------- the study


def open_search(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
                spec: SearchSpec, storage: str | None = None, *, retry_failed: bool = False,
                **storage_kw) -> optuna.Study:
    """The search's study (created, or joined when its settings, base config and
    folder are the same: else WorkdirError), with the spec's sampler. With
    `retry_failed`, a run the trainer failed is put back in the queue (a
    launcher's rerun tries it again, as a sweep's does)."""
    from gru_jax.harness.sweep import storage as storage_

    workdir = Path(workdir)
    st = storage_.open_storage(storage, workdir, **storage_kw)
    sampler = make_sampler(spec.method, spec.space, spec.budget, spec.population, spec.seed)
    study = storage_.open_study(st, spec.study, sampler=sampler)
    settings = {**spec.settings, "steps": int(config.train.steps)}
    base, here = config_to_dict(config), str(workdir.resolve())
    attrs = study.user_attrs
    hint = "use a new --workdir (or --study), or the same settings to resume"
    if SETTINGS_ATTR in attrs:
        if attrs.get(WORKDIR_ATTR) != here:
            raise WorkdirError(f"study {spec.study}: holds the search in "
                               f"{attrs.get(WORKDIR_ATTR)}; {hint}")
        _check_same(workdir, attrs[SETTINGS_ATTR], settings, attrs.get(BASE_ATTR), base, hint)
    else:
        study.set_user_attr(SETTINGS_ATTR, settings)
        study.set_user_attr(BASE_ATTR, base)
        study.set_user_attr(WORKDIR_ATTR, here)
    if retry_failed:
        for trials in _trials_by_run(study).values():
            if trials and all(t.state == TrialState.FAIL and t.user_attrs.get("status") ==
                              "failed" for t in trials):
                requeue(study, trials[-1])
    return study


def _trials_by_run(study: optuna.Study) -> dict[str, list[FrozenTrial]]:
    out: dict[str, list[FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        if POINT_ATTR in t.user_attrs and DUPLICATE_ATTR not in t.user_attrs:
            out.setdefault(t.user_attrs[POINT_ATTR], []).append(t)
    return out


def _check_same(workdir: Path, old: Mapping, settings: Mapping, old_base, base,
                hint: str) -> None:
    """A search already in `workdir` must be this search: same settings and base
    config (else its candidates would score a different question)."""
    for key, value in settings.items():
        if old.get(key) != value:
            raise WorkdirError(f"{workdir}: holds a different search ({key} "
                               f"{old.get(key)!r}, now {value!r}); {hint}")
    was, now = flatten(old_base or {}), flatten(base)
    diff = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
    if old_base is not None and diff:
        k = diff[0]
        raise WorkdirError(f"{workdir}: holds a search over a different config ({k} "
                           f"{was.get(k)!r}, now {now.get(k)!r}); {hint}")


def check_resume(workdir: Path, settings: dict, base_config: dict) -> None:
    """search.json already in `workdir` (this engine's or the old driver's) must
    be this search's."""
    try:
        old = json.loads((workdir / SEARCH_FILE).read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        raise WorkdirError(f"{workdir / SEARCH_FILE}: unreadable ({e})") from e
    _check_same(workdir, old, settings, old.get("base_config"), base_config,
                "use a new --workdir, or the same settings to resume")


# ---------------------------------------------------------------- the driver


def load_search_space(config_file: str | os.PathLike, arg: str | None = None):
    """`get_search_space()` (or `get_search_space(arg)`) of an experiment file;
    ConfigError if it has none."""
    import inspect

    get = getattr(points_.load_experiment(config_file), "get_search_space", None)
    if get is None:
        raise ConfigError(f"--config: {config_file} has no get_search_space()")
    takes_arg = len(inspect.signature(get).parameters) > 0
    return get(arg) if (takes_arg and arg is not None) else get()


def prepare(config, workdir, space, method, budget, population, seed, *, budget_steps=None,
            validate=None, study: str | None = None) -> SearchSpec:
    """The checked SearchSpec (every bad input one ConfigError, before anything runs)."""
    if method not in SAMPLERS:
        raise ConfigError(f"--sampler: must be one of {', '.join(SAMPLERS)}, got {method!r}")
    space = make_space(space)
    budget = budget_candidates(budget, budget_steps, int(config.train.steps))
    check_ints(population=(population, 1), seed=(seed, 0))
    from gru_jax.harness.search.space import from_unit

    # Both corners through the config's own checks: a bad key or bound fails
    # before anything trains.
    points_.expand([from_unit(space, [0.0] * len(space)),
                    from_unit(space, [1.0] * len(space))], config, validate)
    workdir = Path(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkdirError(f"{workdir}: cannot create the search folder ({e})") from e
    spec = SearchSpec(method, space, budget, population, seed,
                      study or default_study(method, seed))
    check_resume(workdir, {**spec.settings, "steps": int(config.train.steps)},
                 config_to_dict(config))
    return spec


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
    train_fn: Callable | None = None,
    validate: Callable[[ml_collections.ConfigDict], Any] | None = None,
    log: Callable[[str], None] | None = None,
    storage: str | None = None,
    study: str | None = None,
    workers: int = 1,
    poll: float = 0.5,
    **storage_kw,
) -> dict[str, Any]:
    """Searches `space` over `config` with the sampler `method` (SAMPLERS: "woa",
    "random", "tpe", "cmaes") and returns the search log (`search_log`; also in
    ``workdir/search.json``).

    Each candidate is a trial of the study `study` (default
    search-METHOD-seedSEED) in `storage` (default DIR/study.db), trained by
    `train_fn(config, run_dir)` (default gru_jax.harness.train.train_and_evaluate)
    in its own folder, with the same train.steps. `budget` (or budget_steps //
    train.steps) counts distinct runs: a proposal equal to an earlier candidate
    reuses its run for free, so the search never trains more. `workers` > 1
    starts that many worker processes here (the default trainer only), which
    share the study; a copy of this call elsewhere on the same storage joins it.
    Started again, the search reuses every finished run and replays to the same
    result; a failed run is trained again.
    """
    spec = prepare(config, workdir, space, method, budget, population, seed,
                   budget_steps=budget_steps, validate=validate, study=study)
    workdir = Path(workdir)
    check_ints(workers=(workers, 1))
    if workers > 1 and train_fn is not None:
        raise ValueError("run_search: train_fn runs in one process; workers > 1 use the "
                         "default trainer")
    study_ = open_search(config, workdir, spec, storage, retry_failed=True, **storage_kw)
    write_log(workdir, {**search_log(study_), "storage": storage})
    say = log or (lambda msg: print(msg, flush=True))
    say(f"{spec.method} search, seed {spec.seed}: budget {spec.budget} runs, "
        f"population {spec.population}; study {spec.study}")
    if workers > 1:
        from gru_jax.harness.sweep import executor

        code = executor.run_local(executor.WorkerSpec(
            config, None, None, str(workdir), storage, search=spec, poll=poll,
            **{k: storage_kw[k] for k in ("heartbeat", "grace") if k in storage_kw}), workers)
        trained, preempted = set(), code == executor.EXIT_PREEMPTED
    else:
        w = SearchWorker(study_, workdir, config, spec, train_fn, validate=validate, log=say,
                         poll=poll)
        ran = w.run()
        trained = {points_.point_dir(p) for p, _ in ran}
        preempted = w.preempted
    log_ = {**search_log(study_, trained, preempted), "storage": storage}
    write_log(workdir, log_)
    return log_


def submit_search(config: ml_collections.ConfigDict, workdir: str | os.PathLike, space,
                  method: str = "woa", budget: int | None = None, population: int = 8,
                  seed: int = 0, *, workers: int = 1, budget_steps: int | None = None,
                  storage: str | None = None, study: str | None = None,
                  cluster: str | None = None, **slurm) -> list:
    """`run_search`'s checks and study, then `workers` search workers as one SLURM job
    array (`sweep.executor.run_slurm`: submitit, requeued at the time limit); the
    jobs, not waited for. The log: ``scripts/search.py --workdir=DIR --report``."""
    from gru_jax.harness.sweep import executor

    spec = prepare(config, workdir, space, method, budget, population, seed,
                   budget_steps=budget_steps, study=study)
    check_ints(workers=(workers, 1))
    study_ = open_search(config, workdir, spec, storage, retry_failed=True)
    write_log(Path(workdir), {**search_log(study_), "storage": storage})
    return executor.run_slurm(executor.WorkerSpec(config, None, None, str(workdir), storage,
                                                  search=spec), workers, cluster=cluster,
                              **slurm)
