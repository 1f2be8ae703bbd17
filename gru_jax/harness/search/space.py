"""The search space: checked config keys and ranges, and the map to and from the unit cube.

A space is ``{dotted key: (low, high, scale, type)}`` with scale "log" or
"linear" and type int or float (`make_space`). The proposers (WOA, random
search) move in the unit cube [0, 1]^d; `from_unit` maps a point u [d] to
config overrides, `to_unit` back. Optuna's samplers (TPE, CMA-ES) sample the
same space as `distributions`; `snap_point` rounds their values as `from_unit`
rounds a proposer's, so every candidate's folder name stays short.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gru_jax.harness.errors import ConfigError

SIG_DIGITS = 3  # float values are rounded so folder names stay short and readable


@dataclass(frozen=True)
class Dim:
    """One searched config key: values in [low, high] on a log or linear scale."""

    key: str
    low: float
    high: float
    scale: str = "log"  # "log" | "linear"
    integer: bool = False

    def to_json(self) -> list:
        return [self.low, self.high, self.scale, "int" if self.integer else "float"]


def make_space(spec: Mapping[str, Sequence[Any]] | Sequence[Dim]) -> tuple[Dim, ...]:
    """A checked search space from ``{key: (low, high, scale, type)}``.

    `scale` is "log" or "linear" (default "log"), `type` int or float (or their
    names; default float). ConfigError names a bad entry.

    >>> make_space({"model.hidden_size": (8, 64, "log", int)})[0].integer
    True
    """
    if isinstance(spec, Mapping):
        dims = []
        for key, entry in spec.items():
            if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or \
                    not 2 <= len(entry) <= 4:
                raise ConfigError(f"search space {key}: want (low, high, scale, type), "
                                  f"got {entry!r}")
            low, high, *rest = entry
            scale = rest[0] if rest else "log"
            kind = rest[1] if len(rest) > 1 else float
            if kind not in (int, float, "int", "float"):
                raise ConfigError(f"search space {key}: type must be int or float, got {kind!r}")
            dims.append(Dim(key, low, high, scale, kind in (int, "int")))
    else:
        dims = list(spec)
    if not dims:
        raise ConfigError("search space: no keys to search")
    for d in dims:
        if not isinstance(d.key, str) or not d.key or any(not p for p in d.key.split(".")):
            raise ConfigError(f"search space: bad key {d.key!r} (want e.g. 'model.hidden_size')")
        for name, v in (("low", d.low), ("high", d.high)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"search space {d.key}: {name} must be a finite number, "
                                  f"got {v!r}")
        if not d.low < d.high:
            raise ConfigError(f"search space {d.key}: need low < high, got {d.low}, {d.high}")
        if d.scale not in ("log", "linear"):
            raise ConfigError(f"search space {d.key}: scale must be log or linear, "
                              f"got {d.scale!r}")
        if d.scale == "log" and d.low <= 0:
            raise ConfigError(f"search space {d.key}: a log scale needs low > 0, got {d.low}")
        if d.integer and math.ceil(d.low) > math.floor(d.high):
            raise ConfigError(f"search space {d.key}: no integer in [{d.low}, {d.high}]")
    keys = [d.key for d in dims]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"search space: a key appears twice in {keys}")
    return tuple(dims)


def _round_sig(x: float, digits: int = SIG_DIGITS) -> float:
    return float(f"{x:.{digits - 1}e}") if x else 0.0


def from_unit(space: Sequence[Dim], u: Sequence[float]) -> dict[str, Any]:
    """Config overrides for a point u [d] of the unit cube (clipped to it first).

    u_j = 0 is `low` and 1 is `high`, linear in the value or in its log. Ints
    are rounded to the nearest integer, floats to SIG_DIGITS significant
    digits, both kept within [low, high].
    """
    u = np.clip(np.asarray(u, np.float64), 0.0, 1.0)
    if u.shape != (len(space),):
        raise ValueError(f"from_unit: want a point of shape [{len(space)}], got {u.shape}")
    out: dict[str, Any] = {}
    for d, uj in zip(space, u, strict=True):
        if d.scale == "log":
            v = math.exp(math.log(d.low) + uj * (math.log(d.high) - math.log(d.low)))
        else:
            v = d.low + uj * (d.high - d.low)
        out[d.key] = snap(d, v)
    return out


def snap(d: Dim, v: float) -> int | float:
    """A value of `d` as a candidate trains it: an int rounded to the nearest
    integer, a float to SIG_DIGITS significant digits, kept within [low, high]."""
    if d.integer:
        return int(min(max(round(v), math.ceil(d.low)), math.floor(d.high)))
    return min(max(_round_sig(v), d.low), d.high)


def snap_point(space: Sequence[Dim], params: Mapping[str, Any]) -> dict[str, Any]:
    """Config overrides for an Optuna trial's params {key: value} (each snapped):
    what a TPE or CMA-ES proposal trains, so its folder name stays short."""
    return {d.key: snap(d, float(params[d.key])) for d in space}


def distributions(space: Sequence[Dim]) -> dict:
    """The space as Optuna distributions {key: Float/IntDistribution} (log where
    the scale is log), the search space every sampler is asked over."""
    from optuna.distributions import FloatDistribution, IntDistribution

    out = {}
    for d in space:
        log = d.scale == "log"
        out[d.key] = (IntDistribution(math.ceil(d.low), math.floor(d.high), log=log)
                      if d.integer else FloatDistribution(float(d.low), float(d.high), log=log))
    return out


def to_unit(space: Sequence[Dim], overrides: Mapping[str, Any]) -> np.ndarray:
    """The point u [d] of the unit cube for overrides (values clipped to [low, high])."""
    u = np.empty(len(space))
    for j, d in enumerate(space):
        v = min(max(float(overrides[d.key]), d.low), d.high)
        if d.scale == "log":
            u[j] = (math.log(v) - math.log(d.low)) / (math.log(d.high) - math.log(d.low))
        else:
            u[j] = (v - d.low) / (d.high - d.low)
    return np.clip(u, 0.0, 1.0)
