"""What the harness's parts hand each other on disk, in one JAX-free module.

The trainer writes a run's ``summary.json``; the sweep, the search and the
report read it. `RunSummary` is that file's schema and the only code that
reads or writes it (`read_summary`, `write_summary`). Next to it: the workdir
file names, which way each metric is better, atomic JSON writes, and the
constants more than one part of the harness needs.

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
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# --- the files of a workdir -----------------------------------------------------------

SUMMARY_FILE = "summary.json"  # a run's RunSummary (only this module names it)
CONFIG_FILE = "config.json"  # the resolved config a run started with (checked on resume)
SWEEP_FILE = "sweep.json"  # a sweep's points and their folders
SEARCH_FILE = "search.json"  # a search's candidates, scores and best
LOCK_FILE = ".lock"  # held while a point runs

# --- statuses, exit codes, shared constants -----------------------------------------------

STATUSES = ("done", "diverged", "failed", "preempted")
FINISHED = ("done", "diverged")  # a run in one of these states is never run again
STOP_REASONS = ("solved", "budget", "diverged", "preempted", "failed")
EXIT_PREEMPTED = 143  # 128 + SIGTERM: what a shell reports for a process ended by SIGTERM

# Keys in which the members of a packed group may differ: the seed (a pytree leaf of
# nothing static) and the learning rate (a per-member scale of one schedule).
PACK_KEYS = frozenset({"seed", "train.learning_rate"})
CHRONO_CELLS = ("gru", "lstm")  # cells with a gate that keeps the state (chrono init)
DTYPES = ("float32", "bfloat16")  # model.dtype: compute dtype of the matrix products

# --- metric direction: stated once ----------------------------------------------------

METRICS = ("mse", "accuracy")  # the tasks' eval metrics
HIGHER_IS_BETTER = frozenset({"accuracy"})  # every other metric (mse, loss) goes down


def higher_is_better(metric: str) -> bool:
    return metric in HIGHER_IS_BETTER


def reached(metric: str, value: float, threshold: float) -> bool:
    """`value` of `metric` is at least as good as `threshold` (mse <= t, accuracy >= t)."""
    return value >= threshold if higher_is_better(metric) else value <= threshold


def minimised(metric: str, value: float) -> float:
    """`value` as a number to minimise: as is, or negated for a metric that goes up."""
    return -value if higher_is_better(metric) else value


# --- JSON files ------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """`obj` as JSON into `path`: readers see the old file or the new one, whole.

    The file gets the permissions a plain ``open(path, "w")`` would give
    (0o666 less the umask), not mkstemp's 0o600. NaN/inf are written as null.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(json_safe(obj), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in `path`, or None if there is no such file (ValueError if it is not JSON)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def json_safe(x: Any) -> Any:
    """Plain JSON values: NaN/inf -> None, numpy scalars and tuples -> Python ones."""
    if isinstance(x, Mapping):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy scalar, 0-d array
        return json_safe(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


# --- flat dotted keys --------------------------------------------------------------------


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; ConfigDicts are read through `to_dict()`."""
    if hasattr(d, "to_dict"):
        d = d.to_dict()
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping) or hasattr(v, "to_dict"):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def unflatten(flat: Mapping[str, Any]) -> dict:
    """{"a.b": 1} -> {"a": {"b": 1}}: the inverse of `flatten`."""
    out: dict = {}
    for k, v in flat.items():
        node = out
        *path, leaf = k.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


# --- the run summary -----------------------------------------------------------------


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
    solved: bool = False
    steps_to_solve: int | None = None
    stop_reason: str | None = None  # one of STOP_REASONS (None: version 0)
    num_devices: int | None = None
    num_params: int | None = None
    steps_per_sec: float | None = None
    step_time_ms: float | None = None
    wall_time_sec: float | None = None
    # Where the wall time went: train_time_sec (stepping), compile_sec, eval_sec (with
    # diagnostics), checkpoint_sec, log_sec (host syncs, TensorBoard), summed over sessions.
    time_breakdown: dict = dataclasses.field(default_factory=dict)
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


# Optional fields left out of the file when unset (the rest are always written).
_DROPPED_WHEN_NONE = frozenset({"diverged_at", "error", "traceback"})
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


# --- the runs a folder was meant to hold ---------------------------------------------


def planned_runs(workdir: str | os.PathLike) -> list[str] | None:
    """The run folder names a sweep (sweep.json) or a search (search.json's
    candidates) planned in `workdir`, in order; None if it holds neither."""
    workdir = Path(workdir)
    sweep = read_json(workdir / SWEEP_FILE)
    if sweep is not None:
        return [p["name"] for p in sweep["points"]]
    search = read_json(workdir / SEARCH_FILE)
    if search is not None:
        return list(dict.fromkeys(c["name"] for c in search["candidates"]))
    return None
