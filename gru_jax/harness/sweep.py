"""Sweeps: a list of config overrides, each point run in its own subfolder.

A sweep is what an experiment's `get_sweep()` returns: a list of dicts of dotted
overrides, e.g. ``[{"model.cell": "gru", "task.seq_len": 50}, ...]`` (`grid`
builds the full product of a few axes). `run_sweep` runs the points of one
shard, each with the trainer in ``DIR/<point_name>``::

    DIR/sweep.json                              every point and its subfolder
    DIR/cell=gru,hidden_size=64,seq_len=50/     one run: summary, events, ckpts
    DIR/cell=lstm,hidden_size=64,seq_len=50/
    ...

It is safe to start again and to run as several shards at once:

- a point whose summary says ``done`` or ``diverged`` is finished and is
  skipped; any other point (no summary, ``preempted``, ``failed``) is handed to
  the trainer again in the same folder, and the trainer resumes from its
  checkpoint;
- `shard(points, i, n)` is a fixed round-robin partition of the ordered list, so
  shards never share a point; on top of that each point is run under a lock file
  (``.lock``, created with O_CREAT|O_EXCL) so two processes never run the same
  point at once, even if launched by mistake with the same shard;
- a point whose trainer raises is recorded as ``failed`` (with the error) in its
  summary and the sweep goes on with the next point.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from gru_jax.harness.config import apply_overrides, config_to_dict
from gru_jax.harness.config import make_task as default_validate
from gru_jax.harness.errors import ConfigError, WorkdirError
from gru_jax.harness.files import LOCK_FILE, SWEEP_FILE, write_json_atomic
from gru_jax.harness.keys import PACK_KEYS
from gru_jax.harness.summary import (
    RunSummary,
    SummaryError,
    read_summary,
    summary_mtime,
    write_summary,
)

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
                configs.append(apply_overrides(config, point))
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


def _canonical(overrides: Mapping[str, Any]) -> str:
    return json.dumps(
        {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        sort_keys=True,
    )


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


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N), 0 <= I < N; ValueError with a clear message otherwise."""
    try:
        i_str, n_str = str(spec).split("/")
        i, n = int(i_str), int(n_str)
    except ValueError:
        raise ValueError(
            f"--shard={spec}: expected I/N with integers 0 <= I < N, e.g. 0/4"
        ) from None
    _check_shard(i, n)
    return i, n


def _check_shard(i: int, n: int) -> None:
    if isinstance(i, bool) or isinstance(n, bool) or not (
        isinstance(i, int) and isinstance(n, int)
    ):
        raise ValueError(f"shard {i!r}/{n!r}: I and N must be integers")
    if n < 1:
        raise ValueError(f"shard {i}/{n}: N must be at least 1")
    if not 0 <= i < n:
        raise ValueError(
            f"shard {i}/{n}: I must be in 0..{n - 1} (shards count from 0, as "
            f"SLURM_ARRAY_TASK_ID does with --array=0-{n - 1})"
        )


def shard(points: Sequence[Any], i: int, n: int) -> list[Any]:
    """Shard I of N: points I, I+N, I+2N, ... of the ordered list.

    The N shards partition the list (no overlap, full coverage), and a point stays
    in its shard as long as the sweep list keeps its order. Cheap points and slow
    ones interleave in most grids, so round-robin balances better than blocks.
    """
    _check_shard(i, n)
    return list(points)[i::n]


# ---------------------------------------------------------------- files, locks


def _summary_or_none(run_dir: str | os.PathLike) -> RunSummary | None:
    """The run's summary; None if it has none or one that cannot be read (a point
    whose summary cannot be read is not finished: it is run again)."""
    try:
        return read_summary(run_dir)
    except SummaryError:
        return None


