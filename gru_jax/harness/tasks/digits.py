"""scikit-learn's 8x8 handwritten digits, read pixel by pixel: sequential (and permuted) digits.

Each 8x8 image (values 0..16, scaled to [0, 1]) becomes a 64-step sequence of
one feature in row-major order; the class (10 digits) is predicted from the last
step. The data ship inside scikit-learn (``load_digits``), so nothing is
downloaded. The 1797 images are split once, stratified by class, with a fixed
seed: 1500 train, 297 test (`digits_split`).

``permuted=True`` reorders the 64 pixels of every image by one fixed
permutation (`gru_jax.harness.tasks.dataset.fixed_permutation(64)`, seed 0), as in
permuted sequential MNIST: neighbouring pixels end up far apart in time.

Solved at test accuracy >= 0.9. Why 0.9: a logistic regression on the full
image reaches about 0.96 on this split, but one on only the last 32 pixels
(what a model that forgets the first half of the sequence sees) about 0.86;
0.9 therefore asks for memory of more than half the sequence (checked in tests).
Baseline: cross-entropy of predicting the train label frequencies (~log 10).

``split="validation"`` trains on 1200 of the 1500 train images and evaluates on
the other 300 (again fixed and class-stratified, `validation_split`), so a
hyperparameter can be chosen without reading the test images.

Config fields: ``seq_len`` (must be 64), ``permuted`` (bool, default False),
``split`` ("test", default, or "validation").
"""

from __future__ import annotations

import functools

import numpy as np

from gru_jax.harness.errors import need
from gru_jax.harness.tasks.base import Task
from gru_jax.harness.tasks.checks import check_bool, check_choice, check_equal
from gru_jax.harness.tasks.dataset import classification_task

DEFAULTS = {"seq_len": 64, "permuted": False, "split": "test"}
SPLITS = ("test", "validation")
SEQ_LEN = 64
NUM_CLASSES = 10
NUM_TEST = 297
NUM_VALIDATION = 300
SPLIT_SEED = 0
SOLVED_AT = 0.9


def _sklearn():
    """scikit-learn with the submodules used here (without it: one line naming the extra)."""
    for sub in ("datasets", "model_selection"):
        need(f"sklearn.{sub}", "datasets", "task.name")
    return need("sklearn", "datasets", "task.name")


@functools.lru_cache(maxsize=1)
def digits_split() -> tuple[np.ndarray, np.ndarray]:
    """(train_idx [1500], test_idx [297]): fixed, class-stratified indices into load_digits()."""
    sklearn = _sklearn()
    labels = sklearn.datasets.load_digits().target
    train_idx, test_idx = sklearn.model_selection.train_test_split(
        np.arange(len(labels)), test_size=NUM_TEST, random_state=SPLIT_SEED, stratify=labels
    )
    for a in (train_idx, test_idx):
        a.setflags(write=False)  # cached: callers must not mutate it
    return train_idx, test_idx


@functools.lru_cache(maxsize=1)
def digits_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train [1500, 64], y_train [1500], x_test [297, 64], y_test [297]); x in [0, 1]."""
    digits = _sklearn().datasets.load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel intensities are 0..16
    y = digits.target.astype(np.int32)
    train_idx, test_idx = digits_split()
    out = (x[train_idx], y[train_idx], x[test_idx], y[test_idx])
    for a in out:
        a.setflags(write=False)
    return out


def validation_split() -> tuple[np.ndarray, np.ndarray]:
    """(fit_idx [1200], validation_idx [300]): fixed, class-stratified positions in the
    train split of `digits_data` (the test images are not touched)."""
    sklearn = _sklearn()
    y_train = digits_data()[1]
    return sklearn.model_selection.train_test_split(
        np.arange(len(y_train)), test_size=NUM_VALIDATION, random_state=SPLIT_SEED,
        stratify=y_train)


def make(seq_len: int = DEFAULTS["seq_len"], permuted: bool = DEFAULTS["permuted"],
         split: str = DEFAULTS["split"]) -> Task:
    """Sequential (or, with `permuted`, permuted) 8x8 digits: x [batch, 64, 1], y [batch];
    evaluated on the test images, or (`split="validation"`) on 300 held-out train images."""
    check_equal("seq_len", seq_len, SEQ_LEN, "an 8x8 image read pixel by pixel")
    permuted = check_bool("permuted", permuted)
    split = check_choice("split", split, SPLITS)
    data = digits_data()
    if split == "validation":
        fit, val = validation_split()
        data = (data[0][fit], data[1][fit], data[0][val], data[1][val])
    return classification_task(
        "digits", data, num_classes=NUM_CLASSES, permuted=permuted, solved_at=SOLVED_AT
    )
