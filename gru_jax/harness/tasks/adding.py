"""The adding problem (Hochreiter & Schmidhuber 1997), in the form of Arjovsky et al. 2016.

Each input step carries two channels: a value drawn from U[0, 1] and a marker.
Exactly one marker is 1 in the first half of the sequence (steps [0, T//2)) and
one in the second half (steps [T//2, T)); the target is the sum of the two
marked values, read from the last step. The marked values can sit up to T-1
steps apart, so T sets the dependency length.

Predicting the constant E[U1 + U2] = 1 scores Var(U1 + U2) = 2/12 = 1/6 ~ 0.167:
that is the baseline, and the task counts as solved at MSE <= 0.01.

Config fields: ``seq_len`` (T >= 2, default 100).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gru_jax.harness.tasks.base import Batch, Task, mse_task
from gru_jax.harness.tasks.checks import check_int

DEFAULTS = {"seq_len": 100}
SOLVED_AT = 0.01  # eval MSE; the DESIGN's threshold (16x below the mean predictor)
BASELINE = 1.0 / 6.0  # Var(U1 + U2) with U ~ U[0, 1] iid


def adding_batch(key: jax.Array, batch_size: int, seq_len: int) -> Batch:
    """One batch of the adding problem.

    Returns x [batch, seq_len, 2] float32 (channel 0 values, channel 1 markers)
    and y [batch, 1] float32. Pure in `key`; batch_size and seq_len are static.
    """
    k_val, k_first, k_second = jax.random.split(key, 3)
    half = seq_len // 2
    values = jax.random.uniform(k_val, (batch_size, seq_len), jnp.float32)
    first = jax.random.randint(k_first, (batch_size,), 0, half)
    second = jax.random.randint(k_second, (batch_size,), half, seq_len)
    # The halves are disjoint, so the two one-hots never overlap: the marker is 0/1.
    marker = jax.nn.one_hot(first, seq_len) + jax.nn.one_hot(second, seq_len)
    x = jnp.stack([values, marker], axis=-1)
    y = jnp.sum(values * marker, axis=1, keepdims=True)
    return {"x": x, "y": y}


def make(seq_len: int = DEFAULTS["seq_len"]) -> Task:
    """The adding task with dependency length `seq_len` (>= 2)."""
    seq_len = check_int("seq_len", seq_len, min_value=2)
    sample = functools.partial(adding_batch, seq_len=seq_len)
    # Generated task: held-out data are fresh draws under the trainer's fixed eval key.
    return mse_task("adding", input_size=2, output_size=1, seq_len=seq_len,
                    solved_at=SOLVED_AT, baseline=BASELINE, sample=sample, eval_batch=sample)
