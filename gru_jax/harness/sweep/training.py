"""What a sweep worker does outside the queue: train its points.

(The claiming process as a trial records it, `owner` / `owner_gone`, is the
queue's: `gru_jax.harness.sweep.queue`.)

- `train_points`: train one point (or a packed group), each one's summary, a
  failure recorded in the run's folder; on a process > 0 of a multi-host job,
  the summaries the trainer returned and nothing written;
- `finished_before`: a run's folder already holds this point's finished summary;
- `folder_lock`: one trainer per run folder on a host (a trial retried while its
  first worker is still alive, e.g. starved past the heartbeat's grace, waits
  for that worker and then finds its summary instead of training beside it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from gru_jax.harness.config import config_to_dict
from gru_jax.harness.summary import RunSummary, prefix, summary_mtime, write_summary
from gru_jax.harness.sweep.points import _summary_or_none, overrides_of

TrainFn = Callable[[ml_collections.ConfigDict, str], Any]
PackFn = Callable[[list, list], Any]


# ---------------------------------------------------------------- training

LOCK_FILE = ".sweep.lock"


@contextlib.contextmanager
def folder_lock(run_dir: Path):
    """Hold an exclusive lock on `run_dir` (created if missing), waiting while another
    process holds it. flock: released when the holder exits, however it exits."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def finished_before(job) -> RunSummary | None:
    """The folder's summary if it finished this very point (same overrides and
    train.steps): a rerun after the study was lost does not train it again. With a
    constant learning rate, a run trained past the point's train.steps (a cap raised by
    resuming) holds the shorter run as its first steps: its `prefix` answers."""
    s = _summary_or_none(job.run_dir)
    if s is None or not s.finished or not isinstance(s.config, Mapping):
        return None

    def stored(key):
        node: Any = s.config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        return list(node) if isinstance(node, tuple) else node

    for key, value in overrides_of(job.point).items():
        if key != "train.steps" and stored(key) != (list(value) if isinstance(value, tuple)
                                                    else value):
            return None
    steps, ran = job.config.train.steps, stored("train.steps")
    if ran == steps:
        return s
    if (job.config.train.get("schedule") == stored("train.schedule") == "constant"
            and isinstance(ran, int) and ran > steps):
        return prefix(s, steps)
    return None


def default_train_fn() -> TrainFn:
    from gru_jax.harness.train import train_and_evaluate  # lazy: jax only to train

    return train_and_evaluate


def default_pack_fn() -> PackFn:
    from gru_jax.harness.train import train_packed

    return train_packed


def _fresh_summary(run_dir: Path, started: float) -> RunSummary | None:
    """The summary if written after `started` (this attempt), else None."""
    mtime = summary_mtime(run_dir)
    return _summary_or_none(run_dir) if mtime is not None and mtime >= started - 1 else None


def _record_failure(run_dir: Path, config, exc: BaseException, started: float) -> RunSummary:
    """A failed summary for an exception; the trainer's own if it wrote one."""
    fresh = _fresh_summary(run_dir, started)
    if fresh is not None and fresh.status == "failed":
        return fresh
    failure = dict(
        status="failed", stop_reason="failed", error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:])
    earlier = _summary_or_none(run_dir)
    summary = (dataclasses.replace(earlier, **failure) if earlier is not None
               else RunSummary(**failure, config=config_to_dict(config)))
    write_summary(run_dir, summary)
    return summary


def _preempted(exc: BaseException) -> bool:
    from gru_jax.harness.train import Preempted  # loaded already by the trainer that raised

    return isinstance(exc, Preempted)


def _stopped_by_a_signal(run_dir: Path, fresh: RunSummary | None) -> RunSummary:
    """A member of a group that a stop signal (train.Preempted) ended: preempted (a
    checkpoint and a "preempted" summary), finished before the signal (solved or
    diverged at that step: its final summary), or not reached yet (run one after
    another); none of these is a failure, the unfinished go back in the queue."""
    if fresh is not None and (fresh.finished or fresh.status == "preempted"):
        return fresh
    earlier = _summary_or_none(run_dir)
    return (RunSummary(status="preempted") if earlier is None
            else dataclasses.replace(earlier, status="preempted"))


def train_points(jobs: Sequence, train_fn: TrainFn,
                  pack_fn: PackFn | None, primary: bool = True) -> list[RunSummary]:
    """Train the jobs' points; each one's summary (failures recorded in its folder).
    Not `primary` (a process > 0 of a multi-host job): the summaries the trainer
    returned, and nothing written (process 0 writes the run's files; its summary
    may not be on the shared filesystem yet when this process reads)."""
    if not jobs:
        return []
    if not primary:
        return _returned_summaries(jobs, train_fn, pack_fn)
    for j in jobs:
        j.run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    error: Exception | None = None
    returned: list[Any] = [None] * len(jobs)
    try:
        if len(jobs) == 1:
            returned = [train_fn(jobs[0].config, str(jobs[0].run_dir))]
        else:
            returned = list(pack_fn([j.config for j in jobs], [str(j.run_dir) for j in jobs]))
    except Exception as e:  # noqa: BLE001 - one bad point (group) must not stop the sweep
        error = e
    summaries = []
    for job, ret in zip(jobs, returned, strict=True):
        err, summary = error, None
        if err is None:
            summary = _summary_or_none(job.run_dir)
            if summary is None and isinstance(ret, RunSummary):
                write_summary(job.run_dir, ret)  # the report reads the file: keep one
                summary = ret
            if summary is None:
                err = RuntimeError("the trainer returned without writing its summary")
        if err is not None:
            summary = _fresh_summary(job.run_dir, started)
            if _preempted(err):
                summary = _stopped_by_a_signal(job.run_dir, summary)
            elif not (summary is not None and summary.status == "preempted"):
                summary = _record_failure(job.run_dir, job.config, err, started)
        summaries.append(summary)
    return summaries


def _returned_summaries(jobs: Sequence, train_fn: TrainFn,
                        pack_fn: PackFn | None) -> list[RunSummary]:
    try:
        if len(jobs) == 1:
            returned = [train_fn(jobs[0].config, str(jobs[0].run_dir))]
        else:
            returned = list(pack_fn([j.config for j in jobs], [str(j.run_dir) for j in jobs]))
    except Exception as e:  # noqa: BLE001 - process 0 records the failure
        return [RunSummary(status="failed", error=f"{type(e).__name__}: {e}") for _ in jobs]
    return [r if isinstance(r, RunSummary) else RunSummary.from_dict(r) if r is not None
            else RunSummary(status="failed") for r in returned]
