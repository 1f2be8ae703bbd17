"""Sweeps on Optuna: every point a trial of one study, any number of workers.

An experiment's points (`get_sweep()`'s list, or a `get_source()` that emits
them from finished ones) become trials of an Optuna study, the queue and the
index of the sweep; each point trains in its own folder, whose summary.json
stays the record the report reads::

    DIR/study.db                                the study (default storage)
    DIR/sweep.json                              every planned point and its folder
    DIR/cell=gru,hidden_size=64,seq_len=50/     one run: summary, events, checkpoints
    ...

Modules: `points` (lists, checks, folder names), `sources` (`PointSource`, fixed
lists, pruning along an axis), `storage` (the URL: SQLite file, PostgreSQL,
journal file; heartbeats), `queue` (points as trials, their owners, lost workers'
trials requeued, counts), `worker` (claim, train, tell, retry), `training` (a
worker's process and its trainings), `executor` (N local processes, or a SLURM
job array through submitit).

Started again, or twice at once, on the same storage, a sweep joins its study:
a point is enqueued once, a finished point is never trained again, a failed one
is enqueued again by the launcher, and a lost worker's point is retried by
another worker, resuming from its checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import ml_collections

from gru_jax.harness.errors import WorkdirError
from gru_jax.harness.sweep.points import (
    MAX_NAME,
    WORKDIR_KEY,
    _summary_or_none,
    apply_overrides,
    canonical,
    expand,
    format_summary,
    grid,
    load_experiment,
    load_sweep,
    overrides_of,
    pack_groups,
    point_dir,
    point_name,
    point_names,
    prune_reason,
    short_keys,
)
from gru_jax.harness.sweep.sources import FixedSource, PointSource, PruneAlong, load_source

__all__ = [
    "MAX_NAME", "WORKDIR_KEY", "FixedSource", "PointSource", "PruneAlong", "apply_overrides",
    "canonical", "expand", "format_summary", "grid", "load_experiment", "load_source",
    "load_sweep", "open_sweep", "overrides_of", "pack_groups", "point_dir", "point_name",
    "point_names", "prune_reason", "run_sweep", "short_keys", "status",
]


def with_folders(points: list[dict]) -> list[dict]:
    """A fixed list's points, each given its `point_names` folder where the short
    name would clash with another point's (so the list's folders stay distinct)."""
    names = point_names([overrides_of(p) for p in points])
    return [p if WORKDIR_KEY in p or n == point_name(overrides_of(p)) else
            {**p, WORKDIR_KEY: n} for p, n in zip(points, names, strict=True)]


def open_sweep(config: ml_collections.ConfigDict, source: PointSource,
               workdir: str | os.PathLike, storage: str | None = None, *, validate=None,
               retry_failed: bool = True, write_plan: bool = True, **storage_kw):
    """Open (or join) the sweep's study and enqueue the source's initial points
    (each once; every point checked against `config` first). Returns the study."""
    from gru_jax.harness.sweep import queue
    from gru_jax.harness.sweep import storage as storage_

    points = expand(source.initial(), config, validate)
    workdir = Path(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkdirError(f"{workdir}: cannot create the sweep folder ({e})") from e
    study = storage_.open_study(storage_.open_storage(storage, workdir, **storage_kw))
    queue.enqueue(study, points, retry_failed=retry_failed)
    if write_plan:  # a search keeps its own record (search.json)
        queue.write_sweep_file(workdir, study, source, config)
    return study


def run_sweep(
    config: ml_collections.ConfigDict,
    sweep: Iterable[Mapping[str, Any]] | None = None,
    workdir: str | os.PathLike = ".",
    train_fn: Callable | None = None,
    *,
    source: PointSource | None = None,
    storage: str | None = None,
    validate: Callable[[ml_collections.ConfigDict], Any] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    pack: bool | None = None,
    pack_size: int = 8,
    pack_fn: Callable | None = None,
    prune_along: str | None = None,
    poll: float = 2.0,
    write_plan: bool = True,
    **storage_kw,
) -> list[dict[str, Any]]:
    """One worker of the sweep in this process: enqueue, then train points until
    none is left. The points: `source`, else the list `sweep` (None: the base
    config alone), pruned along `prune_along` when given (`PruneAlong`).

    Returns one result per planned point, in order::

        {"index", "name", "dir", "overrides",
         "action": "ran" (by this call) | "skipped" (finished before, or by another
                   worker) | "pruned" (never released by the source) | "running"
                   (by another worker),
         "status": the summary's status, "pruned", or "running",
         "summary": the run's RunSummary or None}

    `train_fn(config, workdir)` defaults to gru_jax.harness.train.train_and_evaluate;
    `pack`: points that differ only in seed and train.learning_rate are trained
    `pack_size` at a time by `pack_fn` (default train.train_packed): True always,
    False never, None (default) where `gru_jax.fused.packing_pays` says it pays
    for their hidden size and batch on this backend and a packed trainer exists
    (`pack_fn` given, or `train_fn` the default).
    """
    from gru_jax.harness.sweep import queue, worker

    del progress  # one line per point; the trainer has its own bar
    if source is None:
        points = with_folders(expand(sweep, None))
        source = PruneAlong(points, prune_along) if prune_along else FixedSource(points)
    workdir = Path(workdir)
    study = open_sweep(config, source, workdir, storage, validate=validate,
                       write_plan=write_plan, **storage_kw)
    w = worker.Worker(study, workdir, config, source, train_fn, validate=validate, log=log,
                      poll=poll, pack=pack, pack_size=pack_size, pack_fn=pack_fn)
    ran = {canonical(p): s for p, s in w.run()}
    by_point = queue.trials_by_point(study)
    planned = getattr(source, "planned", None)
    points = planned() if planned else [queue.point_of(ts[0]) for ts in by_point.values()]
    results = []
    for i, p in enumerate(points):
        key, name = canonical(p), point_dir(p)
        r = {"index": i, "name": name, "dir": str(workdir / name), "overrides": overrides_of(p)}
        if key in ran:
            r.update(action="ran", status=ran[key].status, summary=ran[key])
        elif key not in by_point:
            r.update(action="pruned", status="pruned", summary=None)
        else:
            s = _summary_or_none(workdir / name)
            states = {t.state.name for t in by_point[key]}
            if "COMPLETE" not in states and states & {"RUNNING", "WAITING"}:
                state = "running" if "RUNNING" in states else "waiting"
                r.update(action=state, status=state, summary=s)
            else:
                r.update(action="skipped", status=s.status if s else "failed", summary=s)
        results.append(r)
    if w.preempted:
        for r in results:
            r["preempted"] = True
    return results


def status(workdir: str | os.PathLike, storage: str | None = None) -> str:
    """One line: the sweep's points waiting / running / done / failed."""
    from gru_jax.harness.sweep import queue
    from gru_jax.harness.sweep import storage as storage_

    workdir = Path(workdir)
    if storage is None and not (workdir / storage_.DB_FILE).is_file():
        raise WorkdirError(f"{workdir}: no sweep there (no {storage_.DB_FILE}; "
                           "pass --storage=URL if it lives elsewhere)")
    study = storage_.open_study(storage_.open_storage(storage, workdir))
    return queue.status_line(study, str(workdir))
