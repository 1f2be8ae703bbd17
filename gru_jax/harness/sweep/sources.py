"""Point sources: what a sweep trains, all at once or adaptively.

An experiment file gives its points in one of two ways:

- ``get_sweep(arg)``: a fixed list (`FixedSource`); with ``PRUNE_ALONG = "key"``
  in the file, `PruneAlong` releases a point only once the points at the next
  smaller value of that key have finished and not all of them unsolved;
- ``get_source(arg)``: any object with the `PointSource` methods, e.g. the
  long-range study's adaptive search over T.

The engine enqueues `initial()` once (idempotently: a point already in the study
is not enqueued again) and calls `next(finished)` after each point finishes.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from gru_jax.harness.sweep.points import canonical, load_experiment, overrides_of


@runtime_checkable
class PointSource(Protocol):
    """The points of a sweep, possibly chosen from the results of earlier ones.

    A point is a dict of dotted overrides, optionally with ``"workdir"`` (its
    folder name; default `point_name` of the overrides). Its identity is the
    whole dict, so two points may share a folder (the same run with a raised
    ``train.steps`` cap is resumed from its checkpoint); emit such a point only
    after the earlier one finished.

    `initial()` is called by every launcher (same list each time); `next(finished)`
    by a worker after each point finishes, with ``finished``: a list of (point,
    summary dict) for every finished point so far. Return only new points (any
    already in the study are ignored). Both must be deterministic functions of
    their input: several workers may call `next` with the same list, and the
    engine enqueues each point once. A worker exits when nothing is waiting or
    running and `next` returns nothing new.

    Optional: ``planned() -> list[dict]``, the points the source may emit (written
    to sweep.json for the report; default: the points enqueued so far).
    """

    def initial(self) -> list[dict]: ...

    def next(self, finished: list[tuple[dict, dict]]) -> list[dict]: ...


class FixedSource:
    """A fixed list of points: all enqueued at once, nothing after."""

    def __init__(self, points: Sequence[Mapping[str, Any]]):
        self.points = [dict(p) for p in points]

    def initial(self) -> list[dict]:
        return list(self.points)

    def next(self, finished) -> list[dict]:
        return []

    def planned(self) -> list[dict]:
        return list(self.points)


class PruneAlong:
    """A fixed list pruned along a difficulty axis (e.g. ``task.seq_len``).

    A point with the axis is released once every point with the same other
    overrides (any seed) at the next smaller value of the axis has finished, and
    only if one of them solved the task; otherwise it is pruned (never run), and
    so is every point above it. Points without a smaller value start at once.
    """

    def __init__(self, points: Sequence[Mapping[str, Any]], axis: str):
        self.points, self.axis = [dict(p) for p in points], axis

    def _others(self, p) -> str:
        return canonical({k: v for k, v in overrides_of(p).items()
                          if k not in (self.axis, "seed")})

    def _below(self, p) -> list[dict]:
        """The points at the next smaller value of the axis (same other keys)."""
        if self.axis not in p:
            return []
        mine = self._others(p)
        smaller = [q[self.axis] for q in self.points if self.axis in q
                   and self._others(q) == mine and q[self.axis] < p[self.axis]]
        if not smaller:
            return []
        prev = max(smaller)
        return [q for q in self.points if q.get(self.axis) == prev and self._others(q) == mine]

    def initial(self) -> list[dict]:
        return [p for p in self.points if not self._below(p)]

    def next(self, finished) -> list[dict]:
        done = {canonical(p): s for p, s in finished}
        state: dict[str, str] = {}  # canonical -> "run" | "pruned" | "open"

        def decide(p) -> str:
            key = canonical(p)
            if key not in state:
                below = self._below(p)
                if not below:
                    state[key] = "run"
                elif any(decide(q) == "open" or (decide(q) == "run" and canonical(q) not in done)
                         for q in below):
                    state[key] = "open"  # something below is still to finish
                elif any(decide(q) == "run" and done[canonical(q)].get("solved")
                         for q in below):
                    state[key] = "run"
                else:
                    state[key] = "pruned"
            return state[key]

        return [p for p in self.points if decide(p) == "run"]

    def planned(self) -> list[dict]:
        return list(self.points)


def load_source(config_file: str | os.PathLike, arg: str | None = None) -> PointSource:
    """The experiment's `get_source(arg)`, else its `get_sweep(arg)` as a FixedSource
    (a PruneAlong with the file's PRUNE_ALONG), else the base config alone."""
    module = load_experiment(config_file)

    def call(fn):
        takes_arg = len(inspect.signature(fn).parameters) > 0
        return fn(arg) if (takes_arg and arg is not None) else fn()

    if hasattr(module, "get_source"):
        return call(module.get_source)
    points = call(module.get_sweep) if hasattr(module, "get_sweep") else [{}]
    axis = getattr(module, "PRUNE_ALONG", None)
    return PruneAlong(points, axis) if axis else FixedSource(points)