def _pid_alive(pid: Any) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False  # 0 and -1 would address process groups, not a process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class PointLock:
    """A lock file created with O_CREAT|O_EXCL holding pid, host and a token.

    Held while a point runs; a thread touches the file every `heartbeat` seconds.
    An existing lock is stale, and taken over, when its pid is dead on this host,
    or (for a lock from another host, whose pid cannot be checked, e.g. a
    preempted SLURM job) when it has not been touched for `stale_after` seconds.
    """

    def __init__(self, path: str | os.PathLike, heartbeat: float = 60.0,
                 stale_after: float = 600.0):
        self.path = Path(path)
        self.heartbeat, self.stale_after = heartbeat, stale_after
        self.token = json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "token": uuid.uuid4().hex,
             "since": time.time()}
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _is_stale(self, info: dict | None) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        if info is None:  # being written right now, or garbage: trust age only
            return age > self.stale_after
        if info.get("host") == socket.gethostname():
            return not _pid_alive(info.get("pid"))
        return age > self.stale_after

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(self.token)
        return True

    def _break(self, seen: str) -> None:
        """Removes the stale lock we read as `seen`, and only that one: renaming is
        atomic, and a lock that turns out to be fresh is put back."""
        grabbed = self.path.with_name(f"{self.path.name}.stale.{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, grabbed)
        except FileNotFoundError:
            return  # someone else broke it first
        if grabbed.read_text() != seen:
            with contextlib.suppress(FileExistsError):
                os.link(grabbed, self.path)
        grabbed.unlink()

    def acquire(self) -> bool:
        """True if we now hold the lock; False if a live process holds it."""
        for _ in range(3):
            if self._create():
                self._start_heartbeat()
                return True
            try:
                seen = self.path.read_text()
            except FileNotFoundError:
                continue  # released in between: try again
            try:
                info = json.loads(seen)
            except ValueError:
                info = None
            if not self._is_stale(info):
                return False
            self._break(seen)
        return False

    def _start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(self.heartbeat):
                with contextlib.suppress(OSError):
                    os.utime(self.path)

        self._stop.clear()
        self._thread = threading.Thread(target=beat, daemon=True, name="sweep-lock")
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with contextlib.suppress(OSError):
            if self.path.read_text() == self.token:  # never remove someone else's
                self.path.unlink()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# ---------------------------------------------------------------- running


def _default_train_fn() -> TrainFn:
    from gru_jax.harness.train import train_and_evaluate  # lazy: jax is only needed to train

    return train_and_evaluate


def _fresh_summary(run_dir: Path, started: float) -> RunSummary | None:
    """The run's summary if written since `started` (by this attempt), else None."""
    mtime = summary_mtime(run_dir)
    if mtime is None or mtime < started - 1:  # 1 s: coarse mtimes
        return None
    return _summary_or_none(run_dir)


def _record_failure(run_dir: Path, config, exc: BaseException, started: float) -> RunSummary:
    """The failed run's summary: the trainer's own if it wrote one for this
    attempt, else ours, keeping what an earlier attempt recorded (step, history)."""
    fresh = _fresh_summary(run_dir, started)
    if fresh is not None and fresh.status == "failed":
        return fresh
    failure = dict(
        status="failed", stop_reason="failed", error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:])
    earlier = _summary_or_none(run_dir)
    summary = (dataclasses.replace(earlier, **failure) if earlier is not None
               else RunSummary(**failure, config=config_to_dict(config)))
    write_summary(run_dir, summary)
    return summary


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


def write_sweep_file(workdir: Path, points: Sequence[Mapping[str, Any]],
                     names: Sequence[str], config=None) -> None:
    """DIR/sweep.json: the whole grid (not just this shard), for the report."""
    write_json_atomic(
        workdir / SWEEP_FILE,
        {
            "num_points": len(points),
            "points": [
                {"index": i, "name": n, "dir": n, "overrides": dict(p)}
                for i, (p, n) in enumerate(zip(points, names, strict=True))
            ],
            "base_config": config_to_dict(config) if config is not None else None,
        },
    )


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


def _default_pack_fn() -> PackFn:
    from gru_jax.harness.train import train_packed  # lazy: jax is only needed to train

    return train_packed


