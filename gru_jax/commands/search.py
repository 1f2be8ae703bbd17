r"""Searches an experiment's `get_search_space()` with WOA, random search, TPE or CMA-ES.

    python scripts/search.py --config=experiments/search_adding.py --workdir=runs/search_woa \
        --sampler=woa --budget=24 --population=4 --seed=0 --workers=2
    python scripts/search.py --config=experiments/search_adding.py --workdir=runs/search_tpe \
        --sampler=tpe --budget=24 --population=4 --seed=0
    python scripts/search.py --config=experiments/search_adding.py --workdir=/shared/search \
        --sampler=woa --budget=64 --population=8 --workers=8 --executor=slurm \
        --storage=postgresql+psycopg://USER@DBHOST/searches --slurm_partition=gpu
    python scripts/search.py --workdir=runs/search_woa --report      # the study's tables
    python scripts/search.py --report --storage=postgresql://user@host/db   # every search there

Each candidate is a trial of the search's Optuna study (--storage, default
DIR/study.db; named --study, default search-SAMPLER-seedSEED) and one training
(the experiment's train.steps) in its own subfolder of --workdir;
DIR/search.json logs every candidate and its score. --budget counts candidate
trainings (or --budget_steps total train steps); the search never trains more.
`--workers=N` runs N workers here (`--executor=slurm`: a SLURM job array of N
through submitit, as scripts/sweep.py does); the same command elsewhere on the
same storage joins the search. `--config.KEY=VALUE` changes the base config under
every candidate. Start it again to resume: finished candidates are reused and
the search reaches the same result. Then, for the runs' table:
python scripts/report.py --workdir=DIR

Exit codes: 0 the search finished, 2 bad flags, config or search space (one
line on stderr, nothing run), 143 preempted (run the same command to resume).
"""

from __future__ import annotations

import signal
import sys

from absl import flags
from ml_collections import config_flags

from gru_jax.harness import cli, search
from gru_jax.harness.errors import ConfigError, WorkdirError
from gru_jax.harness.status import EXIT_PREEMPTED

PROG = "search.py"  # prefix of the one-line errors
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file with get_config() and get_search_space().",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Search folder: one subfolder per candidate.")
_SAMPLER = flags.DEFINE_string("sampler", None,
                               f"One of {', '.join(search.SAMPLERS)} (default woa).")
_METHOD = flags.DEFINE_string("method", None, "The old name of --sampler.")
_BUDGET = flags.DEFINE_integer("budget", None, "Candidate trainings in all.")
_BUDGET_STEPS = flags.DEFINE_integer(
    "budget_steps", None, "Instead of --budget: train steps in all (// train.steps candidates).")
_POPULATION = flags.DEFINE_integer("population", 8, "Candidates per generation.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the proposals (not of the trainings).")
_TOP = flags.DEFINE_integer("top", 8, "Rows of the printed table.")
_WORKERS = flags.DEFINE_integer("workers", 1, "Workers to start here.", lower_bound=1)
_STORAGE = flags.DEFINE_string(
    "storage", None, "Optuna storage of the candidates' trials (default DIR/study.db); "
    "copies of this command on the same storage share the trainings.")
_STUDY = flags.DEFINE_string("study", None, "The search's study in the storage "
                             "(default search-SAMPLER-seedSEED).")
cli.define_executor_flags()
for _name in cli.EXECUTOR_FLAGS:
    flags.declare_key_flag(_name)
_REPORT = flags.DEFINE_bool("report", False, "Print the search's tables from its study (or "
                            "every search in --storage, compared) and exit.")


def _sampler() -> str:
    """--sampler, or the old --method; the flag named in the one-line error."""
    if _SAMPLER.value is not None and _METHOD.value is not None:
        raise ConfigError("--sampler and --method: give one (--method is its old name)")
    name, value = ("method", _METHOD.value) if _METHOD.value is not None else \
        ("sampler", _SAMPLER.value or "woa")
    if value not in search.SAMPLERS:
        raise ConfigError(f"--{name}: must be one of {', '.join(search.SAMPLERS)}, "
                          f"got {value!r}")
    return value


def report(workdir: str | None) -> int:
    """The search's tables (its study), or the comparison of every search in --storage."""
    if _STORAGE.value and not workdir:
        print(search.compare([_STORAGE.value]))
        return 0
    if not workdir:
        raise WorkdirError("--workdir (or --storage): required with --report")
    logs = search.search_logs(workdir)
    for log_, wd, study in logs:
        print(f"{log_['method']} search, seed {log_['seed']} ({log_['status']}): "
              f"{len(log_['candidates'])} candidates in {wd}")
        print(search.format_table(log_, top=_TOP.value))
        print(search.best_line(log_, wd))
        if study is not None:
            print(f"\nstudy {study.study_name}: its trials (score: the minimised metric)")
            print(search.trials_table(study, top=_TOP.value))
    if len(logs) > 1:
        print("\n" + search.compare([workdir]))
    return 0


def main(argv: list[str]) -> int:
    cli.setup(argv, PROG, run_logs=False)
    workdir = _WORKDIR.value
    try:
        if _REPORT.value:
            return report(workdir)
        if not workdir:
            raise WorkdirError("--workdir: required")
        sampler = _sampler()
        if _BUDGET.value is None and _BUDGET_STEPS.value is None:
            raise ConfigError("--budget or --budget_steps: give one")
        config = cli.config_from_flag(_CONFIG)
        path, _, arg = config_flags.get_config_filename(flags.FLAGS["config"]).partition(":")
        space = search.load_search_space(path, arg or None)
        if flags.FLAGS.executor == "slurm":
            jobs = search.submit_search(
                config, workdir, space, sampler, _BUDGET.value, _POPULATION.value,
                _SEED.value, workers=_WORKERS.value, budget_steps=_BUDGET_STEPS.value,
                storage=_STORAGE.value, study=_STUDY.value, **cli.slurm_kwargs())
            print(f"submitted {len(jobs)} workers: {', '.join(j.job_id for j in jobs)}")
            print(f"report: python scripts/search.py --workdir={workdir} --report")
            return 0
        cli.enable_compilation_cache()
        result = search.run_search(
            config, workdir, space, sampler, _BUDGET.value, _POPULATION.value,
            _SEED.value, budget_steps=_BUDGET_STEPS.value, storage=_STORAGE.value,
            study=_STUDY.value, workers=_WORKERS.value)
    except (ConfigError, WorkdirError, ValueError, OSError) as e:
        cli.die(e, PROG)
    if result["status"] == "preempted":
        print("preempted: run the same command again to resume", file=sys.stderr)
        return EXIT_PREEMPTED
    cands = result["candidates"]
    trained = sum(c["trained"] for c in cands)
    print(f"\n{result['method']} search, seed {result['seed']}: {len(cands)} candidates "
          f"({trained} trained by this process) in {workdir}")
    print(search.format_table(result, top=_TOP.value))
    print(search.best_line(result, workdir))
    return 0 if result["best"] is not None else 1


def run() -> None:
    """The command line (``python scripts/search.py`` and ``gru-jax search``)."""
    signal.signal(signal.SIGINT, lambda *_: sys.exit("interrupted"))  # one line, any time
    cli.run_command(main, sys.modules[__name__], cli.flags_parser(PROG))
