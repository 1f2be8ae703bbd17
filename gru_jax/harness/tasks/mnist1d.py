"""MNIST-1D (Greydanus 2020): 40-step, 1-feature sequences of 10 digit-like templates.

The data are generated locally by the ``mnist1d`` package's
``mnist1d.data.make_dataset`` with its default arguments (5000 examples, seed
42, 80/20 train/test split, final length 40; standardised to mean 0, std 1 by
the generator). `make_dataset` never touches the network (only `get_dataset`
downloads, and it is not used). Generating takes a second or two,
so the result is cached in-process.

``permuted=True`` reorders the 40 steps by one fixed permutation (seed 0), like
the package's own ``shuffle_seq`` variant but independent of its RNG.

Solved at test accuracy >= 0.85. Why: the MNIST-1D README reports 32%
(logistic regression), 68% (MLP), 91% (GRU) and 94% (CNN); 0.85 is well past
what models without sequence structure reach and a little below the paper's
GRU, so it marks "learned the task" without demanding its full training budget.
(The permuted variant is much harder: the README's shuffled GRU reaches 57%.)
Baseline: cross-entropy of predicting the train label frequencies (~log 10).

Config fields: ``seq_len`` (must be 40), ``permuted`` (bool, default False).
"""

from __future__ import annotations

import functools

import numpy as np

from gru_jax.harness.errors import need
from gru_jax.harness.tasks.base import Task
from gru_jax.harness.tasks.checks import check_bool, check_equal
from gru_jax.harness.tasks.dataset import classification_task

DEFAULTS = {"seq_len": 40, "permuted": False}
SEQ_LEN = 40
NUM_CLASSES = 10
SOLVED_AT = 0.85


@functools.lru_cache(maxsize=1)
def mnist1d_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train [4000, 40], y_train [4000], x_test [1000, 40], y_test [1000]), generated."""
    data_mod = need("mnist1d.data", "datasets", "task.name")

    # make_dataset seeds numpy's global RNG (np.random.seed(42)); restore the
    # caller's RNG state so that building this task has no side effect.
    state = np.random.get_state()
    try:
        data = data_mod.make_dataset(data_mod.get_dataset_args())
    finally:
        np.random.set_state(state)
    out = (
        np.asarray(data["x"], np.float32),
        np.asarray(data["y"], np.int32),
        np.asarray(data["x_test"], np.float32),
        np.asarray(data["y_test"], np.int32),
    )
    for a in out:
        a.setflags(write=False)  # cached: callers must not mutate it
    return out


def make(seq_len: int = DEFAULTS["seq_len"], permuted: bool = DEFAULTS["permuted"]) -> Task:
    """MNIST-1D as a sequence task: x [batch, 40, 1], y [batch] int32."""
    check_equal("seq_len", seq_len, SEQ_LEN, "MNIST-1D sequences have 40 steps")
    permuted = check_bool("permuted", permuted)
    return classification_task(
        "mnist1d", mnist1d_data(), num_classes=NUM_CLASSES, permuted=permuted, solved_at=SOLVED_AT
    )
