"""Train one run (resuming it if DIR holds its checkpoints)::

    python scripts/train.py --config=experiments/adding.py --workdir=DIR [--config.KEY=VALUE ...]

Exit codes: 0 done (or diverged: see summary.json), 1 failed (traceback),
2 bad config or unusable workdir (one line on stderr, nothing written),
143 (gru_jax.harness.train.EXIT_PREEMPTED) stopped by SIGTERM/SIGINT after saving a
checkpoint: run the same command again to resume.

Across hosts (one run, the batch split over every process's devices), start
one process per host under srun, or with JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES and JAX_PROCESS_ID set: see gru_jax/harness/distributed.py and
scripts/slurm_multihost.sh.
"""

from __future__ import annotations

import signal
import sys

from absl import flags
from ml_collections import config_flags

from gru_jax.harness import cli
from gru_jax.harness.distributed import maybe_initialize
from gru_jax.harness.errors import ConfigError, WorkdirError

_CONFIG = config_flags.DEFINE_config_file("config", None, cli.config_help())
_WORKDIR = flags.DEFINE_string("workdir", None, "folder for checkpoints, events and the summary")
_PRINT_CONFIG = flags.DEFINE_bool("print_config", False, "list every config key (default, "
                                  "allowed values, meaning) and, with --config, its values; exit")


def main(argv):
    cli.setup(argv)
    if _PRINT_CONFIG.value:
        cli.print_config_and_exit(_CONFIG)
    cli.enable_compilation_cache()
    maybe_initialize()  # a multi-host job (SLURM, JAX_COORDINATOR_ADDRESS): before any JAX call
    from gru_jax.harness.summary import RunSummary
    from gru_jax.harness.train import EXIT_PREEMPTED, Preempted, one_line, train_and_evaluate

    try:
        config = cli.config_from_flag(_CONFIG)
        if not _WORKDIR.value:
            raise WorkdirError("--workdir: required")
        summary = train_and_evaluate(config, _WORKDIR.value)
        print(one_line(RunSummary.from_dict(summary), _WORKDIR.value), flush=True)
    except (ConfigError, WorkdirError) as e:
        cli.die(str(e))
    except Preempted as e:
        print(f"preempted: {e}", file=sys.stderr)
        sys.exit(EXIT_PREEMPTED)


def run() -> None:
    """The command line (``python scripts/train.py`` and ``gru-jax train``)."""
    signal.signal(signal.SIGINT, lambda *_: sys.exit("interrupted"))  # one line, any time
    cli.run_command(main, sys.modules[__name__], cli.flags_parser())
