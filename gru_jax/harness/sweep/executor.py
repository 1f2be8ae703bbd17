"""Starting workers: N local processes, or a SLURM job array through submitit.

Both run `run_worker(spec)`: open the study, train points until none is left.
A `WorkerSpec` holds what a worker needs (the base config, the experiment file
for its point source, the sweep folder and storage URL), and is pickled to the
workers: spawned processes here, submitit jobs on a cluster.

On SLURM a worker is a `submitit.helpers.Checkpointable`: at the time limit
SLURM sends USR2 (submitit's ``--signal``); the trainer, told to stop on it,
saves a checkpoint and a "preempted" summary, the worker puts its point back in
the queue, and submitit's handler requeues the job, which joins the study again
and resumes the point.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import signal
import sys
from pathlib import Path
from typing import Any

import ml_collections

try:
    from submitit.helpers import Checkpointable
except ImportError:  # the sweep extra is missing: the local executor still works
    Checkpointable = object

EXIT_PREEMPTED = 143


@dataclasses.dataclass
class WorkerSpec:
    """What a worker needs, picklable."""

    config: ml_collections.ConfigDict
    experiment: str | None  # the experiment file (for get_source / get_sweep); None: `points`
    arg: str | None
    workdir: str
    storage: str | None
    points: list | None = None  # a fixed list when there is no experiment file
    pack: bool | None = None  # None: where packing_pays (Worker)
    pack_size: int = 8
    poll: float = 2.0
    heartbeat: int | None = None
    grace: int | None = None
    search: Any = None  # a gru_jax.harness.search.SearchSpec: the workers run that search


def _storage_kw(spec: WorkerSpec) -> dict:
    return {k: v for k, v in (("heartbeat", spec.heartbeat), ("grace", spec.grace))
            if v is not None}


def source_of(spec: WorkerSpec):
    from gru_jax.harness.sweep import FixedSource, load_source, with_folders

    if spec.experiment is None:
        return FixedSource(with_folders(list(spec.points or [{}])))
    source = load_source(spec.experiment, spec.arg)
    if isinstance(source, FixedSource):
        source.points = with_folders(source.points)
    return source


def run_worker(spec: WorkerSpec, stop_signals=(signal.SIGTERM, signal.SIGINT),
               log=None) -> dict[str, Any]:
    """One worker: join the study (enqueueing the source's initial points, once;
    a search's study with its sampler), train points until none is left.
    Returns {"ran": n, "failed": n, "preempted": bool}."""
    from gru_jax.harness import cli
    from gru_jax.harness.distributed import maybe_initialize
    from gru_jax.harness.sweep import open_sweep
    from gru_jax.harness.sweep.worker import Worker

    maybe_initialize()  # a multi-host worker (srun of several tasks): before any JAX call
    cli.enable_compilation_cache()  # a spawned or submitted worker starts with none
    from gru_jax.harness.train import train_and_evaluate, train_packed

    train_fn = functools.partial(train_and_evaluate, stop_signals=stop_signals)
    is_primary = _primary()
    if spec.search is not None:  # a search: the trials come from its sampler
        from gru_jax.harness.search.engine import SearchWorker, open_search

        study = open_search(spec.config, spec.workdir, spec.search, spec.storage,
                            **_storage_kw(spec)) if is_primary else None
        w = SearchWorker(study, spec.workdir, spec.config, spec.search, train_fn, log=log,
                         poll=spec.poll)
    else:
        source = source_of(spec)
        study = open_sweep(spec.config, source, spec.workdir, spec.storage,
                           **_storage_kw(spec)) if is_primary else None
        w = Worker(study, spec.workdir, spec.config, source, train_fn,
                   log=log, poll=spec.poll, pack=spec.pack, pack_size=spec.pack_size,
                   pack_fn=functools.partial(train_packed, stop_signals=stop_signals))
    ran = w.run()
    return {"ran": len(ran), "failed": sum(s.status == "failed" for _, s in ran),
            "preempted": w.preempted}


def _primary() -> bool:
    import jax

    return jax.process_index() == 0


def _local_main(spec: WorkerSpec) -> None:
    """A spawned local worker's body; its exit code says how it ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the launcher sends TERM
    result = run_worker(spec)
    sys.exit(EXIT_PREEMPTED if result["preempted"] else 1 if result["failed"] else 0)


def run_local(spec: WorkerSpec, workers: int) -> int:
    """`workers` worker processes on this machine (spawned: JAX does not fork);
    their worst exit code (143 preempted first, then 1 a failed point). SIGTERM or
    Ctrl-C here is passed on as SIGTERM: each worker checkpoints its point."""
    if workers == 1:
        result = run_worker(spec)
        return EXIT_PREEMPTED if result["preempted"] else 1 if result["failed"] else 0
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_local_main, args=(spec,), name=f"sweep-worker-{i}")
             for i in range(workers)]
    for p in procs:
        p.start()

    def forward(signum, frame):
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for p in procs:
            p.join()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    codes = [p.exitcode for p in procs]
    killed = [-c for c in codes if c is not None and c < 0]
    if EXIT_PREEMPTED in codes or (killed and _points_left(spec)):
        return EXIT_PREEMPTED
    if killed:  # e.g. the OOM killer: the others retried its point and finished the sweep
        print(f"note: {len(killed)} worker(s) killed by signal {killed[0]}; the others "
              "retried their points", file=sys.stderr)
    exits = [c for c in codes if c is not None and c >= 0]
    return max(exits, default=0)


