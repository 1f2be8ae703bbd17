"""The run config: defaults, overrides, and validation with one-line errors.

A config is an `ml_collections.ConfigDict` with four parts::

    seed                      int >= 0: parameter init and training data
    model.cell                gru | lstm | rnn | mingru
    model.hidden_size         int > 0
    model.num_layers          int > 0, stacked recurrent layers
    model.variant             reset_after | reset_before (gru only)
    model.chrono              bool: chrono init (Tallec & Ollivier 2018) of the
                              gate that keeps the state, T_max = the task's input length
                              (gru: b_iz, lstm: b_f; not rnn or mingru)
    model.dtype               float32 | bfloat16: compute dtype of the matrix products
    model.remat               False | True | int > 0 (see `gru_jax.scan`)
    model.unroll              int > 0, `lax.scan` unroll
    model.impl                auto | reference | fused (fused: gru reset_after only)
    task.name                 one of `gru_jax.harness.tasks.TASKS`
    task.seq_len, task.*      the task's own fields (`TASK_DEFAULTS[name]`)
    train.steps               int > 0
    train.batch_size          int > 0, divisible by jax.device_count()
    train.learning_rate       float > 0 (peak of the schedule)
    train.optimizer           adamw
    train.weight_decay        float >= 0 (AdamW, kernels only)
    train.warmup_steps        int >= 0 (linear warmup from 0)
    train.schedule            cosine (to 0 at train.steps) | constant
    train.clip_norm           float >= 0: clip_by_global_norm (0: off)
    train.eval_every          int > 0
    train.eval_size           int > 0, held-out examples
    train.checkpoint_every    int > 0
    train.keep_checkpoints    int > 0
    train.log_every           int > 0
    train.progress            bool: tqdm bar (only on a terminal)
    train.stop_when_solved    int >= 0: end the run once this many evals in a row
                              are solved (0: off, train all train.steps)

`validate(config)` raises `ConfigError` with one line naming the first bad
key and what it allows, e.g. ``model.hidden_size: must be a positive int, got -3``.
"""

from __future__ import annotations

import copy as _copy
import numbers
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
from ml_collections import config_dict

from gru_jax.cells import CELLS
from gru_jax.cells.gru import VARIANTS
from gru_jax.errors import ConfigError
from gru_jax.harness.records import CHRONO_CELLS, DTYPES, flatten

CELL_NAMES = tuple(sorted(CELLS))
IMPLS = ("auto", "reference", "fused")
OPTIMIZERS = ("adamw",)
SCHEDULES = ("cosine", "constant")

# Keys a resumed run may change (they do not change what is trained). Every
# other key must equal the stored config.json; see `gru_jax.harness.train`.
RESUMABLE_KEYS = frozenset({
    "train.steps", "train.eval_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.log_every", "train.progress", "train.stop_when_solved",
})


def base_config(task: str = "adding") -> ml_collections.ConfigDict:
    """Every key with its default; the task section holds `task`'s own fields.

    The defaults train a GRU (hidden 64) on the adding problem; experiments
    change what they study (see experiments/adding.py).
    """
    from gru_jax.harness.tasks import (
        TASK_DEFAULTS,  # the tasks import data libraries; only when needed
    )

    if task not in TASK_DEFAULTS:
        raise ConfigError(
            f"task.name: unknown task {task!r}; choose one of {sorted(TASK_DEFAULTS)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = ml_collections.ConfigDict(dict(
        cell="gru", hidden_size=64, num_layers=1, variant="reset_after", chrono=False,
        dtype="float32", unroll=1, impl="auto",
    ))
    # False, True or a chunk length: an `object` field so --config.model.remat=16 parses.
    c.model.remat = config_dict.FieldReference(False, field_type=object)
    c.task = ml_collections.ConfigDict({"name": task, **TASK_DEFAULTS[task]})
    c.train = ml_collections.ConfigDict(dict(
        steps=3000,
        batch_size=64,
        learning_rate=1e-2,
        optimizer="adamw",
        weight_decay=1e-4,
        warmup_steps=100,
        schedule="cosine",
        clip_norm=1.0,
        eval_every=100,
        eval_size=1024,
        checkpoint_every=500,
        keep_checkpoints=3,
        log_every=50,
        progress=True,
        stop_when_solved=0,
    ))
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


CHECKS = {
    "seed": _nonneg_int,
    "model.cell": _choice(*CELL_NAMES),
    "model.hidden_size": _positive_int,
    "model.num_layers": _positive_int,
    "model.variant": _choice(*VARIANTS),
    "model.chrono": _bool,
    "model.dtype": _choice(*DTYPES),
    "model.remat": _remat,
    "model.unroll": _positive_int,
    "model.impl": _choice(*IMPLS),
    "train.steps": _positive_int,
    "train.batch_size": _positive_int,
    "train.learning_rate": _positive_float,
    "train.optimizer": _choice(*OPTIMIZERS),
    "train.weight_decay": _nonneg_float,
    "train.warmup_steps": _nonneg_int,
    "train.schedule": _choice(*SCHEDULES),
    "train.clip_norm": _nonneg_float,
    "train.eval_every": _positive_int,
    "train.eval_size": _positive_int,
    "train.checkpoint_every": _positive_int,
    "train.keep_checkpoints": _positive_int,
    "train.log_every": _positive_int,
    "train.progress": _bool,
    "train.stop_when_solved": _nonneg_int,
}


