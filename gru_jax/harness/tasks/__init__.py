"""The tasks: each turns a small config into a `Task` (see `base.py` for the batch format).

    >>> import jax
    >>> from gru_jax.harness.tasks import get_task
    >>> task = get_task({"name": "adding", "seq_len": 50})
    >>> batch = task.sample(jax.random.key(0), 4)
    >>> batch["x"].shape, batch["y"].shape
    ((4, 50, 2), (4, 1))

`TASK_DEFAULTS[name]` lists the config fields a task takes (besides ``name``)
with their defaults, so a config module can validate ``task.*`` keys.

A project or an experiment file adds its own task without editing the package::

    register_task("my_task", make, {"seq_len": 50})  # make(**fields) -> Task

(`gru_jax.proj.series` registers ``forecast`` and ``series`` this way.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gru_jax.harness.errors import ConfigError
from gru_jax.harness.tasks import adding, copy, digits, mnist1d
from gru_jax.harness.tasks.base import Batch, Task

TASKS: dict[str, Callable[..., Task]] = {
    "adding": adding.make,
    "copy": copy.make,
    "digits": digits.make,
    "mnist1d": mnist1d.make,
}

TASK_DEFAULTS: dict[str, dict] = {
    "adding": dict(adding.DEFAULTS),
    "copy": dict(copy.DEFAULTS),
    "digits": dict(digits.DEFAULTS),
    "mnist1d": dict(mnist1d.DEFAULTS),
}


def register_task(name: str, make: Callable[..., Task], defaults: Mapping) -> None:
    """Make ``task.name=<name>`` build ``make(**{**defaults, **task fields})``.

    `defaults` lists every field the task takes (besides ``name``); the config
    checks refuse any other ``task.*`` key. Registering a name again replaces it
    (re-loading an experiment file is harmless); a built-in task cannot be replaced.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_task: name must be an identifier, got {name!r}")
    if name in _BUILTIN and TASKS[name] is not make:
        raise ValueError(f"register_task: {name!r} is a built-in task; choose another name")
    if not callable(make):
        raise TypeError(f"register_task: make must be callable, got {type(make).__name__}")
    TASKS[name] = make
    TASK_DEFAULTS[name] = dict(defaults)


_BUILTIN = frozenset(TASKS)


def _as_dict(task_cfg) -> dict:
    """A plain dict from an ml_collections ConfigDict (references resolved) or a mapping."""
    if hasattr(task_cfg, "to_dict"):
        return task_cfg.to_dict()
    if isinstance(task_cfg, Mapping):
        return dict(task_cfg)
    raise ConfigError(f"task: must be a ConfigDict or a dict, got {type(task_cfg).__name__}")


def get_task(task_cfg) -> Task:
    """The Task named by ``task_cfg.name``, built from its other fields (defaults filled in).

    Raises ConfigError naming the key for an unknown task name, a key the task
    does not take, or a value it cannot use.
    """
    cfg = _as_dict(task_cfg)
    name = cfg.pop("name", None)
    if name not in TASKS:
        raise ConfigError(f"task.name: unknown task {name!r}; choose one of {sorted(TASKS)}")
    fields = TASK_DEFAULTS[name]
    for key in cfg:
        if key not in fields:
            raise ConfigError(
                f"task.{key}: unknown key for task {name!r}; it takes {sorted(fields)}"
            )
    return TASKS[name](**{**fields, **cfg})


__all__ = ["TASKS", "TASK_DEFAULTS", "Batch", "Task", "get_task", "register_task"]
