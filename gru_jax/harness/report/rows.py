"""The one loader: run summaries read from a folder into rows (JAX-free).

`load_runs(folder)` reads every run under a folder (a sweep's, a search's, a
single run's); `read_runs(folder, names)` the runs a plan names (a study's
grid, with the ones not run yet as None). `run_row` flattens one summary into
the columns every report shares (COLUMNS); `collect` is both, sorted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gru_jax.harness.keys import flatten
from gru_jax.harness.report.tables import num
from gru_jax.harness.summary import RunSummary, SummaryError, find_summaries, read_summary

CELL_ORDER = ("gru", "lstm", "rnn", "mingru")  # the rest follow alphabetically

COLUMNS = (
    "run", "task", "cell", "hidden_size", "seq_len", "seed", "learning_rate", "status",
    "step", "metric", "final", "loss", "solved", "steps_to_solve", "num_params",
    "steps_per_sec", "step_time_ms", "step_memory_bytes", "peak_memory_bytes",
    "peak_memory_source",
    "grad_horizon", "wall_time_sec", "num_devices", "error",
)
_SUMMARY_FIELDS = ("status", "step", "solved", "steps_to_solve", "num_params", "steps_per_sec",
                   "step_time_ms", "step_memory_bytes", "peak_memory_bytes",
                   "peak_memory_source", "grad_horizon", "wall_time_sec", "num_devices")


def load_runs(folder: str | Path) -> list[tuple[str, RunSummary | SummaryError]]:
    """(run folder name, summary) for the run in `folder` itself (named ".") and every
    run in a subfolder; an unreadable summary comes as its SummaryError."""
    folder = Path(folder)
    out = []
    for run_dir in find_summaries(folder):
        name = run_dir.name if run_dir != folder else "."
        try:
            out.append((name, read_summary(run_dir)))
        except SummaryError as e:
            out.append((name, e))
    return out


def read_runs(folder: str | Path, names: Iterable[str]) -> dict[str, RunSummary | None]:
    """{name: the summary in folder/name, or None where there is none yet}."""
    return {name: read_summary(Path(folder) / name) for name in names}


def run_row(name: str, summary: RunSummary | SummaryError) -> dict[str, Any]:
    """One run as a dict of COLUMNS (status "unreadable" for a SummaryError)."""
    row = dict.fromkeys(COLUMNS)
    row["run"] = name
    if isinstance(summary, SummaryError):
        return {**row, "status": "unreadable", "error": str(summary).splitlines()[0][:300]}
    config = flatten(summary.config)
    return {
        **row,
        "task": config.get("task.name"),  # a config of any experiment: keys may be absent
        "cell": config.get("model.cell"),
        "hidden_size": config.get("model.hidden_size"),
        "seq_len": config.get("task.seq_len"),
        "seed": config.get("seed"),
        "learning_rate": config.get("train.learning_rate"),
        **{k: getattr(summary, k) for k in _SUMMARY_FIELDS},
        "metric": summary.metric,
        "final": summary.final_value,
        "loss": summary.final.get("loss"),
        "error": summary.error.splitlines()[0][:300] if summary.error else None,
    }


def cell_key(cell: Any) -> tuple:
    """Sort key of a cell name: CELL_ORDER first, then the rest by name."""
    return (CELL_ORDER.index(cell), "") if cell in CELL_ORDER else (len(CELL_ORDER), str(cell))


def sort_key(row: Mapping[str, Any]) -> tuple:
    def n(x):
        v = num(x)
        return (0, v) if v is not None else (1, 0.0)

    return (str(row["task"]), cell_key(row["cell"]), n(row["hidden_size"]), n(row["seq_len"]),
            n(row["seed"]), n(row["learning_rate"]), row["run"])


def rows_of(runs: Sequence[tuple[str, RunSummary | SummaryError]]) -> list[dict[str, Any]]:
    """`run_row` of each (name, summary), sorted by task, cell, hidden, length, seed."""
    return sorted((run_row(n, s) for n, s in runs), key=sort_key)


def collect(folder: str | Path) -> list[dict[str, Any]]:
    """One row dict (keys: COLUMNS) per run under `folder`, sorted by task, cell
    (gru, lstm, rnn, mingru first), hidden size, sequence length, seed."""
    return rows_of(load_runs(folder))


def axis(values: Iterable[Any]) -> list[Any]:
    """Distinct values, numbers in numeric order."""
    return sorted({v for v in values if v is not None},
                  key=lambda v: (num(v) is None, num(v) or 0.0, str(v)))
