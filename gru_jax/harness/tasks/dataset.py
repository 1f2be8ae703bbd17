"""A fixed labelled dataset of 1-feature sequences as a Task (shared by digits and mnist1d).

Training batches are drawn with replacement from the train split, held on
device as jnp arrays; the held-out batch is the test split itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gru_jax.harness.tasks.base import Batch, Task

PERMUTATION_SEED = 0  # one fixed pixel order for every "permuted" run


def fixed_permutation(length: int) -> np.ndarray:
    """The permuted variant's step order, [length] int: the same on every call and machine."""
    return np.random.default_rng(PERMUTATION_SEED).permutation(length)


def prior_xent(labels: np.ndarray, num_classes: int) -> float:
    """Cross-entropy of predicting the label frequencies: the best input-blind classifier."""
    p = np.bincount(labels, minlength=num_classes) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def fixed_split_batches(x_train: jax.Array, y_train: jax.Array, x_eval: jax.Array,
                        y_eval: jax.Array):
    """(sample, eval_batch) of a Task over fixed arrays (leading axis: examples)."""
    n_train = x_train.shape[0]

    def sample(key: jax.Array, batch_size: int) -> Batch:
        """batch_size train examples drawn uniformly with replacement; jit-able."""
        idx = jax.random.randint(key, (batch_size,), 0, n_train)
        return {"x": x_train[idx], "y": y_train[idx]}

    def eval_batch(key: jax.Array, size: int | None = None) -> Batch:
        """The held-out split in order (the key is unused): whole, or its first `size`."""
        del key  # a fixed split needs no randomness
        stop = None if size is None else int(size)
        return {"x": x_eval[:stop], "y": y_eval[:stop]}

    return sample, eval_batch


def classification_task(
    name: str,
    splits: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    num_classes: int,
    permuted: bool,
    solved_at: float,
) -> Task:
    """A "last"-target xent Task over (x_train [N, T], y_train [N], x_test [M, T], y_test [M]).

    Batches: x [batch, T, 1] float32, y [batch] int32. With `permuted`, the
    time steps of every sequence are reordered by `fixed_permutation(T)`.
    """
    x_train, y_train, x_test, y_test = splits
    seq_len = x_train.shape[1]
    if permuted:
        order = fixed_permutation(seq_len)
        x_train, x_test = x_train[:, order], x_test[:, order]
    xs_train = jnp.asarray(x_train[..., None], jnp.float32)
    ys_train = jnp.asarray(y_train, jnp.int32)
    xs_test = jnp.asarray(x_test[..., None], jnp.float32)
    ys_test = jnp.asarray(y_test, jnp.int32)
    sample, eval_batch = fixed_split_batches(xs_train, ys_train, xs_test, ys_test)
    return Task(
        name=name,
        input_size=1,
        output_size=num_classes,
        seq_len=seq_len,
        target="last",
        loss="xent",
        metric="accuracy",
        solved_at=solved_at,
        baseline=prior_xent(np.asarray(y_train), num_classes),
        sample=sample,
        eval_batch=eval_batch,
    )
