"""Searches an experiment's `get_search_space()` with WOA or random search.

    python scripts/search.py --config=experiments/search_adding.py --workdir=runs/search_woa \
        --method=woa --budget=24 --population=4 --seed=0
    python scripts/search.py --config=experiments/search_adding.py --workdir=runs/search_random \
        --method=random --budget=24 --population=4 --seed=0

Each candidate is one training (the experiment's train.steps) in its own
subfolder of --workdir; DIR/search.json logs every candidate and its score.
--budget counts candidate trainings (or --budget_steps total train steps);
the search never trains more. `--config.KEY=VALUE` changes the base config
under every candidate. Start it again to resume: finished candidates are
reused and the search reaches the same result. Then, for the runs' table:
python scripts/report.py --workdir=DIR

Exit codes: 0 the search finished, 2 bad flags, config or search space (one
line on stderr, nothing run), 143 preempted (run the same command to resume).
"""

from __future__ import annotations

import os
import signal
import sys

signal.signal(signal.SIGINT, lambda *_: sys.exit("interrupted"))  # one line, any time

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from gru_jax.harness import cli, search  # noqa: E402
from gru_jax.harness.errors import ConfigError, WorkdirError  # noqa: E402
from gru_jax.harness.status import EXIT_PREEMPTED  # noqa: E402

PROG = "search.py"  # prefix of the one-line errors
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file with get_config() and get_search_space().",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Search folder: one subfolder per candidate.")
_METHOD = flags.DEFINE_string("method", "woa", f"One of {', '.join(search.METHODS)}.")
_BUDGET = flags.DEFINE_integer("budget", None, "Candidate trainings in all.")
_BUDGET_STEPS = flags.DEFINE_integer(
    "budget_steps", None, "Instead of --budget: train steps in all (// train.steps candidates).")
_POPULATION = flags.DEFINE_integer("population", 8, "Candidates per generation.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the proposals (not of the trainings).")
_TOP = flags.DEFINE_integer("top", 8, "Rows of the printed table.")
_STORAGE = flags.DEFINE_string(
    "storage", None, "Optuna storage of the candidates' trials (default DIR/study.db); "
    "copies of this command on the same storage share the trainings.")


def main(argv: list[str]) -> int:
    cli.setup(argv, PROG, run_logs=False)
    workdir = _WORKDIR.value
    try:
        if not workdir:
            raise WorkdirError("--workdir: required")
        if _METHOD.value not in search.METHODS:
            raise ConfigError(f"--method: must be one of {', '.join(search.METHODS)}, "
                              f"got {_METHOD.value!r}")
        if _BUDGET.value is None and _BUDGET_STEPS.value is None:
            raise ConfigError("--budget or --budget_steps: give one")
        config = cli.config_from_flag(_CONFIG)
        path, _, arg = config_flags.get_config_filename(flags.FLAGS["config"]).partition(":")
        space = search.load_search_space(path, arg or None)
        result = search.run_search(
            config, workdir, space, _METHOD.value, _BUDGET.value, _POPULATION.value,
            _SEED.value, budget_steps=_BUDGET_STEPS.value, storage=_STORAGE.value)
    except (ConfigError, WorkdirError, ValueError, OSError) as e:
        cli.die(e, PROG)
    if result["status"] == "preempted":
        print("preempted: run the same command again to resume", file=sys.stderr)
        return EXIT_PREEMPTED
    cands = result["candidates"]
    trained = sum(c["trained"] for c in cands)
    print(f"\n{result['method']} search, seed {result['seed']}: {len(cands)} candidates "
          f"({trained} trained now) in {workdir}")
    print(search.format_table(result, top=_TOP.value))
    best = result["best"]
    if best is None:
        print("best: none (every candidate failed or diverged)")
        return 1
    print(f"best: #{best['index']} {result['metric']} {best['value']:.4g} "
          f"{best['overrides']} ({os.path.join(workdir, best['name'])})")
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser(PROG))
