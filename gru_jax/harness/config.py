"""The run config: defaults, overrides, and validation with one-line errors.

A config is an `ml_collections.ConfigDict` with four parts (seed, model, task,
train). `SCHEMA` is the one table of its keys: default, what each allows, and
what it does; `base_config()` (the defaults), `validate()` (the checks) and
`describe()` (the listing behind ``scripts/train.py --print_config``) are read
off it. ``task.*`` holds the task's own fields (`TASK_DEFAULTS[name]`).

`validate(config)` raises `ConfigError` with one line naming the first bad
key and what it allows, e.g. ``model.hidden_size: must be a positive int, got -3``;
it builds nothing and starts no JAX backend. `make_task(config)` also asks the
task (building it) and the devices (the batch must split over them).
"""

from __future__ import annotations

import copy as _copy
import dataclasses
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import jax
import ml_collections
from ml_collections import config_dict

from gru_jax.cells import CELLS, CHRONO_CELLS
from gru_jax.cells.gru import VARIANTS
from gru_jax.harness import optimizers
from gru_jax.harness.errors import ConfigError
from gru_jax.harness.keys import flatten
from gru_jax.harness.models import DTYPES

CELL_NAMES = tuple(sorted(CELLS))
IMPLS = ("auto", "reference", "fused")
SCHEDULES = ("cosine", "constant")

# Keys a resumed run may change (they do not change what is trained). Every
# other key must equal the stored config.json; see `gru_jax.harness.train`.
RESUMABLE_KEYS = frozenset({
    "train.steps", "train.eval_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.log_every", "train.progress", "train.stop_when_solved",
    "train.diagnose_every",
})


def base_config(task: str = "adding") -> ml_collections.ConfigDict:
    """Every key of SCHEMA with its default; the task section holds `task`'s own fields.

    The defaults train a GRU (hidden 64) on the adding problem; experiments
    change what they study (see experiments/adding.py).
    """
    from gru_jax.harness.tasks import TASK_DEFAULTS  # the tasks import data libraries

    if task not in TASK_DEFAULTS:
        raise ConfigError(
            f"task.name: unknown task {task!r}; choose one of {sorted(TASK_DEFAULTS)}")
    c = ml_collections.ConfigDict()
    for k in SCHEMA:
        node = c
        *path, leaf = k.name.split(".")
        for part in path:
            if part not in node:
                node[part] = ml_collections.ConfigDict()
            node = node[part]
        # False, True or a chunk length: an `object` field so --config.model.remat=16 parses.
        node[leaf] = (config_dict.FieldReference(k.default, field_type=object)
                      if k.name == "model.remat" else k.default)
    c.task = ml_collections.ConfigDict({"name": task, **TASK_DEFAULTS[task]})
    c.lock()  # a misspelt key is an error where it is set, not a silently new field
    return c


def config_to_dict(config) -> dict:
    """A ConfigDict as plain JSON values ({} if it cannot be shown: a config that
    cannot be written should not hide the error being recorded)."""
    import json

    try:
        return json.loads(config.to_json_best_effort())
    except Exception:  # noqa: BLE001
        return {}


def apply_overrides(config: ml_collections.ConfigDict, overrides: Mapping[str, Any]):
    """A copy of `config` with dotted-key `overrides` ({"model.cell": "lstm"}) applied.

    Changing ``task.name`` swaps in the new task's default fields first, so
    ``{"task.name": "copy", "task.copy_len": 5}`` works. Raises ConfigError
    naming the key for an unknown key or a value of the wrong type.
    """
    from gru_jax.harness.tasks import TASK_DEFAULTS

    config = _copy.deepcopy(config)
    overrides = dict(overrides)
    if "task.name" in overrides and overrides["task.name"] != config.task.name:
        name = overrides.pop("task.name")
        if name not in TASK_DEFAULTS:
            raise ConfigError(
                f"task.name: unknown task {name!r}; choose one of {sorted(TASK_DEFAULTS)}")
        with config.unlocked():
            config.task = ml_collections.ConfigDict({"name": name, **TASK_DEFAULTS[name]})
    for key, value in overrides.items():
        *path, leaf = key.split(".")
        node = config
        for i, part in enumerate(path):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                raise ConfigError(_unknown(".".join(path[: i + 1]), node))
            node = node[part]
        if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
            raise ConfigError(_unknown(key, node))
        try:
            node[leaf] = value
        except TypeError:
            raise ConfigError(
                f"{key}: must be {_type_name(node[leaf])}, got {value!r}") from None
    return config


def _unknown(key: str, node) -> str:
    section = key.rsplit(".", 1)[0] if "." in key else "the config"
    keys = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
    return f"{key}: unknown key; {section} takes {', '.join(keys)}"