def validate(config):
    """Check every key of `config`; return the task it describes.

    Raises ConfigError (one line, naming the key) for an unknown or missing
    key, a value of the wrong type or out of range, an unknown cell or task,
    a task field the task rejects (e.g. seq_len too short: the task's maker
    decides), options that do not combine (chrono on rnn/mingru, impl=fused
    on anything but a reset_after gru), or a batch size that does not split
    over the devices.
    """
    from gru_jax.harness.tasks import TASK_DEFAULTS, get_task

    flat = flatten(config)
    name = flat.get("task.name")
    if name not in TASK_DEFAULTS:
        raise ConfigError(
            f"task.name: unknown task {name!r}; choose one of {sorted(TASK_DEFAULTS)}")
    # Unknown keys outside `task` (the task's maker judges its own fields).
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

    cell = flat["model.cell"]
    if flat["model.chrono"] and cell not in CHRONO_CELLS:
        raise ConfigError(f"model.chrono: only for cell gru or lstm, not {cell!r}")
    if flat["model.impl"] == "fused" and (cell != "gru" or flat["model.variant"] != "reset_after"):
        raise ConfigError("model.impl: 'fused' needs model.cell=gru with variant reset_after; "
                          "use auto or reference")
    n = jax.device_count()
    if flat["train.batch_size"] % n:
        raise ConfigError(f"train.batch_size: must be divisible by the {n} devices, "
                          f"got {flat['train.batch_size']}")
    task = get_task(config.task)
    if flat["model.chrono"] and task.seq_len <= 2:
        raise ConfigError(f"model.chrono: needs a task input longer than 2 steps, "
                          f"got {task.seq_len}")
    return task


def resolved(config) -> ml_collections.ConfigDict:
    """A copy of `config` with the task's unset fields filled from its defaults."""
    from gru_jax.harness.tasks import TASK_DEFAULTS

    config = _copy.deepcopy(config)
    with config.unlocked():
        for k, v in TASK_DEFAULTS[config.task.name].items():
            if k not in config.task:
                config.task[k] = v
    return config


# --- command lines: config_flags errors as one line ---

def _config_path_from_argv(argv, name: str = "config") -> str | None:
    for i, a in enumerate(argv):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _override_keys(argv, name: str = "config") -> list[str]:
    prefix = f"--{name}."
    return [a[len(prefix):].split("=", 1)[0] for a in argv if a.startswith(prefix)]


def _load_config_file(argv):
    """The config file named by --config in `argv`, loaded without overrides (None if it fails)."""
    from ml_collections.config_flags import config_flags

    path = _config_path_from_argv(argv)
    try:
        cfg = config_flags.ConfigFileFlagParser(name="config").parse(path) if path else None
        cfg.keys()
        return cfg
    except Exception:  # noqa: BLE001
        return None


def flag_error_line(exc: BaseException, argv) -> str:
    """One line for an error raised while absl parses `argv` with an
    ml_collections config file flag named --config (unknown override key,
    unparsable value, broken config file, unknown flag)."""
    import re

    from absl import flags

    msg = str(exc)
    if isinstance(exc, (AttributeError, KeyError)):
        # config_flags reports an unknown override key by its last part only: find it.
        cfg = _load_config_file(argv)
        if cfg is not None:
            try:
                for key in _override_keys(argv):
                    node, parts = cfg, key.split(".")
                    for i, part in enumerate(parts):
                        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                            return _unknown(".".join(parts[: i + 1]), node)
                        node = node[part]
            except Exception:  # noqa: BLE001 - fall through to the generic line
                pass
        return f"--config: unknown key {msg.strip(chr(34)).strip(chr(39))}"
    m = re.match(r"flag --config\.([\w.]+)=(.*?): (.*)", msg, re.S)
    if m:
        key, value, why = m.groups()
        cfg = _load_config_file(argv)
        try:
            node = cfg
            for part in key.split("."):
                node = node[part]
            return f"{key}: must be {_type_name(node)}, got {value!r}"
        except Exception:  # noqa: BLE001 - no config to ask: say what the parser said
            return f"{key}: cannot use {value!r} ({why.splitlines()[0]})"
    m = re.match(r"flag --config=(.*?): (.*)", msg, re.S)
    if m:
        lines = [ln for ln in m.group(2).splitlines() if ln.strip()]
        return f"--config={m.group(1)}: cannot load it ({lines[-1].strip() if lines else 'error'})"
    if isinstance(exc, flags.Error):
        return msg.splitlines()[0] if msg else type(exc).__name__
    return f"{type(exc).__name__}: {msg.splitlines()[0] if msg else ''}"


def config_from_flag(flag_holder):
    """The ConfigDict behind a config_flags flag; ConfigError if the file is missing or
    did not load (config_flags defers that error to the first access)."""
    try:
        config = flag_holder.value
        if config is None:
            raise ConfigError("--config: required (a config file with get_config())")
        config.keys()  # _ErrorConfig raises its load error on any access
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever stopped the file from loading
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise ConfigError(f"--config: cannot load the config file ({lines[-1] if lines else e})"
                          ) from None
    return config
