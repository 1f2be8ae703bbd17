"""Runs an experiment's sweep: each point of `get_sweep()` in its own subfolder.

    python scripts/sweep.py --config=experiments/adding.py --workdir=runs/adding
    python scripts/sweep.py --config=experiments/adding.py --workdir=runs/adding --shard=1/4
    python scripts/sweep.py --config=experiments/adding.py --workdir=DIR --config.train.steps=500

`--config.KEY=VALUE` changes the base config under every point (a point's own
overrides win). Start it again to resume: finished points (done, diverged) are
skipped and the others resume from their checkpoints. Shards of one sweep may
run at once into the same --workdir (scripts/sweep_array.sh: a SLURM job array).
Then: python scripts/report.py --workdir=DIR

--pack trains the points that differ only in seed and train.learning_rate
(--pack_size at a time) as one vmapped program; each keeps its own folder.

Exit codes: 0 every point of the shard finished (done or diverged) or is run by
another process, 1 some point failed (see its summary.json), 2 bad flags, config
or sweep (one line on stderr, nothing run), 143 preempted (SIGTERM/SIGINT: the
current point saved a checkpoint; run the same command again to resume).
"""

from __future__ import annotations

import signal
import sys

signal.signal(signal.SIGINT, lambda *_: sys.exit("interrupted"))  # one line, any time

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from gru_jax.harness import cli, sweep  # noqa: E402
from gru_jax.harness.distributed import maybe_initialize  # noqa: E402
from gru_jax.harness.errors import ConfigError, WorkdirError  # noqa: E402
from gru_jax.harness.status import EXIT_PREEMPTED  # noqa: E402

PROG = "sweep.py"  # prefix of the one-line errors
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file with get_config() and get_sweep().", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Sweep folder: one subfolder per point.")
_SHARD = flags.DEFINE_string(
    "shard", "0/1",
    "I/N: run shard I of N, i.e. points I, I+N, ... "
    "(e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).",
)
_PROGRESS = flags.DEFINE_bool("progress", True, "Progress bar over the points (on a terminal).")
_PACK = flags.DEFINE_bool(
    "pack", False,
    "Train points that differ only in seed and train.learning_rate as one vmapped "
    "program (each still has its own folder, checkpoints, events and summary.json).")
_PACK_SIZE = flags.DEFINE_integer("pack_size", 8, "--pack: at most this many points per program.",
                                  lower_bound=1)


def main(argv: list[str]) -> int:
    cli.setup(argv, PROG, run_logs=False)
    cli.enable_compilation_cache()
    maybe_initialize()  # a multi-host job (SLURM, JAX_COORDINATOR_ADDRESS): before any JAX call
    workdir = _WORKDIR.value
    try:
        if not workdir:
            raise WorkdirError("--workdir: required")
        i, n = sweep.parse_shard(_SHARD.value)
        config = cli.config_from_flag(_CONFIG)
        path, _, arg = config_flags.get_config_filename(flags.FLAGS["config"]).partition(":")
        points = sweep.load_sweep(path, arg or None)
        # An experiment may name a difficulty axis along which unsolved points prune the rest.
        prune_along = getattr(sweep.load_experiment(path), "PRUNE_ALONG", None)
        results = sweep.run_sweep(config, points, workdir, shard=(i, n),
                                  progress=_PROGRESS.value, pack=_PACK.value,
                                  pack_size=_PACK_SIZE.value, prune_along=prune_along)
    except (ConfigError, WorkdirError, ValueError, OSError) as e:
        cli.die(e, PROG)
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no points"
    ran = sum(r["action"] == "ran" for r in results)
    print(f"shard {i}/{n}: {len(results)} points ({tally}; {ran} run now) in {workdir}")
    if counts.get("preempted"):
        print("preempted: run the same command again to resume", file=sys.stderr)
        return EXIT_PREEMPTED
    print(f"report: python scripts/report.py --workdir={workdir}")
    return 1 if counts.get("failed") else 0  # a failed point fails the (array) job


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser(PROG))