def _type_name(v) -> str:
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, numbers.Integral):
        return "an int"
    if isinstance(v, numbers.Real):
        return "a float"
    return f"a {type(v).__name__}"


# --- value checks: each returns an error message (without the key) or None ---

def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _positive_int(v):
    return None if _is_int(v) and v > 0 else f"must be a positive int, got {v!r}"


def _nonneg_int(v):
    return None if _is_int(v) and v >= 0 else f"must be an int >= 0, got {v!r}"


def _positive_float(v):
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0
    return None if ok and v == v and v != float("inf") else f"must be a float > 0, got {v!r}"


def _nonneg_float(v):
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0
    return None if ok and v != float("inf") else f"must be a float >= 0, got {v!r}"


def _bool(v):
    return None if isinstance(v, bool) else f"must be a bool (True or False), got {v!r}"


def _choice(*choices):
    def check(v):
        return None if v in choices and isinstance(v, str) else (
            f"must be one of {', '.join(choices)}, got {v!r}")
    return check


def _remat(v):
    if isinstance(v, bool) or (_is_int(v) and v > 0):
        return None
    return f"must be False, True or a positive int (chunk length), got {v!r}"


@dataclasses.dataclass(frozen=True)
class Key:
    """One config key: its default, its check (a message or None), what it allows
    (for people), and what it does."""

    name: str
    default: Any
    check: Callable[[Any], str | None]
    allows: str
    help: str


SCHEMA: tuple[Key, ...] = (
    Key("seed", 0, _nonneg_int, "int >= 0", "parameter init and training data"),
    Key("model.cell", "gru", lambda v: _choice(*sorted(CELLS))(v),  # read when checked: plug-ins
        " | ".join(CELL_NAMES), "the recurrent cell (or one added by gru_jax.register_cell)"),
    Key("model.hidden_size", 64, _positive_int, "int > 0", "units per layer"),
    Key("model.num_layers", 1, _positive_int, "int > 0", "stacked recurrent layers"),
    Key("model.variant", "reset_after", _choice(*VARIANTS), " | ".join(VARIANTS),
        "gru only: where the reset gate acts (cuDNN/PyTorch/Keras: reset_after)"),
    Key("model.chrono", False, _bool, "bool",
        "chrono init (Tallec & Ollivier 2018) of the gate that keeps the state, T_max = "
        "the task's input length (gru: b_iz, lstm: b_f)"),
    Key("model.chrono_t_max", 0.0, _nonneg_float, "float >= 0",
        "chrono's T_max (0: the task's input length; Tallec & Ollivier use 3T/2 on copy)"),
    Key("model.dtype", "float32", _choice(*DTYPES), " | ".join(DTYPES),
        "compute dtype of the matrix products"),
    Key("model.remat", False, _remat, "False | True | int > 0",
        "rematerialise the scan in the backward pass (int: chunk length)"),
    Key("model.unroll", 1, _positive_int, "int > 0", "lax.scan unroll"),
    Key("model.impl", "auto", _choice(*IMPLS), " | ".join(IMPLS),
        "scan implementation (fused: gru reset_after only)"),
    Key("train.steps", 3000, _positive_int, "int > 0", "optimiser steps"),
    Key("train.batch_size", 64, _positive_int, "int > 0, divisible by the devices",
        "examples per step"),
    Key("train.learning_rate", 1e-2, _positive_float, "float > 0", "peak of the schedule"),
    Key("train.optimizer", "adamw", optimizers.check_name, "an optax optimiser | a registered one",
        "the optimiser"),
    Key("train.weight_decay", 1e-4, _nonneg_float, "float >= 0",
        "kernels only; for optimisers that take it (adamw, lion, ...)"),
    Key("train.warmup_steps", 100, _nonneg_int, "int >= 0", "linear warmup from 0"),
    Key("train.schedule", "cosine", _choice(*SCHEDULES), " | ".join(SCHEDULES),
        "cosine: to 0 at train.steps"),
    Key("train.clip_norm", 1.0, _nonneg_float, "float >= 0", "clip_by_global_norm (0: off)"),
    Key("train.eval_every", 100, _positive_int, "int > 0", "steps between evals"),
    Key("train.diagnose_every", 0, _nonneg_int, "int >= 0",
        "steps between gradient diagnostics (a backward pass over 256 eval examples; "
        "also at the start and the end; 0: at every eval)"),
    Key("train.eval_size", 1024, _positive_int, "int > 0", "held-out examples"),
    Key("train.checkpoint_every", 500, _positive_int, "int > 0", "steps between checkpoints"),
    Key("train.keep_checkpoints", 3, _positive_int, "int > 0", "checkpoints kept"),
    Key("train.log_every", 50, _positive_int, "int > 0", "steps between train metrics"),
    Key("train.progress", True, _bool, "bool", "a progress bar (only on a terminal)"),
    Key("train.stop_when_solved", 0, _nonneg_int, "int >= 0",
        "end the run once this many evals in a row are solved (0: off)"),
)
CHECKS = {k.name: k.check for k in SCHEMA}


