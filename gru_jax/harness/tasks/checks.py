"""Value checks shared by the task makers: each failure is a ConfigError naming ``task.KEY``."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from gru_jax.harness.errors import ConfigError


def check_int(key: str, value, *, min_value: int, max_value: int | None = None) -> int:
    """`value` as an int in [min_value, max_value]; bools are rejected (True is an int)."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and value >= min_value and (max_value is None or value <= max_value):
        return int(value)
    bound = f">= {min_value}" if max_value is None else f"in [{min_value}, {max_value}]"
    raise ConfigError(f"task.{key}: must be an int {bound}, got {value!r}")


def check_equal(key: str, value, expected: int, why: str) -> int:
    """`value` must be exactly `expected` (a dataset's fixed length)."""
    check_int(key, value, min_value=1)
    if value != expected:
        raise ConfigError(f"task.{key}: must be {expected} ({why}), got {value!r}")
    return int(value)


def check_bool(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"task.{key}: must be a bool, got {value!r}")
    return value


def check_choice(key: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"task.{key}: must be one of {list(choices)}, got {value!r}")
    return value


def check_fraction(key: str, value) -> float:
    """`value` as a float in (0, 1); ints and bools are rejected."""
    if isinstance(value, float) and 0.0 < value < 1.0:
        return value
    raise ConfigError(f"task.{key}: must be a float in (0, 1), got {value!r}")


def check_str(key: str, value) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"task.{key}: must be a string, got {value!r}")
    return value
