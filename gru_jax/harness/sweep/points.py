"""Sweep points: dicts of dotted config overrides, their checks and folder names.

A point is what an experiment's `get_sweep()` lists (or a `get_source()` emits):
``{"model.cell": "gru", "task.seq_len": 50}``. It may hold the special key
``"workdir"`` (a relative folder name) to choose its folder; otherwise the folder
is `point_name` of the overrides. A point's identity (the Optuna trial it becomes)
is its canonical JSON (`canonical`: sorted keys), so two points may share a folder
(e.g. the same run with a raised ``train.steps``: the trainer resumes it).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from gru_jax.harness.config import apply_overrides
from gru_jax.harness.config import make_task as default_validate
from gru_jax.harness.errors import ConfigError
from gru_jax.harness.keys import PACK_KEYS
from gru_jax.harness.summary import RunSummary, SummaryError, read_summary

WORKDIR_KEY = "workdir"  # a point's own folder name, not a config override

MAX_NAME = 96  # longer readable names get a hash (most filesystems allow 255 bytes)

TrainFn = Callable[[ml_collections.ConfigDict, str], Any]

_SCALARS = (str, int, float, bool, type(None))


# ---------------------------------------------------------------- sweep lists


def grid(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The full product of a few axes, last axis varying fastest.

    >>> grid({"model.cell": ["gru", "lstm"], "task.seq_len": [50, 100]})[1]
    {'model.cell': 'gru', 'task.seq_len': 100}
    """
    keys = list(axes)
    for k in keys:
        if isinstance(axes[k], (str, bytes)) or not isinstance(axes[k], Sequence):
            raise ConfigError(f"{k}: a grid axis must be a list of values, got {axes[k]!r}")
    product = itertools.product(*(axes[k] for k in keys))
    return [dict(zip(keys, values, strict=True)) for values in product]