def _train_claimed(config, claimed: list[dict], train_fn: TrainFn,
                   pack_fn: PackFn | None) -> list[RunSummary]:
    """Train the claimed points (one alone, several through `pack_fn`); each
    point's summary, a failure recorded in its folder as for a point alone."""
    configs = [apply_overrides(config, c["point"]) for c in claimed]
    dirs = [c["run_dir"] for c in claimed]
    started = time.time()
    error: Exception | None = None
    returned: list[Any] = [None] * len(claimed)
    try:
        if len(claimed) == 1:
            returned = [train_fn(configs[0], str(dirs[0]))]
        else:
            returned = list(pack_fn(configs, [str(d) for d in dirs]))
    except Exception as e:  # noqa: BLE001 - one bad point (group) must not stop the sweep
        error = e
    summaries = []
    for cfg, run_dir, ret in zip(configs, dirs, returned, strict=True):
        err = error
        summary = None
        if err is None:
            summary = _summary_or_none(run_dir)
            if summary is None and isinstance(ret, RunSummary):
                write_summary(run_dir, ret)  # the report reads the file: keep one
                summary = ret
            if summary is None:
                err = RuntimeError("the trainer returned without writing its summary")
        if err is not None:
            summary = _fresh_summary(run_dir, started)
            # gru_jax.harness.train.Preempted (SIGTERM/SIGINT) comes after a "preempted"
            # summary and a checkpoint: not a failure, the next sweep resumes it
            if not (summary is not None and summary.status == "preempted"):
                summary = _record_failure(run_dir, cfg, err, started)
        summaries.append(summary)
    return summaries


