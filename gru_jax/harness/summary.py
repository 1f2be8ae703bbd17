"""A run's ``summary.json``: its schema and the only code that reads or writes it (JAX-free).

The trainer writes it; the sweep, the search and the reports read it through
`RunSummary` (`read_summary`, `write_summary`, `find_summaries`).

Schema versions of summary.json:

* 0: files without ``schema_version`` (written before it existed). Read by
  filling the fields they lack with their defaults and taking the metric
  from ``final`` or ``eval_history`` when ``task`` is missing.
* 1: ``schema_version: 1``, adds ``stop_reason``, ``grad_horizon_init``,
  ``grad_norms_init``, ``grad_horizon_median``, ``grad_horizons`` ([step,
  horizon] per eval) and ``machine`` (where the run ran).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gru_jax.harness.files import SUMMARY_FILE, json_safe, read_json, write_json_atomic
from gru_jax.harness.metrics import METRICS
from gru_jax.harness.status import FINISHED, STATUSES

SCHEMA_VERSION = 1


class SummaryError(ValueError):
    """A summary.json that cannot be read as a RunSummary (not JSON, wrong fields)."""


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """What a reader needs of the task: its metric and thresholds."""

    metric: str | None = None  # "mse" | "accuracy"
    solved_at: float | None = None  # threshold on `metric` (see `reached`)
    baseline: float | None = None  # the best memoryless predictor's score
    input_len: int | None = None  # time steps of the model input
    target: str | None = None  # "last" | "sequence"


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """A run's summary.json: status, final metrics, speed, memory, gradients, config.

    `eval_history` entries are {"step", <metric>, "loss"}; `final` is the last
    one without "step". `grad_norms` [T] is ||dL/dh_t|| at the last
    eval (`grad_norms_init` at step 0), `grad_horizon` the lag it reaches.
    """

    status: str  # one of STATUSES
    step: int | None = None
    final: dict = dataclasses.field(default_factory=dict)
    solved: bool = False  # the final eval at the task's threshold
    # The first eval at the threshold (a touch: a study's own rule, such as
    # long_range.solve's held streak, reads eval_history instead).
    steps_to_solve: int | None = None
    stop_reason: str | None = None  # one of STOP_REASONS (None: version 0)
    num_devices: int | None = None
    num_params: int | None = None
    steps_per_sec: float | None = None
    step_time_ms: float | None = None
    wall_time_sec: float | None = None
    # Where the wall time went: train_time_sec (stepping), compile_sec, eval_sec (with
    # diagnostics), checkpoint_sec, log_sec (host syncs, TensorBoard), summed over sessions.
    time_breakdown: dict | None = None
    resumed_from: int | None = None
    grad_horizon: int | None = None
    grad_norms: list | None = None
    grad_horizon_init: int | None = None
    grad_norms_init: list | None = None
    grad_horizon_median: float | None = None
    grad_horizons: list = dataclasses.field(default_factory=list)  # [[step, horizon], ...]
    peak_memory_bytes: int | None = None
    peak_memory_source: str | None = None
    step_memory_bytes: int | None = None  # XLA's account of the compiled train step
    pack_size: int = 1
    eval_history: list = dataclasses.field(default_factory=list)
    task: TaskInfo = dataclasses.field(default_factory=TaskInfo)
    config: dict = dataclasses.field(default_factory=dict)
    machine: dict = dataclasses.field(default_factory=dict)  # cpu, backend, versions, commit
    diverged_at: int | None = None
    error: str | None = None
    traceback: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def metric(self) -> str | None:
        return self.task.metric

    @property
    def final_value(self) -> float | None:
        """final[metric], or None (no metric, not evaluated, NaN)."""
        return self.final.get(self.metric) if self.metric else None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return json_safe({k: v for k, v in d.items()
                          if v is not None or k not in _DROPPED_WHEN_NONE})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSummary:
        """A RunSummary from summary.json's object; version 0 migrated.
        SummaryError names an unknown field or a missing status."""
        if not isinstance(d, Mapping):
            raise SummaryError(f"not a JSON object: {type(d).__name__}")
        d = dict(d)
        version = d.pop("schema_version", 0)
        if version not in (0, SCHEMA_VERSION):
            raise SummaryError(f"schema_version {version!r}; this code reads 0 and "
                               f"{SCHEMA_VERSION}")
        unknown = sorted(set(d) - _FIELDS)
        if unknown:
            raise SummaryError(f"unknown field(s) {', '.join(unknown)}")
        if d.get("status") not in STATUSES:
            raise SummaryError(f"status must be one of {', '.join(STATUSES)}, "
                               f"got {d.get('status')!r}")
        task = dict(d.pop("task", None) or {})
        if version == 0 and not task.get("metric"):
            task["metric"] = _metric_from(d.get("final") or {}, d.get("eval_history") or [])
        fields = {k: v for k, v in d.items() if v is not None}  # null: the default
        return cls(**fields, task=TaskInfo(**task), schema_version=SCHEMA_VERSION)


def prefix(s: RunSummary, steps: int) -> RunSummary | None:
    """What the same run capped at `steps` would have finished with, read from `s`, a
    finished run trained with a CONSTANT learning rate (a run capped at B steps is then
    the first B steps of one capped at more): `s` itself if it stopped by `steps`, else
    its eval history up to `steps`, the solve within it and the budget as the reason.
    End-of-run diagnostics and timings, not known at `steps`, are left out. None where
    `s` cannot tell: not done, or no eval at `steps`."""
    if s.status != "done":
        return None
    if s.step is not None and s.step <= steps:
        return s
    history = [e for e in s.eval_history if e.get("step", steps + 1) <= steps]
    if not history or history[-1]["step"] != steps:
        return None
    solved = s.steps_to_solve is not None and s.steps_to_solve <= steps
    config = s.config
    if isinstance(config, Mapping) and isinstance(config.get("train"), Mapping):
        config = {**config, "train": {**config["train"], "steps": steps}}
    return dataclasses.replace(
        s, step=steps, final={k: v for k, v in history[-1].items() if k != "step"},
        solved=solved, steps_to_solve=s.steps_to_solve if solved else None,
        stop_reason="budget", eval_history=history, config=config,
        grad_horizons=[g for g in s.grad_horizons if g[0] <= steps], grad_horizon=None,
        grad_norms=None, steps_per_sec=None, step_time_ms=None, wall_time_sec=None,
        time_breakdown=None)


# Optional fields left out of the file when unset (the rest are always written).
_DROPPED_WHEN_NONE = frozenset({"diverged_at", "error", "traceback", "time_breakdown"})
_FIELDS = frozenset(f.name for f in dataclasses.fields(RunSummary)) - {"schema_version"}


def _metric_from(final: Mapping, history: list) -> str | None:
    """Version 0 without "task": the metric the final metrics (or the history) hold."""
    for entry in (final, *reversed(history)):
        for name in METRICS:
            if name in entry:
                return name
    return None


def summary_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / SUMMARY_FILE


def read_summary(run_dir: str | os.PathLike) -> RunSummary | None:
    """The run's summary, or None if it has none yet. SummaryError if unreadable."""
    try:
        d = read_json(summary_path(run_dir))
    except (OSError, ValueError) as e:
        raise SummaryError(f"{summary_path(run_dir)}: {e}") from None
    if d is None:
        return None
    try:
        return RunSummary.from_dict(d)
    except (SummaryError, TypeError) as e:
        raise SummaryError(f"{summary_path(run_dir)}: {e}") from None


def write_summary(run_dir: str | os.PathLike, summary: RunSummary) -> None:
    write_json_atomic(summary_path(run_dir), summary.to_dict())


def summary_mtime(run_dir: str | os.PathLike) -> float | None:
    """When the run's summary was last written (None: no summary)."""
    try:
        return summary_path(run_dir).stat().st_mtime
    except OSError:
        return None


def find_summaries(workdir: str | os.PathLike) -> list[Path]:
    """The run folders under `workdir` that hold a summary: `workdir` itself (a
    single run) first, then every direct subfolder, sorted."""
    workdir = Path(workdir)
    runs = sorted(p.parent for p in workdir.glob(f"*/{SUMMARY_FILE}"))
    return ([workdir] if summary_path(workdir).is_file() else []) + runs
