"""Forecasts from a trained `series` run: the test split, and the values after the series.

    run = load_run("runs/series/cell=gru,dataset=co2,seed=0")
    pred = test_forecasts(run)          # [windows, H], the series' units
    baselines.score(run.splits, "test", pred)  # {mae, rmse, mase}

A run is read back from its workdir alone: config.json (the task fields say
which series, window, horizon and splits, so the train-only scaler is rebuilt
exactly) and the latest Orbax checkpoint (the parameters).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from gru_jax.harness.checkpoint import Checkpointer
from gru_jax.harness.errors import ConfigError, WorkdirError
from gru_jax.harness.files import CONFIG_FILE, read_json
from gru_jax.proj.series.sources import Series, read_csv
from gru_jax.proj.series.tasks import SeriesSplits, prepare


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained series run: its config (ConfigDict), splits (with the scaler) and params."""

    workdir: str
    config: Any
    splits: SeriesSplits
    params: Any
    step: int


def load_run(workdir: str) -> Run:
    """The run in `workdir`: config, rebuilt splits and the latest checkpoint's params.

    Raises WorkdirError when there is no run or no checkpoint there, ConfigError
    when the run is not a `series` run or its data cannot be read any more.
    """
    import jax
    import ml_collections

    from gru_jax.harness.config import make_task
    from gru_jax.harness.steps import create_train_state

    stored = read_json(os.path.join(workdir, CONFIG_FILE))
    if stored is None:
        raise WorkdirError(f"--workdir: no {CONFIG_FILE} in {workdir}; is it a training run?")
    config = ml_collections.ConfigDict(stored)
    if config.task.name != "series":
        raise ConfigError(f"--workdir: {workdir} trained task {config.task.name!r}; forecasts "
                          "need a 'series' run")
    task = make_task(config)
    target = create_train_state(jax.random.key(0), config, task)
    ckpt = Checkpointer(workdir, keep=config.train.keep_checkpoints,
                        every=config.train.checkpoint_every)
    try:
        found = ckpt.restore_latest(target)
    finally:
        ckpt.close()
    if found is None:
        raise WorkdirError(f"--workdir: {workdir} has no checkpoint to forecast with")
    step, state, _ = found
    fields = {k: v for k, v in config.task.to_dict().items() if k != "name"}
    return Run(workdir, config, prepare(**fields), state.params, int(step))


def model_forecasts(run: Run, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """[windows, H] forecasts, in `values`' units, from the windows ending at `origins`.

    `values` [n] is transformed and scaled as in training (the run's train-only
    scaler), cut into windows of the run's seq_len ending at each origin t, and
    the model's H outputs are mapped back to the series' units.
    """
    import jax.numpy as jnp

    from gru_jax.harness.models import apply_model

    x = run.splits.inputs(values, origins)
    out = apply_model(run.params, jnp.asarray(x), run.config.model, "last")
    return run.splits.levels(values, origins, np.asarray(out))


def test_forecasts(run: Run) -> np.ndarray:
    """[test windows, H]: the model's forecasts at every origin of the test split."""
    return model_forecasts(run, run.splits.series.values, run.splits.origins("test"))


def series_for(run: Run, csv: str | None = None, column: str = "",
               time_column: str = "") -> Series:
    """The run's own series, or `column` of another CSV (default: the run's column names)."""
    if not csv:
        return run.splits.series
    task = run.config.task
    return read_csv(csv, column or task.column, time_column or task.time_column,
                    season=run.splits.series.season)


def forecast_table(run: Run, series: Series, scored: str) -> dict[str, np.ndarray]:
    """Forecasts over the known part of `series` and the H values after its end.

    `scored` is "test" (the run's own series: the test split's origins) or
    "all" (another series: every origin with a full window and H known values).
    Returns columns of equal length, one row per (origin, step k):
    origin [rows] int, step, target_time (str), truth (NaN after the end), forecast.
    """
    s = run.splits
    n, h, w = len(series.values), s.horizon, s.seq_len
    if n < w:
        raise ConfigError(f"--csv: {series.name} has {n} values, fewer than the run's window "
                          f"of {w}")
    known = s.origins("test") if scored == "test" else np.arange(w - 1, n - h)
    origins = np.concatenate([known, [n - 1]]).astype(int)  # the last: the future forecast
    pred = model_forecasts(run, series.values, origins)
    labels = series.time_labels() + series.future_labels(h)
    padded = np.concatenate([series.values, np.full(h, np.nan)])
    t = origins[:, None] + 1 + np.arange(h)  # target index of each (origin, step)
    return {
        "origin": np.repeat(origins, h),
        "step": np.tile(np.arange(1, h + 1), len(origins)),
        "target_time": np.asarray(labels, dtype=object)[t].ravel(),
        "truth": padded[t].ravel(),
        "forecast": pred.ravel(),
    }
