"""Search beyond grids: WOA, random search, TPE and CMA-ES as Optuna samplers on the engine.

A search tunes a few config keys (e.g. learning rate, hidden size, clipping
norm) within a fixed budget of trainings. Every candidate is a trial of the
search's Optuna study, trained by the sweep engine's worker in its own folder
(`sweep.point_name`): any number of workers, here or on other machines that
reach the storage, share one search; a killed worker's run is retried from its
checkpoint; nothing finished is trained again::

    DIR/study.db                                             the study (default storage)
    DIR/search.json                                          every candidate, its score
    DIR/hidden_size=23,clip_norm=0.5,learning_rate=0.0143/   one training

Modules:

- `space`: the search space ``{dotted key: (low, high, scale, type)}``
  (`make_space`), the map between the unit cube [0, 1]^d and config overrides
  (`from_unit`, `to_unit`), the same space as Optuna distributions;
- `woa`: the whale optimization algorithm (`woa_update`, `WhaleSearch`) and
  random search (`RandomSearch`) as pure, seeded ask/tell proposers;
- `plan`: the search's state as a pure function of the runs' outcomes, by
  replaying a proposer from its seed (`replay`);
- `sampler`: `ReplaySampler`, WOA and random search as an Optuna sampler with
  no state of its own, and `make_sampler` (also Optuna's TPE and CMA-ES);
- `engine`: `SearchWorker` (the sweep's worker asking the sampler), the study's
  settings, `run_search`;
- `log`: the search's log rebuilt from its study (`search_log`, search.json);
- `report`: the tables and the comparison of several searches.

Scores are minimised: the final eval metric of a ``done`` run (mse as is,
accuracy negated); a diverged or failed run scores +inf (the worst) and the
search goes on. The budget counts distinct runs: a proposal equal to an
earlier candidate's run reuses its score and costs nothing. One worker gives
exactly the candidates of the sequential ask/tell driver this engine replaced
(tests/data/woa_search_golden.json); several workers give the same candidates
for WOA and random search (the plan depends on the scores only, not on who
trained what when), and their own, seeded but timing-dependent, ones for TPE
and CMA-ES.

``python -m gru_jax.harness.search DIR_OR_STORAGE [...]`` prints the comparison table.
"""

from __future__ import annotations

from gru_jax.harness.search.plan import (
    MAX_GENERATIONS_FACTOR,
    Candidate,
    Plan,
    generations_of,
    proposals,
    replay,
)
from gru_jax.harness.search.space import (
    SIG_DIGITS,
    Dim,
    distributions,
    from_unit,
    make_space,
    snap,
    snap_point,
    to_unit,
)
from gru_jax.harness.search.woa import (
    PROPOSERS,
    RandomSearch,
    WhaleSearch,
    make_proposer,
    woa_a,
    woa_update,
)

SEARCH_LOCK = ".search.lock"  # no longer written: the study in DIR is the queue
SAMPLERS = ("woa", "random", "tpe", "cmaes")
METHODS = SAMPLERS  # the old name (--method)

# Optuna-backed names, imported on first use (the pure parts above need no optuna).
_LAZY = {
    "ReplaySampler": "sampler", "make_sampler": "sampler", "outcomes_of": "sampler",
    "CANDIDATE_ATTR": "sampler",
    "SearchSpec": "engine", "SearchWorker": "engine", "run_search": "engine",
    "open_search": "engine", "search_log": "log", "score": "log",
    "budget_candidates": "engine", "load_search_space": "engine", "default_study": "engine",
    "prepare": "engine", "write_log": "log", "submit_search": "engine",
    "format_table": "report", "trials_table": "report", "best_line": "report",
    "compare": "report", "search_logs": "report",
}

__all__ = [
    "MAX_GENERATIONS_FACTOR", "METHODS", "PROPOSERS", "SAMPLERS", "SEARCH_LOCK", "SIG_DIGITS",
    "Candidate", "Dim", "Plan", "RandomSearch", "WhaleSearch", "distributions", "from_unit",
    "generations_of", "make_proposer", "make_space", "proposals", "replay", "snap",
    "snap_point", "to_unit", "woa_a", "woa_update", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"gru_jax.harness.search.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