def describe() -> str:
    """Every config key with its default, what it allows and what it does; then
    each task's own fields with their defaults (``--print_config``)."""
    from gru_jax.harness.tasks import TASK_DEFAULTS

    lines = [f"{k.name}={k.default!r} ({k.allows}): {k.help}" for k in SCHEMA]
    lines.append(f"task.name='adding' ({' | '.join(sorted(TASK_DEFAULTS))}): the task")
    for name, fields in sorted(TASK_DEFAULTS.items()):
        lines.append(f"task.* of {name}: " + ", ".join(f"{k}={v!r}" for k, v in fields.items()))
    return "\n".join(lines)


def validate(config) -> None:
    """Check every key of `config`, without building anything or starting JAX.

    Raises ConfigError (one line, naming the key) for an unknown or missing key, a
    value of the wrong type or out of range, an unknown cell or task, a task field
    the task does not take or of the wrong type, or options that do not combine
    (chrono on rnn/mingru, impl=fused on anything but a reset_after gru).
    """
    from gru_jax.harness.tasks import TASK_DEFAULTS

    flat = flatten(config)
    name = flat.get("task.name")
    if name not in TASK_DEFAULTS:
        raise ConfigError(
            f"task.name: unknown task {name!r}; choose one of {sorted(TASK_DEFAULTS)}")
    for key in sorted(flat):
        if key not in CHECKS and not key.startswith("task."):
            section = key.rsplit(".", 1)[0] if "." in key else ""
            allowed = sorted({k[len(section) + 1:].split(".")[0] if section else k.split(".")[0]
                              for k in [*CHECKS, "task.name"]
                              if not section or k.startswith(section + ".")})
            where = section or "the config"
            raise ConfigError(f"{key}: unknown key; {where} takes {', '.join(allowed)}"
                              if allowed else f"{key}: unknown key")
    for key, check in CHECKS.items():
        if key not in flat:
            raise ConfigError(f"{key}: missing (start from gru_jax.harness.config.base_config())")
        msg = check(flat[key])
        if msg:
            raise ConfigError(f"{key}: {msg}")
    fields = TASK_DEFAULTS[name]
    for key, value in flat.items():
        field = key.removeprefix("task.")
        if key.startswith("task.") and field != "name":
            if field not in fields:
                raise ConfigError(f"task.{field}: unknown key for task {name!r}; "
                                  f"it takes {sorted(fields)}")
            if not _same_kind(value, fields[field]):
                raise ConfigError(f"task.{field}: must be {_type_name(fields[field])}, "
                                  f"got {value!r}")
    cell = flat["model.cell"]
    if flat["model.chrono"] and cell not in CHRONO_CELLS:
        raise ConfigError(f"model.chrono: only for cell gru or lstm, not {cell!r}")
    if flat["model.impl"] == "fused" and (cell != "gru" or flat["model.variant"] != "reset_after"):
        raise ConfigError("model.impl: 'fused' needs model.cell=gru with variant reset_after; "
                          "use auto or reference")


def make_task(config):
    """`validate(config)`, then the task it describes (built: the task's own checks
    run, e.g. seq_len too short) and the devices (the batch must split over them)."""
    from gru_jax.harness.tasks import get_task

    validate(config)
    n = jax.device_count()
    if config.train.batch_size % n:
        raise ConfigError(f"train.batch_size: must be divisible by the {n} devices, "
                          f"got {config.train.batch_size}")
    task = get_task(config.task)
    if config.model.chrono and task.seq_len <= 2:
        raise ConfigError(f"model.chrono: needs a task input longer than 2 steps, "
                          f"got {task.seq_len}")
    return task


def _same_kind(value, default) -> bool:
    """`value` may stand where `default` does: bool for bool, int for int, a number
    for a float, a str for a str (other defaults: anything)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, numbers.Integral):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(default, numbers.Real):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    return True


def resolved(config) -> ml_collections.ConfigDict:
    """A copy of `config` with the task's unset fields filled from its defaults."""
    from gru_jax.harness.tasks import TASK_DEFAULTS

    config = _copy.deepcopy(config)
    with config.unlocked():
        for k, v in TASK_DEFAULTS[config.task.name].items():
            if k not in config.task:
                config.task[k] = v
    return config
