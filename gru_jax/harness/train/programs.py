"""A session's compiled programs (the chunked train loop, eval, diagnostics) and the
held-out batches, cached in-process: a sweep worker trains many runs of few shapes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import jax

from gru_jax.harness import steps
from gru_jax.harness.keys import NOT_HPARAMS, flatten
from gru_jax.harness.models import model_spec
from gru_jax.harness.tasks.base import Task

EVAL_SEED = 2_147_483_647  # the held-out batch's key: fixed, shared by every run and seed
DIAGNOSTIC_EXAMPLES = 256  # eval examples behind the dL/dh_t curve and gate statistics


@dataclasses.dataclass(frozen=True)
class Programs:
    """A session's compiled programs and its held-out batches."""

    train: Any  # (state [K], keys [K], scales [K], n) -> (state, metric sums [K])
    evaluate: Callable
    diagnose: Callable
    batch: dict
    few: dict  # the first DIAGNOSTIC_EXAMPLES of `batch`
    memory: int | None
    template: Any  # the state the programs were traced with (its static fields)


# Config keys that change no compiled program (the init, the data keys, the cadence of
# the host's work): runs differing only in them share one `Programs`.
_NOT_PROGRAM = NOT_HPARAMS | {"seed", "train.learning_rate", "model.chrono",
                              "model.chrono_t_max", "train.stop_when_solved"}
_PROGRAMS: dict = {}  # in-process: a sweep worker trains many runs of few shapes
_PROGRAMS_KEPT = 8


def programs(state, keys, scales, task: Task, config, train_step, eval_step) -> Programs:
    """The programs of a session whose state is `state` [K, ...] (keys [K], scales [K]),
    from the cache when a session of the same shape and config built them before."""
    flat = flatten(config)
    skip = _NOT_PROGRAM | ({"train.steps"} if config.train.schedule == "constant" else set())
    key = (json.dumps({k: v for k, v in flat.items() if k not in skip}, sort_keys=True,
                      default=str), int(keys.shape[0]), train_step, eval_step)
    if key in _PROGRAMS:
        return _PROGRAMS[key]
    tc, spec = config.train, model_spec(config.model)
    _, replicated = steps.data_mesh()
    train = steps.train_loop_program(state, keys, scales, task, tc.batch_size, train_step)
    batch = jax.jit(task.eval_batch, static_argnums=1, out_shardings=replicated)(
        jax.random.key(EVAL_SEED), tc.eval_size)
    # Gradient diagnostics on the first examples only: a backward pass per eval.
    few = jax.tree_util.tree_map(lambda a: a[:DIAGNOSTIC_EXAMPLES], batch)
    # Compiled on first use (inside the loop: an eval step that fails fails the run
    # there), so a session's first eval_sec includes compiling them.
    evaluate = jax.jit(jax.vmap(eval_step, in_axes=(0, None)))
    diagnose = jax.jit(jax.vmap(lambda s, b: steps.diagnose(s, b, spec, task.target),
                                in_axes=(0, None)))
    progs = Programs(train, evaluate, diagnose, batch, few,
                     steps.compiled_memory_bytes(train), template=state)
    while len(_PROGRAMS) >= _PROGRAMS_KEPT:
        _PROGRAMS.pop(next(iter(_PROGRAMS)))
    _PROGRAMS[key] = progs
    return progs
