"""A sweep's Optuna study as its queue: every point a trial (its identity and folder in
the trial's user attributes), claimed by one worker process (recorded as its owner),
counted by state, failed and requeued when its worker is lost.

A worker is lost when Optuna's heartbeats say so (`fail_stale_trials`), or when its
trial names a process of this host and boot that no longer runs (same boot, pid and
process start time: a reused pid does not look alive). `gru_jax.harness.sweep.worker`
claims, trains and tells; this module is what it and the launcher share.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from gru_jax.harness.config import config_to_dict
from gru_jax.harness.files import SWEEP_FILE, write_json_atomic
from gru_jax.harness.metrics import minimised
from gru_jax.harness.summary import RunSummary
from gru_jax.harness.sweep.points import _summary_or_none, canonical, overrides_of, point_dir
from gru_jax.harness.sweep.sources import PointSource
from gru_jax.harness.sweep.storage import BEAT_ATTR

POINT_ATTR = "point"  # user attribute: the point's canonical JSON (its identity)
DIR_ATTR = "dir"  # user attribute: its folder, relative to the sweep's
OWNER_ATTR = "gru_jax:owner"  # system attribute: the claiming process
DUPLICATE_ATTR = "duplicate_of"  # user attribute of a dropped duplicate (PRUNED)
PREEMPTED_ATTR = "gru_jax:preempted"  # system attribute of a requeued copy


# ---------------------------------------------------------------- processes


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, after the (comm) field


def owner() -> dict:
    """This process, as a trial records its claimer."""
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid(),
            "start": _start_time(os.getpid()), "since": time.time()}


def owner_gone(info: Mapping | None) -> bool:
    """True only when `info` names a process of this host and this boot that no
    longer runs (same pid with another start time is another process)."""
    if not info or info.get("host") != socket.gethostname():
        return False
    boot = _boot_id()
    if boot is None or info.get("boot") != boot or info.get("start") is None:
        return False
    return _start_time(int(info["pid"])) != info["start"]


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
    point: the workers drop the higher-numbered copy (`drop_duplicate`)."""
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


def drop_duplicate(study: optuna.Study, trial: FrozenTrial) -> bool:
    """A lower trial of the same point that is not failed runs it instead: drop
    this one (PRUNED, with `duplicate_of`)."""
    key = trial.user_attrs.get(POINT_ATTR)
    for other in study.get_trials(deepcopy=False):
        if (other.number < trial.number and other.user_attrs.get(POINT_ATTR) == key
                and DUPLICATE_ATTR not in other.user_attrs
                and other.state in (TrialState.WAITING, TrialState.RUNNING,
                                    TrialState.COMPLETE)):
            study._storage.set_trial_user_attr(trial._trial_id, DUPLICATE_ATTR, other.number)
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.PRUNED)
            return True
    return False


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


def give_back(study: optuna.Study, jobs: Iterable) -> None:
    """Fail and requeue the jobs' trials at once (this process is stopping), so
    the next worker resumes them without waiting out the heartbeat's grace."""
    for job in jobs:
        tid = job.trial._trial_id
        try:
            if study._storage.set_trial_state_values(tid, state=TrialState.FAIL):
                requeue(study, study._storage.get_trial(tid), **{PREEMPTED_ATTR: True})
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # told already


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


def finished_points(study: optuna.Study, workdir: Path) -> list[tuple[dict, dict]]:
    """(point, its run's summary as a dict) of every completed point whose folder in
    `workdir` holds a summary: what a point source extends a sweep from."""
    finished = []
    for trials in trials_by_point(study).values():
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if done:
            s = _summary_or_none(Path(workdir) / done[-1].user_attrs[DIR_ATTR])
            if s is not None:
                finished.append((point_of(done[-1]), s.to_dict()))
    return finished


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
