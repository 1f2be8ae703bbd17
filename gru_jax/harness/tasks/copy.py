"""The copy memory task (Hochreiter & Schmidhuber 1997), in the form of Arjovsky et al. 2016.

With K = num_symbols, C = copy_len and delay T = seq_len, a sequence has
L = T + 2C steps::

    input   s_1 .. s_C | blank x (T-1) | delimiter | blank x C
    target  blank x (T + C)                         | s_1 .. s_C

The s_i are iid uniform over the K symbols. The model emits one prediction per
step (target "sequence") and must reproduce the C symbols after the delimiter,
T + C steps after it saw them.

Token ids: symbols 0..K-1, blank K, delimiter K+1. The input is the one-hot of
the token over K + 2 channels; the output has K + 1 classes (the K symbols and
blank; the delimiter is never a target).

Loss vs metric (what the trainer does with the batch):

* loss: cross-entropy averaged over ALL L steps, as in the paper. There is no
  loss weight in the batch; an unweighted mean over [batch, time] is the loss.
* metric ("accuracy"): weighted by ``w`` [batch, L], which is 1 on the C
  recall steps only, so accuracy is the fraction of recalled symbols that are
  right (1/K by chance). Solved at accuracy >= 0.99 (the DESIGN's threshold).

Baseline: the best memoryless predictor emits blank with certainty on the first
T + C steps (loss 0) and a uniform guess over the K symbols on the last C steps
(loss log K each), so its mean loss is C log K / (T + 2C), the paper's
10 log 8 / (T + 20) for C = 10, K = 8.

Config fields: ``seq_len`` (T >= 1, default 100), ``copy_len`` (C >= 1,
default 10), ``num_symbols`` (K >= 2, default 8). Note Task.seq_len is the
model input length L = T + 2C, not the config's T.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from gru_jax.harness.tasks.base import Batch, Task
from gru_jax.harness.tasks.checks import check_int

DEFAULTS = {"seq_len": 100, "copy_len": 10, "num_symbols": 8}
SOLVED_AT = 0.99  # accuracy on the recalled symbols


def copy_baseline(seq_len: int, copy_len: int, num_symbols: int) -> float:
    """Mean cross-entropy of the best memoryless predictor: C log K / (T + 2C)."""
    return copy_len * math.log(num_symbols) / (seq_len + 2 * copy_len)


def copy_batch(
    key: jax.Array, batch_size: int, seq_len: int, copy_len: int, num_symbols: int
) -> Batch:
    """One batch of the copy task; L = seq_len + 2 * copy_len.

    Returns x [batch, L, num_symbols + 2] float32 (one-hot tokens),
    y [batch, L] int32 (class ids, blank = num_symbols) and
    w [batch, L] float32 (1 on the last copy_len steps: the metric's weights).
    Pure in `key`; every argument but `key` is static.
    """
    blank, delimiter = num_symbols, num_symbols + 1
    symbols = jax.random.randint(key, (batch_size, copy_len), 0, num_symbols, jnp.int32)

    def fill(length, token):
        return jnp.full((batch_size, length), token, jnp.int32)

    tokens = jnp.concatenate(
        [symbols, fill(seq_len - 1, blank), fill(1, delimiter), fill(copy_len, blank)], axis=1
    )
    y = jnp.concatenate([fill(seq_len + copy_len, blank), symbols], axis=1)
    w_step = jnp.concatenate(
        [jnp.zeros(seq_len + copy_len, jnp.float32), jnp.ones(copy_len, jnp.float32)]
    )
    w = jnp.broadcast_to(w_step, y.shape)
    x = jax.nn.one_hot(tokens, num_symbols + 2, dtype=jnp.float32)
    return {"x": x, "y": y, "w": w}


def make(
    seq_len: int = DEFAULTS["seq_len"],
    copy_len: int = DEFAULTS["copy_len"],
    num_symbols: int = DEFAULTS["num_symbols"],
) -> Task:
    """The copy task with delay `seq_len` (T), `copy_len` symbols out of `num_symbols`."""
    seq_len = check_int("seq_len", seq_len, min_value=1)
    copy_len = check_int("copy_len", copy_len, min_value=1)
    num_symbols = check_int("num_symbols", num_symbols, min_value=2)
    sample = functools.partial(
        copy_batch, seq_len=seq_len, copy_len=copy_len, num_symbols=num_symbols
    )
    return Task(
        name="copy",
        input_size=num_symbols + 2,
        output_size=num_symbols + 1,
        seq_len=seq_len + 2 * copy_len,
        target="sequence",
        loss="xent",
        metric="accuracy",
        solved_at=SOLVED_AT,
        baseline=copy_baseline(seq_len, copy_len, num_symbols),
        sample=sample,
        eval_batch=sample,
    )
