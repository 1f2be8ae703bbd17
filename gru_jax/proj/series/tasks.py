"""Forecasting a real series (packaged or a user's CSV) from a window of its past.

The series y [n] (see `sources`) is split by time into train, validation
and test (the last ``test_fraction``, before it ``val_fraction``, the rest
train). It is standardised with the mean and std of the TRAIN values only::

    z = (y - mean(y_train)) / std(y_train)

A window ends at an origin t (its last input); the model sees T = seq_len
values and predicts the next H = horizon ones, all at once (the DIRECT
multi-step strategy: the head has H outputs, no forecast is fed back)::

    x = z[t - T + 1 : t + 1]   [T, 1]        y = z[t + 1 : t + H + 1]   [H]

With ``difference`` the model sees the first differences v[t] = y[t] - y[t-1]
instead of y (standardised by the train differences) and predicts the next H
differences; a forecast is y[t] plus their running sum. This is the usual cure
for a trend that carries the test values out of the training range (CO2):
a tanh network cannot extrapolate levels it has never seen, but the
changes stay in range.

A window belongs to the split that holds all H of its targets; windows whose
targets straddle two splits are used by neither. Inputs may reach back into
an earlier split (the past is known when forecasting), never forward, so no
validation or test value is ever an input or a target of a training window,
and none reaches the scaler. Training batches are train windows drawn with
replacement; the trainer's held-out batch is the validation windows; the test
windows are scored only after training (`gru_jax.proj.series.forecasting`).

Task.baseline is the MSE of persistence (every target = y[t]) on the
validation windows, in standardised units; a run counts as solved when its
validation MSE is at or below it (it beats the naive forecast).

Config fields: ``seq_len`` (T, default 10: the Keras tutorials' window),
``horizon`` (H, default 1), ``dataset`` (co2 | elnino | sunspots | nile;
ignored when ``csv`` is set), ``csv`` (a file path), ``column`` and
``time_column`` (CSV column names; the time column is optional), ``season``
(seasonal period; 0: the packaged series' own, 1 for a CSV), ``val_fraction``
and ``test_fraction`` (default 0.15 each), ``difference`` (default False). A
series too short for the window and the splits (each split needs one whole
window) is refused.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from gru_jax.harness.errors import ConfigError
from gru_jax.harness.tasks.base import Task, mse_task
from gru_jax.harness.tasks.checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_str,
)
from gru_jax.harness.tasks.dataset import fixed_split_batches
from gru_jax.proj.series.forecast_task import windows as cut_windows
from gru_jax.proj.series.sources import PACKAGED, Series, packaged, read_csv

DEFAULTS = {"seq_len": 10, "horizon": 1, "dataset": "co2", "csv": "", "column": "",
            "time_column": "", "season": 0, "val_fraction": 0.15, "test_fraction": 0.15,
            "difference": False}
SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class SeriesSplits:
    """A series cut by time into train | val | test, and its train-only scaler.

    The model sees v = y (levels) or, with `difference`, v[t] = y[t] - y[t-1]
    (v[0] undefined), standardised by the mean and std of v over the train part.
    """

    series: Series
    seq_len: int
    horizon: int
    n_train: int
    n_val: int
    difference: bool
    mean: float  # of the train part of v only
    std: float

    @property
    def n_test(self) -> int:
        return len(self.series.values) - self.n_train - self.n_val

    def modelled(self, values: np.ndarray) -> np.ndarray:
        """v [n] from levels y [n]: y itself, or its first differences (v[0] = NaN)."""
        values = np.asarray(values, np.float64)
        return np.diff(values, prepend=np.nan) if self.difference else values

    def scale(self, v):
        return (v - self.mean) / self.std

    def unscale(self, z):
        return z * self.std + self.mean

    def origins(self, split: str) -> np.ndarray:
        """[windows] int: the last input index t of each window of `split`, in time order."""
        first_target = {"train": 0, "val": self.n_train, "test": self.n_train + self.n_val}[split]
        end = {"train": self.n_train, "val": self.n_train + self.n_val,
               "test": len(self.series.values)}[split]  # one past the split's last value
        first_input = int(self.difference)  # v[0] is undefined after differencing
        start = max(first_target, first_input + self.seq_len) - 1
        return np.arange(start, end - self.horizon)

    def inputs(self, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """x [windows, T, 1] float32: the standardised v of the windows ending at `origins`."""
        z = self.scale(self.modelled(values)).astype(np.float32)
        return cut_windows(z, self.seq_len, 0, origins)[0]  # horizon 0: inputs only

    def windows(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Standardised windows of `split`: x [windows, T, 1] float32, y [windows, H] float32."""
        z = self.scale(self.modelled(self.series.values)).astype(np.float32)
        return cut_windows(z, self.seq_len, self.horizon, self.origins(split))

    def levels(self, values: np.ndarray, origins: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Model outputs `out` [windows, H] (standardised v) -> forecasts of y [windows, H]:
        unscaled, and with `difference` summed onto the last known level y[t]."""
        v = self.unscale(np.asarray(out, np.float64))
        if not self.difference:
            return v
        return np.asarray(values, np.float64)[origins][:, None] + np.cumsum(v, axis=1)


def split_series(series: Series, seq_len: int, horizon: int, val_fraction: float,
                 test_fraction: float, difference: bool = False) -> SeriesSplits:
    """Cut `series` by time and fit the scaler on the train part.

    Raises ConfigError when a split would hold no whole window (the series is
    too short for seq_len, horizon and the fractions) or the train part is
    constant.
    """
    n = len(series.values)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_val - n_test
    need = (f"{series.name} has {n} values: {n_train} train, {n_val} validation, {n_test} test; "
            f"each split needs one window of {seq_len} inputs and {horizon} targets")
    if min(n_val, n_test) < horizon or n_train < seq_len + horizon + int(difference):
        raise ConfigError(f"task.seq_len: series too short: {need}")
    if series.season >= n_train:
        raise ConfigError(f"task.season: {series.season} is not shorter than the "
                          f"{n_train} train values of {series.name}")
    train = series.values[:n_train]
    if difference:
        train = np.diff(train)
    std = float(train.std())
    if not std > 0:
        raise ConfigError(f"task.column: the train part of {series.name} is constant"
                          f"{' in its differences' if difference else ''}; nothing to learn")
    return SeriesSplits(series, seq_len, horizon, n_train, n_val, difference,
                        float(train.mean()), std)


def load_series(dataset: str, csv: str, column: str, time_column: str, season: int) -> Series:
    """The packaged `dataset`, or `column` of the file `csv` when it is set."""
    if csv:
        return read_csv(csv, column, time_column, season=season or 1)
    if column or time_column:
        raise ConfigError("task.column: only with task.csv (the packaged series have one column)")
    s = packaged(check_choice("dataset", dataset, PACKAGED))
    return dataclasses.replace(s, season=season) if season else s


def prepare(seq_len: int = DEFAULTS["seq_len"], horizon: int = DEFAULTS["horizon"],
            dataset: str = DEFAULTS["dataset"], csv: str = DEFAULTS["csv"],
            column: str = DEFAULTS["column"], time_column: str = DEFAULTS["time_column"],
            season: int = DEFAULTS["season"], val_fraction: float = DEFAULTS["val_fraction"],
            test_fraction: float = DEFAULTS["test_fraction"],
            difference: bool = DEFAULTS["difference"]) -> SeriesSplits:
    """The checked task fields -> the series, cut and scaled (what `make` trains on)."""
    seq_len = check_int("seq_len", seq_len, min_value=1)
    horizon = check_int("horizon", horizon, min_value=1)
    season = check_int("season", season, min_value=0)
    for key, value in (("csv", csv), ("column", column), ("time_column", time_column)):
        check_str(key, value)
    val_fraction = check_fraction("val_fraction", val_fraction)
    test_fraction = check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ConfigError(f"task.test_fraction: val_fraction + test_fraction must be < 1, got "
                          f"{val_fraction} + {test_fraction}")
    difference = check_bool("difference", difference)
    series = load_series(dataset, csv, column, time_column, season)
    return split_series(series, seq_len, horizon, val_fraction, test_fraction, difference)


def make(**fields) -> Task:
    """Forecast `horizon` values from `seq_len`: x [batch, T, 1], y [batch, H] (standardised)."""
    splits = prepare(**fields)
    x_train, y_train = (jnp.asarray(a) for a in splits.windows("train"))
    x_val, y_val = (jnp.asarray(a) for a in splits.windows("val"))
    # Persistence (y^[t+k] = y[t]) in the model's units: the last input, or a change of 0.
    persistence = splits.scale(0.0) if splits.difference else np.asarray(x_val)[:, -1, :]
    baseline = float(np.mean((persistence - np.asarray(y_val)) ** 2))
    sample, eval_batch = fixed_split_batches(x_train, y_train, x_val, y_val)
    return mse_task("series", input_size=1, output_size=splits.horizon,
                    seq_len=splits.seq_len, solved_at=baseline, baseline=baseline,
                    sample=sample, eval_batch=eval_batch)
