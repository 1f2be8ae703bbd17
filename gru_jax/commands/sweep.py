r"""Runs an experiment's sweep: each point a trial of an Optuna study, trained in its own folder.

    python scripts/sweep.py --config=experiments/adding.py --workdir=runs/adding --workers=2
    python scripts/sweep.py --config=experiments/adding.py --workdir=runs/adding --status
    python scripts/sweep.py --config=experiments/adding.py --workdir=DIR \
        --storage=postgresql://user@dbhost/sweeps --executor=slurm --workers=16 \
        --slurm_partition=gpu --slurm_time=240 --slurm_gpus_per_node=1

The points come from the experiment's `get_source(arg)` or `get_sweep(arg)`.
`--workers=N` runs N workers here (`--executor=slurm`: a SLURM job array of N,
through submitit, requeued at the time limit). Running the command again, or a
second copy at the same time, joins the same study: nothing finished is trained
again, a failed point is tried again, a killed worker's point is retried (from
its checkpoint) by another worker. `--storage` defaults to DIR/study.db.
`--config.KEY=VALUE` changes the base config under every point.
Watch: optuna-dashboard sqlite:///DIR/study.db, tensorboard --logdir=DIR.
Then: python scripts/report.py --workdir=DIR

Exit codes: 0 every point finished (done or diverged), 1 some point failed (see
its summary.json), 2 bad flags, config or sweep (one line on stderr, nothing
run), 143 preempted (the current point saved a checkpoint and went back in the
queue; run the same command again to resume).
"""

from __future__ import annotations

import signal
import sys

from absl import flags
from ml_collections import config_flags

from gru_jax.harness import cli, distributed
from gru_jax.harness.errors import ConfigError, WorkdirError

PROG = "sweep.py"  # prefix of the one-line errors
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file with get_config() and get_sweep() or get_source().",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Sweep folder: one subfolder per point.")
_WORKERS = flags.DEFINE_integer("workers", 1, "Workers to start (here, or SLURM jobs).",
                                lower_bound=1)
_STORAGE = flags.DEFINE_string(
    "storage", None, "Optuna storage: sqlite:///FILE (default DIR/study.db), "
    "postgresql://USER@HOST/DB, or journal:FILE (a shared filesystem).")
_STATUS = flags.DEFINE_bool("status", False, "Print one line (waiting / running / done / "
                            "failed points) and exit.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Kept for old command lines (no effect).")
_PACK = flags.DEFINE_bool(
    "pack", None,
    "Train points that differ only in seed and train.learning_rate as one vmapped "
    "program (each still has its own folder, checkpoints, events and summary.json). "
    "Default: where it pays on this backend for their hidden size and batch "
    "(gru_jax.fused.packing_pays); --nopack: never.")
_PACK_SIZE = flags.DEFINE_integer("pack_size", 8, "--pack: at most this many points per program.",
                                  lower_bound=1)
_HEARTBEAT = flags.DEFINE_integer("heartbeat", None, "Seconds between a running point's "
                                  "heartbeats (default 30).", lower_bound=1)
_GRACE = flags.DEFINE_integer("grace", None, "Seconds without a heartbeat after which a "
                              "point is retried (default 120).", lower_bound=2)
cli.define_executor_flags()
for _name in cli.EXECUTOR_FLAGS:
    flags.declare_key_flag(_name)


def main(argv: list[str]) -> int:
    cli.setup(argv, PROG, run_logs=False)
    workdir = _WORKDIR.value
    try:
        if not workdir:
            raise WorkdirError("--workdir: required")
        from gru_jax.harness import sweep
        from gru_jax.harness.sweep import executor

        if _STATUS.value:
            print(sweep.status(workdir, _STORAGE.value))
            return 0
        # A multi-host job (srun of several tasks, JAX_COORDINATOR_ADDRESS): its
        # processes together are one worker; JAX starts distributed before any call.
        multihost = distributed.maybe_initialize()
        if multihost and (_WORKERS.value > 1 or flags.FLAGS.executor != "local"):
            raise ConfigError("--workers/--executor: a multi-host job is one worker "
                              "(start one such job per worker)")
        primary = not multihost or distributed.is_primary()
        config = cli.config_from_flag(_CONFIG)
        path, _, arg = config_flags.get_config_filename(flags.FLAGS["config"]).partition(":")
        spec = executor.WorkerSpec(config, path, arg or None, workdir, _STORAGE.value,
                                   pack=_PACK.value, pack_size=_PACK_SIZE.value,
                                   heartbeat=_HEARTBEAT.value, grace=_GRACE.value)
        if _HEARTBEAT.value and not _GRACE.value:
            spec.grace = 4 * _HEARTBEAT.value
        # Check every point and enqueue the initial ones here, so bad input is one
        # line before anything starts (the workers join the same study).
        kw = executor._storage_kw(spec)
        if primary:  # only process 0 of a multi-host job talks to the storage
            sweep.open_sweep(config, executor.source_of(spec), workdir, _STORAGE.value, **kw)
        if flags.FLAGS.executor == "slurm":
            if _STORAGE.value is None:
                print(f"{PROG}: note: the default SQLite storage needs {workdir} on a "
                      "filesystem with working locks on every node; PostgreSQL or "
                      "journal: is safer on a cluster", file=sys.stderr)
            jobs = executor.run_slurm(spec, _WORKERS.value, **cli.slurm_kwargs())
            print(f"submitted {len(jobs)} workers: {', '.join(j.job_id for j in jobs)}")
            print(f"status: python scripts/sweep.py --config=... --workdir={workdir} --status")
            return 0
        code = executor.run_local(spec, _WORKERS.value)
        if primary:
            print(sweep.status(workdir, _STORAGE.value))
    except (ConfigError, WorkdirError, ValueError, OSError) as e:
        cli.die(e, PROG)
    if code == executor.EXIT_PREEMPTED:
        print("preempted: run the same command again to resume", file=sys.stderr)
        return code
    print(f"report: python scripts/report.py --workdir={workdir}")
    return code


def run() -> None:
    """The command line (``python scripts/sweep.py`` and ``gru-jax sweep``)."""
    signal.signal(signal.SIGINT, lambda *_: sys.exit("interrupted"))  # one line, any time
    cli.run_command(main, sys.modules[__name__], cli.flags_parser(PROG))
