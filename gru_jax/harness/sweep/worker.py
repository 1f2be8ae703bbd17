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
   worker left it; a worker that was reaped but is still alive holds the
   folder's lock, `folder_lock`, so the retry waits for it and then finds its
   summary instead of training beside it), and tell the study: COMPLETE with
   the run's score (its final metric, minimised) when the summary says done or
   diverged, FAIL otherwise;
5. ask the point source for new points (`PointSource.next`) and enqueue them.

It stops when nothing is waiting or running and the source has nothing new.
The run's folder, with summary.json, stays the record the report reads; the
study is the queue and the index.

In a multi-host job (`jax.process_count() > 1`) only process 0 talks to the
storage; it broadcasts each claimed point to the others, and all train it.
The study's side (trials, owners, reaping, counts) is `gru_jax.harness.sweep.queue`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ml_collections
import optuna
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from gru_jax.harness.config import apply_overrides
from gru_jax.harness.keys import PACK_KEYS
from gru_jax.harness.summary import RunSummary
from gru_jax.harness.sweep.points import (
    _summary_or_none,
    canonical,
    expand,
    format_summary,
    overrides_of,
)
from gru_jax.harness.sweep.queue import (  # noqa: F401 - some only re-exported (as before)
    DIR_ATTR,
    DUPLICATE_ATTR,
    OWNER_ATTR,
    POINT_ATTR,
    PREEMPTED_ATTR,
    counts,
    drop_duplicate,
    enqueue,
    finished_points,
    give_back,
    owner,
    owner_gone,
    point_of,
    reap,
    requeue,
    score,
    status_line,
    trials_by_point,
    write_sweep_file,
)
from gru_jax.harness.sweep.sources import PointSource
from gru_jax.harness.sweep.training import (
    PackFn,
    TrainFn,
    default_pack_fn,
    default_train_fn,
    finished_before,
    folder_lock,
    train_points,
)

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
    workdirs)` up to `pack_size` that differ only in PACK_KEYS: always with
    `pack=True`, never with False, and with None (the default) where
    `packing_pays` says so for the group's hidden size and batch on this backend
    (and a packed trainer exists: `pack_fn`, or the default `train_fn`)."""

    def __init__(self, study: optuna.Study, workdir: str | os.PathLike,
                 config: ml_collections.ConfigDict, source: PointSource | None = None,
                 train_fn: TrainFn | None = None, *, validate=None,
                 log: Callable[[str], None] | None = None, poll: float = 2.0,
                 pack: bool | None = None, pack_size: int = 8,
                 pack_fn: PackFn | None = None):
        self.study, self.workdir, self.config = study, Path(workdir), config
        self.source, self.validate, self.poll = source, validate, poll
        # auto packs only through a packed trainer of the train_fn in use
        may_pack = pack or (pack is None and (pack_fn is not None or train_fn is None))
        self.pack = pack
        self.train_fn = train_fn or default_train_fn()
        self.pack_size = pack_size if may_pack else 1
        self.pack_fn = pack_fn or (default_pack_fn() if may_pack else None)
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
                jobs = broadcast_jobs(jobs, self.primary, self.config)
            if not jobs:
                break
            try:
                summaries = self._train(jobs)
            except BaseException:  # Ctrl-C, SystemExit: the points go back in the queue
                if self.primary:
                    give_back(self.study, jobs)
                raise
            self._tell(jobs, summaries)
            if self.primary:
                self._extend()
        return self.ran

    def _next_jobs(self) -> list[Job]:
        """The next trial(s) to train (a group of up to pack_size that differ only in
        PACK_KEYS), polling while others run; [] when the study is finished."""
        while True:
            reap(self.study)
            first = self._claim()
            if first is not None:
                jobs = [first]
                while len(jobs) < self.pack_size and self._may_pack(first) and (
                        job := self._claim(like=first)) is not None:
                    jobs.append(job)
                    if _pack_key(job.point) != _pack_key(first.point):
                        break  # a claim that cannot choose (a sampler's): trained apart
                return jobs
            if self._extend():
                continue
            running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running:
                return []
            time.sleep(self.poll)

    def _claim(self, like: Job | None = None) -> Job | None:
        """Pop a WAITING trial (atomically) and make it a Job; None if none waits.
        `like`: the first one anywhere in the queue that packs with that job (an
        adaptive source enqueues such points apart). Trials that only repeat a point
        already done, running or waiting lower in the queue are dropped (PRUNED) on
        the way."""
        storage = self.study._storage
        while True:
            trial_id = self._pop(like)
            if trial_id is None:
                return None
            storage.set_trial_system_attr(trial_id, OWNER_ATTR, owner())
            if is_heartbeat_enabled(storage):
                storage.record_heartbeat(trial_id)  # a fresh beat before anyone reaps
            trial = storage.get_trial(trial_id)
            if drop_duplicate(self.study, trial):
                continue
            point = point_of(trial)
            if point is None:  # not a sweep point (e.g. created by hand)
                storage.set_trial_state_values(trial_id, state=TrialState.PRUNED)
                continue
            point = expand([point])[0]  # lists back to tuples
            config = apply_overrides(self.config, overrides_of(point))
            return Job(trial, point, self.workdir / trial.user_attrs[DIR_ATTR], config)

    def _pop(self, like: Job | None) -> int | None:
        """A WAITING trial's id, now RUNNING (Optuna's queue pop: WAITING -> RUNNING is
        one conditional update in the storage, so exactly one worker wins each trial);
        `like`: only a trial whose point packs with that job's."""
        if like is None:
            return self.study._pop_waiting_trial_id()
        key = _pack_key(like.point)
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            p = point_of(t)
            if p is None or _pack_key(expand([p])[0]) != key:
                continue
            try:
                if self.study._storage.set_trial_state_values(t._trial_id,
                                                              state=TrialState.RUNNING):
                    return t._trial_id
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        return None

    def _may_pack(self, first: Job) -> bool:
        return self.pack_fn is not None and (
            self.pack is not None or packing_pays_for(first.config, self.pack_size))

    # ---- training

    def _train(self, jobs: list[Job]) -> list[RunSummary]:
        """Train the jobs (one alone, a group through pack_fn) with heartbeats; each
        point's summary (a finished one found in its folder is not trained again)."""
        trained: dict[int, RunSummary] = {}
        with contextlib.ExitStack() as beats:
            if self.primary:
                for j in jobs:
                    beats.enter_context(get_heartbeat_thread(j.trial._trial_id,
                                                             self.study._storage))
                # after the beats (waiting here keeps the trials alive); in path order
                for j in sorted(jobs, key=lambda j: str(j.run_dir)):  # (no lock cycles)
                    beats.enter_context(folder_lock(j.run_dir))
            todo = [j for j in jobs if finished_before(j) is None]
            groups: dict[str, list[Job]] = {}
            for j in todo:
                groups.setdefault(_pack_key(j.point), []).append(j)
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
        """Tell the study each job's outcome (process 0); on a process > 0 only
        record what it trained, as it saw it (the multi-host test compares)."""
        for job, s in zip(jobs, summaries, strict=True):
            if self.primary and tell(self.study, job.trial, s):
                self.preempted = True
            self.ran.append((job.point, s))
            self.say(f"{self._name(job)}: {format_summary(s)}")

    def _extend(self) -> bool:
        """Enqueue the source's next points from every finished one; True if any."""
        if self.source is None:
            return False
        new = self.source.next(finished_points(self.study, self.workdir))
        if not new:
            return False
        added = enqueue(self.study, expand(new, self.config, self.validate),
                        retry_failed=False)
        if added:
            write_sweep_file(self.workdir, self.study, self.source, self.config)
        return bool(added)


def tell(study: optuna.Study, trial: FrozenTrial, s: RunSummary) -> bool:
    """COMPLETE with the run's score when it finished, else FAIL; a preempted point
    goes back in the queue (not its fault). True if it was preempted."""
    tid = trial._trial_id
    try:
        study._storage.set_trial_user_attr(tid, "status", s.status)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # reaped while this worker ran it: its retry reads the summary
    if s.finished:
        study.tell(trial.number, score(s), skip_if_finished=True)
        return False
    study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    if s.status != "preempted":
        return False
    requeue(study, study._storage.get_trial(tid), **{PREEMPTED_ATTR: True})
    return True


def broadcast_jobs(jobs: list[Job], primary: bool, config) -> list[Job]:
    """Process 0's jobs on every process of a multi-host job (points only: the others
    have no trial; each builds its job's config from `config`)."""
    from gru_jax.harness.distributed import broadcast_json

    got = broadcast_json([[j.point, str(j.run_dir)] for j in jobs] if primary else None)
    if primary:
        return jobs
    return [Job(None, p, Path(d), apply_overrides(config, overrides_of(p)))
            for p, d in (got or [])]


def packing_pays_for(config: ml_collections.ConfigDict, n: int) -> bool:
    """Whether n runs of `config` packed into one vmapped program beat them one by
    one on this backend (`gru_jax.fused.packing_pays` at the config's hidden size
    and batch): the sweep's default when neither --pack nor --nopack is given."""
    from gru_jax.fused import packing_pays

    return packing_pays(None, config.model.hidden_size, config.train.batch_size, n)


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