def run_sweep(
    config: ml_collections.ConfigDict,
    sweep: Iterable[Mapping[str, Any]] | None,
    workdir: str | os.PathLike,
    shard: tuple[int, int] = (0, 1),
    train_fn: TrainFn | None = None,
    *,
    validate: Callable[[ml_collections.ConfigDict], Any] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    pack: bool = False,
    pack_size: int = 8,
    pack_fn: PackFn | None = None,
    prune_along: str | None = None,
) -> list[dict[str, Any]]:
    """Runs this shard's points of `sweep` over `config`, each in ``workdir/<name>``.

    Returns one result per point of the shard, in order::

        {"index", "name", "dir", "overrides",
         "action": "ran" | "skipped" (finished before) | "locked" (another process
                   runs it),
         "status": the summary's status (done | diverged | failed | preempted) or
                   "running" for a locked point,
         "summary": the run's RunSummary or None}

    `train_fn(config, workdir)` defaults to gru_jax.harness.train.train_and_evaluate,
    `validate(config)` (run on every point first) to gru_jax.harness.config.make_task. A
    point that raises is recorded as failed and the sweep goes on; a point that
    comes back ``preempted`` stops the shard (the job is being taken away).
    KeyboardInterrupt propagates (the lock is released).

    `pack`: the shard's unfinished points that differ only in seed and
    train.learning_rate are trained `pack_size` at a time as one vmapped program
    by `pack_fn(configs, workdirs)` (default gru_jax.harness.train.train_packed); each
    still has its own folder, lock, checkpoints, events and summary.

    `prune_along` (a dotted key, e.g. "task.seq_len"): a point is not run (action
    and status "pruned") when every run of its point at the next smaller value of
    that key finished unsolved (see `prune_reason`); list the points in increasing
    order of that key so the smaller ones finish first.
    """
    i, n = shard
    _check_shard(i, n)
    points = expand(sweep, config, validate)  # every point checked before anything runs
    names = point_names(points)
    workdir = Path(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        write_sweep_file(workdir, points, names, config)
    except OSError as e:
        raise WorkdirError(f"{workdir}: cannot write the sweep folder ({e})") from e
    mine = list(enumerate(zip(points, names, strict=True)))[i::n]  # == shard(...): same partition
    prune = None if prune_along is None else (
        lambda index: prune_reason(index, points, names, workdir, prune_along))
    return run_points(config, mine, workdir, train_fn, desc=f"sweep {i}/{n}",
                      progress=progress, log=log, pack=pack, pack_size=pack_size,
                      pack_fn=pack_fn, prune=prune)


def run_points(
    config: ml_collections.ConfigDict,
    points: Sequence[tuple[int, tuple[Mapping[str, Any], str]]],
    workdir: Path,
    train_fn: TrainFn | None = None,
    *,
    desc: str = "points",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    pack: bool = False,
    pack_size: int = 8,
    pack_fn: PackFn | None = None,
    prune: Callable[[int], str | None] | None = None,
) -> list[dict[str, Any]]:
    """`run_sweep` after its checks: trains `points` ((index, (overrides, name)),
    already checked) each in ``workdir/<name>``, without writing sweep.json (a
    search keeps its own record). `prune(index)`: why a point not run yet need not
    run, or None. Results as `run_sweep`'s."""
    from tqdm.auto import tqdm

    train_fn = train_fn or _default_train_fn()
    pack_fn = pack_fn or (_default_pack_fn() if pack else None)
    groups = (pack_groups([p for _, (p, _) in points], pack_size) if pack
              else [[k] for k in range(len(points))])
    # disable=None: no bar when stderr is not a terminal (SLURM logs stay readable)
    bar = tqdm(total=len(points), desc=desc, unit="point",
               disable=None if progress else True, file=sys.stderr, dynamic_ncols=True)
    say = log or (lambda msg: bar.write(msg, file=sys.stdout))
    results = []
    try:
        for group in groups:
            claimed = []  # the group's points this process runs now, each under its lock
            for k in group:
                index, (point, name) = points[k]
                result = {"index": index, "name": name, "dir": str(workdir / name),
                          "overrides": point, "prefix": f"[{k + 1}/{len(points)}] {name}:"}
                bar.set_postfix_str(name, refresh=True)
                claim = _claim(result, say, prune)
                if claim is None:
                    results.append(result)
                    bar.update(1)
                else:
                    claimed.append(claim)
            if not claimed:
                continue
            ran = _run_claimed(config, claimed, train_fn, pack_fn, say)
            results += ran
            bar.update(len(ran))
            if any(r["status"] == "preempted" for r in ran):
                say("preempted: stopping this shard; run the same command again to resume")
                break
    finally:
        bar.close()
    for r in results:
        del r["prefix"]
    return sorted(results, key=lambda r: r["index"])


def _claim(result: dict, say: Callable[[str], None],
           prune: Callable[[int], str | None] | None) -> dict | None:
    """Lock the point's folder to run it (returns the claim: result and lock), or
    fill in `result` as pruned, skipped (finished before) or locked (another process)."""
    run_dir = Path(result["dir"])
    prefix = result["prefix"]
    summary = _summary_or_none(run_dir)
    reason = prune(result["index"]) if prune is not None and summary is None else None
    if reason:
        result.update(action="pruned", status="pruned", summary=None)
        say(f"{prefix} {reason}")
        return None
    if summary is not None and summary.finished:
        result.update(action="skipped", status=summary.status, summary=summary)
        say(f"{prefix} finished before ({format_summary(summary)})")
        return None
    run_dir.mkdir(exist_ok=True)
    lock = PointLock(run_dir / LOCK_FILE)
    if not lock.acquire():
        holder = lock.holder() or {}
        result.update(action="locked", status="running", summary=summary)
        say(f"{prefix} skipped, run by pid {holder.get('pid')} on {holder.get('host')} "
            f"(remove {run_dir / LOCK_FILE} if that process is gone)")
        return None
    summary = _summary_or_none(run_dir)  # it may have finished while we waited
    if summary is not None and summary.finished:
        lock.release()
        result.update(action="skipped", status=summary.status, summary=summary)
        say(f"{prefix} finished before ({format_summary(summary)})")
        return None
    return {"point": result["overrides"], "run_dir": run_dir, "result": result, "lock": lock}


def _run_claimed(config, claimed: list[dict], train_fn: TrainFn, pack_fn: PackFn | None,
                 say: Callable[[str], None]) -> list[dict]:
    """Train the claimed points (releasing their locks after); their results,
    each announced in one line."""
    if len(claimed) > 1:
        say(f"packing {len(claimed)} points into one program: "
            f"{', '.join(c['result']['name'] for c in claimed)}")
    try:
        summaries = _train_claimed(config, claimed, train_fn, pack_fn)
    finally:
        for c in claimed:
            c["lock"].release()
    out = []
    for c, summary in zip(claimed, summaries, strict=True):
        out.append({**c["result"], "action": "ran", "status": summary.status,
                    "summary": summary})
        say(f"{c['result']['prefix']} {format_summary(summary)}")
    return out


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
