"""One-step-ahead forecasting of a synthetic time series from a window of its past.

A fixed series z of N = 5000 values is built once (deterministically) and
normalised with the mean and std of its first 80%. A window of T = seq_len
consecutive values is the input, the next value the target::

    x = z[s : s + T]   [T, 1]        y = z[s + T]   [1]

Training windows lie wholly (inputs and target) in the first 80% of the series,
held-out windows wholly in the last 20%, so no value is shared between them.

Series (``series``):

* ``"sine"``: sin(2 pi t / 25) + 0.1 eps_t, eps_t iid N(0, 1) (numpy seed 0).
  The noise cannot be predicted: after normalisation (var ~ 0.51) it leaves an
  MSE floor of about 0.01 / 0.51 ~ 0.02; a least-squares linear predictor on
  10-step windows gets about 0.024, persistence about 0.10. Solved at MSE <= 0.05,
  half of persistence's error: the model must use the window's phase, not just
  its last value, and average out some of the noise.
* ``"mackey_glass"``: dx/dt = 0.2 x(t-17) / (1 + x(t-17)^10) - 0.1 x(t)
  (tau = 17, the chaotic regime), history x = 1.2, forward Euler with dt = 0.1,
  the first 1000 time units dropped, then sampled every 6 time units (the
  usual 6-unit step of Mackey-Glass benchmarks; at a 1-unit step persistence
  alone is already near-perfect). Persistence scores about 0.68 and a linear
  predictor on 10-step windows about 0.14, while the map is deterministic (a small
  MLP gets below 1e-4). Solved at MSE <= 0.01: it takes a nonlinear model.

Baseline: the MSE of persistence (predict the window's last value) on the
held-out windows: the standard naive forecast, and the best that uses only the
last input.

Config fields: ``seq_len`` (T in [1, 500], default 10), ``series`` ("sine" or
"mackey_glass", default "sine").
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gru_jax.harness.tasks.base import Batch, Task, mse_task
from gru_jax.harness.tasks.checks import check_choice, check_int

DEFAULTS = {"seq_len": 10, "series": "sine"}
SERIES = ("sine", "mackey_glass")
LENGTH = 5000  # values in the series
TRAIN_FRACTION = 0.8
MAX_SEQ_LEN = 500  # keeps >= 500 held-out windows in the last 20% (1000 values)
SOLVED_AT = {"sine": 0.05, "mackey_glass": 0.01}  # normalised MSE; reasons in the docstring

SINE_PERIOD = 25
SINE_NOISE = 0.1
MG = {"tau": 17.0, "beta": 0.2, "gamma": 0.1, "power": 10, "x0": 1.2, "dt": 0.1,
      "burn_in": 1000.0, "sample_every": 6.0}


def sine_series(length: int = LENGTH) -> np.ndarray:
    """[length] float64: sin(2 pi t / 25) plus N(0, 0.1^2) noise from numpy seed 0."""
    t = np.arange(length)
    noise = np.random.default_rng(0).standard_normal(length)
    return np.sin(2 * np.pi * t / SINE_PERIOD) + SINE_NOISE * noise


def mackey_glass_series(length: int = LENGTH) -> np.ndarray:
    """[length] float64: the Mackey-Glass equation (tau 17) by forward Euler, sampled every 6."""
    dt = MG["dt"]
    delay = int(round(MG["tau"] / dt))  # the delay in Euler steps
    every = int(round(MG["sample_every"] / dt))
    burn = int(round(MG["burn_in"] / dt))
    steps = burn + length * every
    # x[i] is x at time (i - delay) * dt; the first delay + 1 entries are the constant history.
    x = np.empty(delay + 1 + steps)
    x[: delay + 1] = MG["x0"]
    beta, gamma, power = MG["beta"], MG["gamma"], MG["power"]
    for i in range(delay, delay + steps):
        lagged = x[i - delay]
        x[i + 1] = x[i] + dt * (beta * lagged / (1.0 + lagged**power) - gamma * x[i])
    return x[delay + burn :: every][:length]  # from time burn_in on, every 6 time units


@functools.cache
def normalised_series(series: str) -> np.ndarray:
    """[LENGTH] float32: the series, standardised by the mean and std of its first 80%."""
    raw = {"sine": sine_series, "mackey_glass": mackey_glass_series}[series]()
    cut = int(TRAIN_FRACTION * len(raw))
    z = ((raw - raw[:cut].mean()) / raw[:cut].std()).astype(np.float32)
    z.setflags(write=False)  # cached: callers must not mutate it
    return z


def windows(z: np.ndarray, seq_len: int, horizon: int = 1,
            origins: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Windows of `z` [n] ending at `origins` [w] (default: every t with T = seq_len values
    up to it and H = horizon after it) and the H values after each::

        x [w, T, 1] = z[t - T + 1 .. t],   y [w, H] = z[t + 1 .. t + H]

    With the defaults (H = 1): x [n - T, T, 1], y [n - T, 1], in order of time.
    """
    if origins is None:
        origins = np.arange(seq_len - 1, len(z) - horizon)
    x = z[origins[:, None] - seq_len + 1 + np.arange(seq_len)]
    return x[..., None], z[origins[:, None] + 1 + np.arange(horizon)]


def make(seq_len: int = DEFAULTS["seq_len"], series: str = DEFAULTS["series"]) -> Task:
    """Forecast the next value of `series` from `seq_len` values: x [batch, T, 1], y [batch, 1]."""
    seq_len = check_int("seq_len", seq_len, min_value=1, max_value=MAX_SEQ_LEN)
    series = check_choice("series", series, SERIES)
    z = normalised_series(series)
    cut = int(TRAIN_FRACTION * len(z))
    train = jnp.asarray(z[:cut])
    n_train_windows = cut - seq_len  # window s uses train[s : s + seq_len + 1]
    x_eval, y_eval = windows(z[cut:], seq_len)
    baseline = float(np.mean((x_eval[:, -1] - y_eval) ** 2))  # persistence
    x_eval, y_eval = jnp.asarray(x_eval), jnp.asarray(y_eval)
    offsets = jnp.arange(seq_len)

    def sample(key: jax.Array, batch_size: int) -> Batch:
        """batch_size training windows, starts uniform with replacement; jit-able."""
        starts = jax.random.randint(key, (batch_size,), 0, n_train_windows)
        x = train[starts[:, None] + offsets][..., None]
        return {"x": x, "y": train[starts + seq_len][:, None]}

    def eval_batch(key: jax.Array, size: int | None = None) -> Batch:
        """Every held-out window in order (the key is unused), or the first `size`."""
        del key  # a fixed held-out set needs no randomness
        stop = None if size is None else int(size)
        return {"x": x_eval[:stop], "y": y_eval[:stop]}

    return mse_task("forecast", input_size=1, output_size=1, seq_len=seq_len,
                    solved_at=SOLVED_AT[series], baseline=baseline, sample=sample,
                    eval_batch=eval_batch)