def _points_left(spec: WorkerSpec) -> int:
    """Points waiting or running in the study (a killed worker's are reaped and retried
    by the others only until they run out of points)."""
    from gru_jax.harness.sweep import queue
    from gru_jax.harness.sweep import storage as storage_

    c = queue.counts(storage_.open_study(storage_.open_storage(spec.storage, spec.workdir)))
    return c["waiting"] + c["running"]


# SLURM's warning before the time limit (submitit's --signal=USR2@90) stops the trainer too.
SLURM_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class SlurmWorker(Checkpointable):
    """A worker as a submitit job: requeued (by `Checkpointable.checkpoint`) when
    SLURM's USR2 comes at the time limit; the trainer stops on USR2 too."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec

    def __call__(self) -> dict[str, Any]:
        result = run_worker(self.spec, stop_signals=SLURM_STOP_SIGNALS)
        if result["preempted"]:
            # The trainer took USR2 (and gave the handler back): hand it on to
            # submitit's handler, which checkpoints this object and requeues the job.
            signal.raise_signal(signal.SIGUSR2)
        return result


def slurm_executor(folder: str | os.PathLike, cluster: str | None = None, **slurm):
    """submitit's AutoExecutor with the workers' parameters. `slurm`: partition,
    time (minutes; SLURM sends USR2 90 s before it ends), mem_gb, cpus_per_task,
    gpus_per_node, array_parallelism, and any other ``slurm_*`` parameter of
    submitit. `cluster`: submitit's choice by default (SLURM where srun exists);
    "local" runs the same jobs as processes here (the tests)."""
    try:
        import submitit
    except ImportError as e:
        from gru_jax.harness.errors import ConfigError

        raise ConfigError("--executor=slurm: submitit missing; pip install 'gru_jax[sweep]'") \
            from e
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params = {"timeout_min": slurm.pop("time", None), "mem_gb": slurm.pop("mem_gb", None),
              "cpus_per_task": slurm.pop("cpus_per_task", None),
              "gpus_per_node": slurm.pop("gpus_per_node", None),
              "slurm_partition": slurm.pop("partition", None),
              "slurm_array_parallelism": slurm.pop("array_parallelism", None),
              "name": "gru_jax-sweep"}
    params.update({f"slurm_{k}": v for k, v in slurm.items()})
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def run_slurm(spec: WorkerSpec, workers: int, folder: str | os.PathLike | None = None, *,
              cluster: str | None = None, **slurm) -> list:
    """Submit `workers` workers as one SLURM job array (`slurm_executor`; each job a
    `SlurmWorker`). Returns the jobs (not waited for)."""
    executor = slurm_executor(folder or Path(spec.workdir) / "slurm" / "%j", cluster, **slurm)
    with executor.batch():
        jobs = [executor.submit(SlurmWorker(spec)) for _ in range(workers)]
    return jobs
