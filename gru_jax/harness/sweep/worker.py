"""The sweep worker: claim the next waiting trial, train its point, tell the study.

Every point of a sweep is a trial of one Optuna study (`storage.open_study`),
enqueued in state WAITING with the point in its user attributes. Any number of
workers, on any machines that reach the storage, run `Worker.run`:

1. fail the trials of lost workers: Optuna's heartbeats (`fail_stale_trials`,
   with `RetryHeartbeatStaleTrialCallback` putting a WAITING copy back in the
   queue) and, on this host, a trial whose worker process is gone (same boot,
   pid and process start time: a reused pid does not look alive);
2. claim a WAITING trial: the storage's atomic WAITING -> RUNNING transition
   (Optuna's own queue pop), so two workers never get the same trial;
3. drop it if a lower-numbered, not failed trial holds the same point (two
   launchers enqueued it at once; the lowest one is the one that runs);
4. train it in ``DIR/<point folder>`` with a heartbeat, where the trainer
   resumes from the folder's checkpoint (a retried point goes on where the lost
   worker left it), and tell the study: COMPLETE with the run's score (its final
   metric, minimised) when the summary says done or diverged, FAIL otherwise;
5. ask the point source for new points (`PointSource.next`) and enqueue them.

It stops when nothing is waiting or running and the source has nothing new.
The run's folder, with summary.json, stays the record the report reads; the
study is the queue and the index.

In a multi-host job (`jax.process_count() > 1`) only process 0 talks to the
storage; it broadcasts each claimed point to the others, and all train it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import ml_collections
import optuna
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from gru_jax.harness.config import apply_overrides, config_to_dict
from gru_jax.harness.files import SWEEP_FILE, write_json_atomic
from gru_jax.harness.keys import PACK_KEYS
from gru_jax.harness.metrics import minimised
from gru_jax.harness.summary import RunSummary
from gru_jax.harness.sweep.points import (
    _summary_or_none,
    canonical,
    expand,
    format_summary,
    overrides_of,
    point_dir,
)
from gru_jax.harness.sweep.sources import PointSource
from gru_jax.harness.sweep.storage import BEAT_ATTR
from gru_jax.harness.sweep.training import (  # noqa: F401 - owner*: the engine's names here
    PackFn,
    TrainFn,
    default_pack_fn,
    default_train_fn,
    finished_before,
    owner,
    owner_gone,
    train_points,
)

POINT_ATTR = "point"  # user attribute: the point's canonical JSON (its identity)
DIR_ATTR = "dir"  # user attribute: its folder, relative to the sweep's
OWNER_ATTR = "gru_jax:owner"  # system attribute: the claiming process
DUPLICATE_ATTR = "duplicate_of"  # user attribute of a dropped duplicate (PRUNED)
PREEMPTED_ATTR = "gru_jax:preempted"  # system attribute of a requeued copy


# ---------------------------------------------------------------- the queue


def point_of(trial: FrozenTrial) -> dict | None:
    raw = trial.user_attrs.get(POINT_ATTR)
    return None if raw is None else json.loads(raw)


def trials_by_point(study: optuna.Study) -> dict[str, list[FrozenTrial]]:
    """The study's trials grouped by point identity, each list in trial order."""
    out: dict[str, list[FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get(POINT_ATTR)
        if key is not None and DUPLICATE_ATTR not in t.user_attrs:
            out.setdefault(key, []).append(t)
    return out


def enqueue(study: optuna.Study, points: Iterable[Mapping[str, Any]], *,
            retry_failed: bool) -> list[dict]:
    """Enqueue the points not in the study yet (by identity); with `retry_failed`
    also those whose every trial failed (a launcher's rerun tries them again).
    Returns the points enqueued. Two launchers racing here may both enqueue a
    point: the workers drop the higher-numbered copy (`Worker._is_duplicate`)."""
    have = trials_by_point(study)
    added = []
    for p in points:
        key = canonical(p)
        trials = have.get(key, [])
        if trials and not (retry_failed and all(t.state == TrialState.FAIL for t in trials)):
            continue
        study.enqueue_trial({}, user_attrs={POINT_ATTR: key, DIR_ATTR: point_dir(p)})
        have[key] = [*trials, None]  # noqa - only its presence matters below
        added.append(dict(p))
    return added


def reap(study: optuna.Study) -> int:
    """Fail the trials of lost workers and requeue their points; how many."""
    storage = study._storage
    n = 0
    if is_heartbeat_enabled(storage):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        with _quiet():
            optuna.storages.fail_stale_trials(study)
        n += len({t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
                 - before)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner_gone(t.system_attrs.get(OWNER_ATTR)):
            try:
                if not storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker reaped it first
            requeue(study, storage.get_trial(t._trial_id))
            n += 1
    return n


def requeue(study: optuna.Study, trial: FrozenTrial, **extra) -> None:
    """A WAITING copy of a failed trial, recorded as its retry the way Optuna's
    RetryHeartbeatStaleTrialCallback records one, so another worker resumes it."""
    attrs = {"failed_trial": trial.number, "retry_history": [], **trial.system_attrs, **extra}
    attrs["retry_history"] = [*attrs["retry_history"], trial.number]
    for k in (OWNER_ATTR, BEAT_ATTR):
        attrs.pop(k, None)
    study.add_trial(optuna.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs=trial.user_attrs, system_attrs=attrs))


@contextlib.contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def counts(study: optuna.Study) -> dict[str, int]:
    """Points by state: waiting, running, done (COMPLETE), failed (every trial
    failed and none waiting); each point counted once, by its latest trial."""
    out = {"waiting": 0, "running": 0, "done": 0, "failed": 0}
    for trials in trials_by_point(study).values():
        states = {t.state for t in trials}
        if TrialState.COMPLETE in states:
            out["done"] += 1
        elif TrialState.RUNNING in states:
            out["running"] += 1
        elif TrialState.WAITING in states:
            out["waiting"] += 1
        else:
            out["failed"] += 1
    return out


def status_line(study: optuna.Study, where: str) -> str:
    c = counts(study)
    return (f"{where}: {sum(c.values())} points: {c['waiting']} waiting, {c['running']} "
            f"running, {c['done']} done, {c['failed']} failed")


def score(summary: RunSummary | None) -> float:
    """A finished run's minimised final metric; +inf when it has none (diverged)."""
    import math

    if summary is None or summary.final_value is None or summary.status != "done":
        return math.inf
    value = float(summary.final_value)
    return minimised(summary.metric, value) if math.isfinite(value) else math.inf


# ---------------------------------------------------------------- the worker


@dataclasses.dataclass
class Job:
    """A claimed trial: its point, folder and resolved config."""

    trial: FrozenTrial | None  # None on the processes > 0 of a multi-host job
    point: dict
    run_dir: Path
    config: ml_collections.ConfigDict


class Worker:
    """Runs the points of one sweep's study until none is left (see the module
    docstring). `train_fn(config, workdir)` trains one point, `pack_fn(configs,
    workdirs)` several that differ only in PACK_KEYS (with `pack`)."""

    def __init__(self, study: optuna.Study, workdir: str | os.PathLike,
                 config: ml_collections.ConfigDict, source: PointSource | None = None,
                 train_fn: TrainFn | None = None, *, validate=None,
                 log: Callable[[str], None] | None = None, poll: float = 2.0,
                 pack: bool = False, pack_size: int = 8, pack_fn: PackFn | None = None):
        self.study, self.workdir, self.config = study, Path(workdir), config
        self.source, self.validate, self.poll = source, validate, poll
        self.train_fn = train_fn or default_train_fn()
        self.pack_size = pack_size if pack else 1
        self.pack_fn = pack_fn or (default_pack_fn() if pack else None)
        self.say = log or (lambda msg: print(msg, flush=True))
        self.ran: list[tuple[dict, RunSummary]] = []  # what this worker trained
        self.preempted = False
        self.primary, self.multihost = _process_info()

    # ---- the loop

    def run(self) -> list[tuple[dict, RunSummary]]:
        """Train points until the study has none left (or this worker is
        preempted); returns (point, summary) of each point this worker trained."""
        while not self.preempted:
            jobs = self._next_jobs() if self.primary else []
            if self.multihost:
                jobs = self._broadcast(jobs)
            if not jobs:
                break
            try:
                summaries = self._train(jobs)
            except BaseException:  # Ctrl-C, SystemExit: the points go back in the queue
                if self.primary:
                    give_back(self.study, jobs)
                raise
            if self.primary:
                self._tell(jobs, summaries)
                self._extend()
            else:  # what this process trained, as it saw it (the test compares)
                for job, s in zip(jobs, summaries, strict=True):
                    self.ran.append((job.point, s))
                    self.say(f"{self._name(job)}: {format_summary(s)}")
        return self.ran

    def _next_jobs(self) -> list[Job]:
        """The next trial(s) to train (a group of up to pack_size that differ only in
        PACK_KEYS), polling while others run; [] when the study is finished."""
        while True:
            reap(self.study)
            jobs = []
            while len(jobs) < self.pack_size:
                job = self._claim()
                if job is None:
                    break
                jobs.append(job)
                if not self._packs_with(jobs[0], job):
                    break
            if jobs:
                return jobs
            if self._extend():
                continue
            running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running:
                return []
            time.sleep(self.poll)

    def _claim(self) -> Job | None:
        """Pop a WAITING trial (atomically) and make it a Job; None if none waits.
        Trials that only repeat a point already done, running or waiting lower in
        the queue are dropped (PRUNED) on the way."""
        storage = self.study._storage
        while True:
            # Optuna's queue pop: WAITING -> RUNNING is one conditional update in the
            # storage, so exactly one worker wins each trial.
            trial_id = self.study._pop_waiting_trial_id()
            if trial_id is None:
                return None
            storage.set_trial_system_attr(trial_id, OWNER_ATTR, owner())
            if is_heartbeat_enabled(storage):
                storage.record_heartbeat(trial_id)  # a fresh beat before anyone reaps
            trial = storage.get_trial(trial_id)
            if self._is_duplicate(trial):
                continue
            point = point_of(trial)
            if point is None:  # not a sweep point (e.g. created by hand)
                storage.set_trial_state_values(trial_id, state=TrialState.PRUNED)
                continue
            point = expand([point])[0]  # lists back to tuples
            config = apply_overrides(self.config, overrides_of(point))
            return Job(trial, point, self.workdir / trial.user_attrs[DIR_ATTR], config)

    def _is_duplicate(self, trial: FrozenTrial) -> bool:
        """A lower trial of the same point that is not failed runs it instead: drop
        this one (PRUNED, with `duplicate_of`)."""
        key = trial.user_attrs.get(POINT_ATTR)
        for other in self.study.get_trials(deepcopy=False):
            if (other.number < trial.number and other.user_attrs.get(POINT_ATTR) == key
                    and DUPLICATE_ATTR not in other.user_attrs
                    and other.state in (TrialState.WAITING, TrialState.RUNNING,
                                        TrialState.COMPLETE)):
                self.study._storage.set_trial_user_attr(trial._trial_id, DUPLICATE_ATTR,
                                                        other.number)
                self.study._storage.set_trial_state_values(trial._trial_id,
                                                           state=TrialState.PRUNED)
                return True
        return False

    def _packs_with(self, first: Job, job: Job) -> bool:
        return self.pack_fn is not None and _pack_key(first.point) == _pack_key(job.point)

    # ---- training

    def _train(self, jobs: list[Job]) -> list[RunSummary]:
        """Train the jobs (one alone, a group through pack_fn) with heartbeats; each
        point's summary (a finished one found in its folder is not trained again)."""
        todo = [j for j in jobs if finished_before(j) is None]
        groups: dict[str, list[Job]] = {}
        for j in todo:
            groups.setdefault(_pack_key(j.point), []).append(j)
        trained: dict[int, RunSummary] = {}
        with contextlib.ExitStack() as beats:
            if self.primary:
                for j in todo:
                    beats.enter_context(get_heartbeat_thread(j.trial._trial_id,
                                                             self.study._storage))
            for group in groups.values():
                if len(group) > 1:
                    self.say(f"packing {len(group)} points into one program: "
                             f"{', '.join(self._name(j) for j in group)}")
                summaries = train_points(group, self.train_fn, self.pack_fn, self.primary)
                trained.update(zip(map(id, group), summaries, strict=True))
                if any(s.status == "preempted" for s in summaries):
                    break  # the job is being taken away: the rest go back to the queue
        out = []
        for j in jobs:
            s = trained.get(id(j)) or finished_before(j)
            if s is None:  # not reached before a preemption
                s = _summary_or_none(j.run_dir) or RunSummary(status="preempted")
                s = dataclasses.replace(s, status="preempted")
            out.append(s)
        return out

    def _name(self, job: Job) -> str:
        """The point's folder relative to the sweep's (what the console names)."""
        return job.run_dir.relative_to(self.workdir).as_posix()

    def _tell(self, jobs: list[Job], summaries: list[RunSummary]) -> None:
        for job, s in zip(jobs, summaries, strict=True):
            tid, number = job.trial._trial_id, job.trial.number
            storage = self.study._storage
            storage.set_trial_user_attr(tid, "status", s.status)
            if s.finished:
                self.study.tell(number, score(s), skip_if_finished=True)
            else:
                self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
                if s.status == "preempted":  # not the point's fault: back in the queue
                    requeue(self.study, storage.get_trial(tid), **{PREEMPTED_ATTR: True})
                    self.preempted = True
            self.ran.append((job.point, s))
            self.say(f"{self._name(job)}: {format_summary(s)}")

    def _extend(self) -> bool:
        """Enqueue the source's next points from every finished one; True if any."""
        if self.source is None:
            return False
        finished = []
        for trials in trials_by_point(self.study).values():
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            if done:
                s = _summary_or_none(self.workdir / done[-1].user_attrs[DIR_ATTR])
                if s is not None:
                    finished.append((point_of(done[-1]), s.to_dict()))
        new = self.source.next(finished)
        if not new:
            return False
        added = enqueue(self.study, expand(new, self.config, self.validate),
                        retry_failed=False)
        if added:
            write_sweep_file(self.workdir, self.study, self.source, self.config)
        return bool(added)

    # ---- multi-host

    def _broadcast(self, jobs: list[Job]) -> list[Job]:
        """Process 0's jobs on every process (points only: the others have no trial)."""
        from gru_jax.harness.distributed import broadcast_json

        got = broadcast_json([[j.point, str(j.run_dir)] for j in jobs] if self.primary
                             else None)
        if self.primary:
            return jobs
        return [Job(None, p, Path(d), apply_overrides(self.config, overrides_of(p)))
                for p, d in (got or [])]


def give_back(study: optuna.Study, jobs: list[Job]) -> None:
    """Fail and requeue the jobs' trials at once (this process is stopping), so
    the next worker resumes them without waiting out the heartbeat's grace."""
    for job in jobs:
        tid = job.trial._trial_id
        try:
            if study._storage.set_trial_state_values(tid, state=TrialState.FAIL):
                requeue(study, study._storage.get_trial(tid), **{PREEMPTED_ATTR: True})
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # told already


def _pack_key(point: Mapping[str, Any]) -> str:
    """Points with equal keys differ only in PACK_KEYS (and may share a program)."""
    return canonical({k: v for k, v in overrides_of(point).items() if k not in PACK_KEYS})


def _process_info() -> tuple[bool, bool]:
    """(primary, multihost) without starting JAX in a process that never did."""
    if "jax" not in sys.modules:
        return True, False
    import jax

    try:
        n, i = jax.process_count(), jax.process_index()
    except Exception:  # noqa: BLE001 - no backend: a plain single process
        return True, False
    return i == 0, n > 1


def write_sweep_file(workdir: Path, study: optuna.Study, source: PointSource | None,
                     config=None) -> None:
    """DIR/sweep.json: the points the report expects (the source's plan, else every
    point in the study), each with its folder."""
    planned = getattr(source, "planned", None)
    if planned is not None:
        points = [dict(p) for p in planned()]
    else:
        points = [point_of(ts[0]) for ts in trials_by_point(study).values()]
    write_json_atomic(workdir / SWEEP_FILE, {
        "num_points": len(points),
        "points": [{"index": i, "name": point_dir(p), "dir": point_dir(p),
                    "overrides": overrides_of(p)} for i, p in enumerate(points)],
        "base_config": config_to_dict(config) if config is not None else None,
    })