def _check_value(key: str, value: Any) -> Any:
    if isinstance(value, (list, tuple)) and all(isinstance(v, _SCALARS) for v in value):
        return tuple(value)  # ConfigDict tuple fields; lists would not round-trip
    if not isinstance(value, _SCALARS):
        raise ConfigError(
            f"{key}: a sweep value must be a str, number, bool, None or a tuple of those, "
            f"got {type(value).__name__} (use one dotted key per leaf)"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: must be finite, got {value!r}")
    return value


def expand(
    sweep: Iterable[Mapping[str, Any]] | None,
    config: ml_collections.ConfigDict | None = None,
    validate: Callable[[ml_collections.ConfigDict], Any] | None = None,
) -> list[dict[str, Any]]:
    """Checks a sweep list and returns it as a list of plain override dicts.

    `None` (an experiment without `get_sweep`) is one point: the base config. Each
    point must be a dict of dotted string keys to plain values; with `config`
    every point is applied to it, then each result is checked by `validate`
    (default: gru_jax.harness.config.make_task, which asks the task and the
    devices too), so one bad point stops the sweep before anything runs. Two
    identical points are an error (they would share a folder).
    """
    if sweep is None:
        sweep = [{}]
    if isinstance(sweep, Mapping) or isinstance(sweep, (str, bytes)):
        raise ConfigError(
            "sweep: get_sweep() must return a list of dicts of dotted overrides "
            "(gru_jax.harness.sweep.grid builds one from axes)"
        )
    points: list[dict[str, Any]] = []
    for i, point in enumerate(sweep):
        if not isinstance(point, Mapping):
            raise ConfigError(f"sweep point {i}: must be a dict of dotted overrides, got {point!r}")
        clean = {}
        for key, value in point.items():
            if key == WORKDIR_KEY:
                parts = value.split("/") if isinstance(value, str) else [""]
                if any(p in ("", ".", "..") or os.sep in p for p in parts):
                    raise ConfigError(f"sweep point {i}: workdir must be a relative folder "
                                      f"(names joined by '/', no '..'), got {value!r}")
                clean[key] = value
                continue
            if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
                raise ConfigError(f"sweep point {i}: bad key {key!r} (want e.g. 'model.cell')")
            try:
                clean[key] = _check_value(key, value)
            except ConfigError as e:
                raise ConfigError(f"sweep point {i}: {e}") from None
        points.append(clean)
    if not points:
        raise ConfigError("sweep: get_sweep() returned no points")
    seen: dict[str, int] = {}
    for i, point in enumerate(points):
        canon = _canonical(point)
        if canon in seen:
            raise ConfigError(f"sweep point {i}: same overrides as point {seen[canon]}: {point}")
        seen[canon] = i
    if config is not None:
        # every key first (a typo anywhere is the likeliest mistake), then values
        configs = []
        for i, point in enumerate(points):
            try:
                configs.append(apply_overrides(config, overrides_of(point)))
            except ConfigError as e:
                raise ConfigError(f"sweep point {i} ({point_name(point)}): {e}") from e
        validate = validate or default_validate
        for i, (point, cfg) in enumerate(zip(points, configs, strict=True)):
            try:
                validate(cfg)
            except ConfigError as e:
                raise ConfigError(f"sweep point {i} ({point_name(point)}): {e}") from e
    return points


# ---------------------------------------------------------------- names, shards


def canonical(point: Mapping[str, Any]) -> str:
    """The point's identity: JSON with sorted keys (tuples as lists)."""
    return json.dumps(
        {k: list(v) if isinstance(v, tuple) else v for k, v in point.items()},
        sort_keys=True,
    )


_canonical = canonical


def overrides_of(point: Mapping[str, Any]) -> dict[str, Any]:
    """The point's config overrides (without its ``workdir`` key)."""
    return {k: v for k, v in point.items() if k != WORKDIR_KEY}


def point_dir(point: Mapping[str, Any]) -> str:
    """The point's folder name: its ``workdir`` key, else `point_name` of its overrides."""
    return point.get(WORKDIR_KEY) or point_name(overrides_of(point))


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Last dotted component, or the full key where two keys share it."""
    leaf = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if leaf.count(s) == 1 else k) for k, s in zip(keys, leaf, strict=True)}


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form: 0.001, 1e-05
    if isinstance(value, tuple):
        return "+".join(_fmt(v) for v in value)
    return str(value)


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")


def point_name(overrides: Mapping[str, Any]) -> str:
    """A short, filesystem-safe folder name for a point, e.g. ``cell=gru,seq_len=50``.

    Keys are sorted and shortened to their last component (the full dotted key
    where two would clash), values written compactly. The name is a pure function
    of the overrides, so every shard computes the same folders. When a value needs
    characters outside ``[A-Za-z0-9._+-]`` (replaced by ``_``) or the name would be
    longer than MAX_NAME, a hash of the exact overrides is appended so distinct
    points keep distinct names. No overrides: ``base``.
    """
    if not overrides:
        return "base"
    keys = sorted(overrides)
    short = short_keys(keys)
    parts, lossy = [], False
    for k in keys:
        v = _fmt(overrides[k])
        safe = "".join(c if c in _SAFE else "_" for c in v) or "_"
        lossy |= safe != v
        parts.append(f"{short[k]}={safe}")
    name = ",".join(parts)
    if lossy or len(name) > MAX_NAME:
        digest = hashlib.sha1(_canonical(overrides).encode()).hexdigest()[:10]
        name = f"{name[: MAX_NAME - 11].rstrip(',=')}-{digest}"
    return name


def point_names(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """`point_name` for each point, a hash appended where two short names clash
    (e.g. ``model.cell`` in one point and ``encoder.cell`` in another)."""
    short = [point_name(p) for p in points]
    names = []
    for point, name in zip(points, short, strict=True):
        if short.count(name) > 1:
            digest = hashlib.sha1(_canonical(point).encode()).hexdigest()[:10]
            name = f"{name[: MAX_NAME - 11]}-{digest}"
        names.append(name)
    return names


# ---------------------------------------------------------------- helpers


def _summary_or_none(run_dir: str | os.PathLike) -> RunSummary | None:
    """The run's summary; None if it has none or one that cannot be read (a point
    whose summary cannot be read is not finished: it is run again)."""
    try:
        return read_summary(run_dir)
    except SummaryError:
        return None


def format_summary(summary: RunSummary | None) -> str:
    """One line for a run: status, step, final metric, solved, time."""
    if summary is None:
        return "no summary"
    parts = [summary.status]
    if summary.step is not None:
        parts.append(f"step {summary.step}")
    if summary.final_value is not None:
        parts.append(f"{summary.metric} {summary.final_value:.4g}")
    if summary.solved:
        parts.append(f"solved at step {summary.steps_to_solve}")
    if summary.wall_time_sec is not None:
        parts.append(f"{summary.wall_time_sec:.1f}s")
    if summary.error:
        parts.append(summary.error.splitlines()[0][:200])
    return ", ".join(parts)


def prune_reason(k: int, points: Sequence[Mapping[str, Any]], names: Sequence[str],
                 workdir: Path, axis: str) -> str | None:
    """Why point k need not run, or None: at the next smaller value of `axis` (a
    difficulty axis such as task.seq_len), every point with k's other overrides (any
    seed) finished unsolved or was itself pruned. Points still to run or running
    there keep k in the grid (nothing is inferred from a partial result)."""
    if axis not in points[k]:
        return None
    others = lambda p: sorted((key, repr(v)) for key, v in p.items()  # noqa: E731
                              if key not in (axis, "seed"))
    mine = others(points[k])
    shorter = [p[axis] for p in points if axis in p and others(p) == mine
               and p[axis] < points[k][axis]]
    if not shorter:
        return None
    prev = max(shorter)
    below = [j for j, p in enumerate(points) if axis in p and p[axis] == prev
             and others(p) == mine]
    for j in below:
        summary = _summary_or_none(workdir / names[j])
        finished_unsolved = summary is not None and summary.finished and not summary.solved
        if not finished_unsolved and prune_reason(j, points, names, workdir, axis) is None:
            return None
    return f"pruned: unsolved by all {len(below)} runs at {axis}={prev}"


PackFn = Callable[[list, list], Any]


def pack_groups(points: Sequence[Mapping[str, Any]], size: int) -> list[list[int]]:
    """Positions in `points` grouped for one packed program each: points whose
    overrides are equal apart from PACK_KEYS (seed, train.learning_rate), in order
    of first appearance, cut into groups of at most `size`.

    >>> pack_groups([{"seed": 0}, {"seed": 1, "model.cell": "lstm"}, {"seed": 1}], 8)
    [[0, 2], [1]]
    """
    if size < 1:
        raise ValueError(f"pack size must be at least 1, got {size}")
    by_rest: dict[str, list[int]] = {}
    for k, point in enumerate(points):
        rest = {key: v for key, v in point.items() if key not in PACK_KEYS}
        by_rest.setdefault(_canonical(rest), []).append(k)
    return [g[j:j + size] for g in by_rest.values() for j in range(0, len(g), size)]


def load_experiment(config_file: str | os.PathLike):
    """The experiment module at `config_file` (an optional ``:arg`` suffix is
    ignored), loaded the way config_flags loads it; ConfigError if it cannot be."""
    import importlib.util

    path = Path(str(config_file).split(":", 1)[0])
    if not path.is_file():
        raise ConfigError(f"--config: no such file {path}")
    spec = importlib.util.spec_from_file_location(f"_experiment_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"--config: cannot load {path} as a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_sweep(config_file: str | os.PathLike, arg: str | None = None):
    """`get_sweep()` (or `get_sweep(arg)`) of an experiment file; None if it has none."""
    import inspect

    get_sweep = getattr(load_experiment(config_file), "get_sweep", None)
    if get_sweep is None:
        return None
    takes_arg = len(inspect.signature(get_sweep).parameters) > 0
    return get_sweep(arg) if (takes_arg and arg is not None) else get_sweep()
