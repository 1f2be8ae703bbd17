"""Forecast metrics and classical baselines on the splits of `gru_jax.proj.series.tasks`.

Every forecaster answers the same question as the recurrent models: from an
origin t (the last known value), the next H values y[t+1 .. t+H]. Forecasts
are [windows, H] arrays in the series' own units, one row per origin of
`SeriesSplits.origins(split)`. Parameters are estimated on the TRAIN split
only; at each origin a forecaster may use every value up to y[t] (the known
past), never a later one.

    persistence     y^[t+k] = y[t]
    seasonal naive  y^[t+k] = y[t + k - m ceil(k / m)]        (m = the season)
    linear AR       y^[t+1 .. t+H] = W [y[t-T+1 .. t], 1]: least squares on the
                    train windows, T = the task's window, one column per step ahead
                    (direct, like the recurrent models); for H = 1 this is
                    statsmodels' AutoReg(lags=T, trend="c") on the train split
    ARIMA           statsmodels SARIMAX, order per series (ARIMA_ORDERS), fitted
                    by maximum likelihood on train, then run with those fixed
                    parameters over the data up to each origin (`MLEResults.apply`)
    ETS             statsmodels' state-space ExponentialSmoothing (additive errors),
                    components per series (ETS_FORMS), fitted and applied likewise

Metrics, on the targets of a split (all origins x all H steps)::

    MAE  = mean |y - y^|      RMSE = sqrt(mean (y - y^)^2)
    MASE = MAE / mean_{t in train, t >= m} |y[t] - y[t - m]|

MASE scales by the in-sample MAE of the one-step seasonal naive forecast on the
train split (Hyndman & Koehler 2006, with the seasonal period as in the M4
competition; m = 1 for a series without season): below 1 beats that naive
forecast's training error.
"""

from __future__ import annotations

import warnings

import numpy as np

from gru_jax.proj.series.tasks import SeriesSplits

# (order, seasonal_order or None, trend): classic textbook choices, stated, not searched
# (an automatic order search costs minutes of maximum-likelihood fits per series here).
ARIMA_ORDERS = {
    "co2": ((1, 1, 1), "season", None),  # SARIMA(1,1,1)(0,1,1)12, Box & Jenkins' airline form
    "elnino": ((1, 0, 1), "season", None),  # SARIMA(1,0,1)(0,1,1)12
    "sunspots": ((2, 0, 0), None, "c"),  # Yule's (1927) AR(2) with a mean
    "nile": ((0, 1, 1), None, None),  # ARIMA(0,1,1): the local level model
}
CSV_ARIMA = ((1, 1, 1), "season", None)  # a CSV: seasonal part (0,1,1)m only when m > 1
SEASONAL_ORDER = (0, 1, 1)

# (trend, damped_trend, seasonal?) of the additive-error exponential smoothing
ETS_FORMS = {
    "co2": (True, True, True),  # damped trend + season
    "elnino": (False, False, True),  # season, no trend
    "sunspots": (False, False, False),  # simple exponential smoothing
    "nile": (False, False, False),  # the local level again
}
CSV_ETS = (True, True, True)

BASELINES = ("persistence", "seasonal_naive", "linear_ar", "arima", "ets")


# ---------------------------------------------------------------- metrics


def mase_scale(train: np.ndarray, season: int) -> float:
    """In-sample MAE of the one-step seasonal naive forecast on `train` [n]."""
    m = max(int(season), 1)
    return float(np.mean(np.abs(train[m:] - train[:-m])))


def metrics(y: np.ndarray, pred: np.ndarray, scale: float) -> dict[str, float]:
    """{mae, rmse, mase} of forecasts `pred` against targets `y` (same shape); MASE is
    NaN when `scale` is 0 (the seasonal naive forecast fits the train part exactly)."""
    err = np.asarray(pred, np.float64) - np.asarray(y, np.float64)
    mae = float(np.mean(np.abs(err)))
    mase = mae / scale if scale > 0 else float("nan")  # a perfectly seasonal train part
    return {"mae": mae, "rmse": float(np.sqrt(np.mean(err**2))), "mase": mase}


def targets(splits: SeriesSplits, split: str) -> np.ndarray:
    """[windows, H]: y[t+1 .. t+H] for each origin t of `split`, in the series' units."""
    t = splits.origins(split)
    return splits.series.values[t[:, None] + 1 + np.arange(splits.horizon)]


def score(splits: SeriesSplits, split: str, pred: np.ndarray) -> dict[str, float]:
    """`metrics` of `pred` [windows, H] on `split`, MASE scaled on the train split."""
    scale = mase_scale(splits.series.values[: splits.n_train], splits.series.season)
    return metrics(targets(splits, split), pred, scale)


# ---------------------------------------------------------------- naive forecasts


def persistence(y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """[windows, H]: the last known value, repeated."""
    return np.repeat(y[origins][:, None], horizon, axis=1)


def seasonal_naive(y: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """[windows, H]: y^[t+k] = y[t + k - m ceil(k/m)], the value one season before
    (or whole seasons before, for k > m)."""
    k = np.arange(1, horizon + 1)
    back = season * np.ceil(k / season).astype(int)
    return y[origins[:, None] + k - back]


# ---------------------------------------------------------------- linear AR


def _design(y: np.ndarray, origins: np.ndarray, lags: int) -> np.ndarray:
    """[windows, lags + 1]: y[t-T+1 .. t] and a 1, for each origin t."""
    x = y[origins[:, None] - lags + 1 + np.arange(lags)]
    return np.concatenate([x, np.ones((len(origins), 1))], axis=1)


def linear_ar(splits: SeriesSplits, split: str) -> np.ndarray:
    """[windows, H]: least squares from the window (and an intercept) to the next H values,
    fitted on the train windows."""
    y, lags = splits.series.values, splits.seq_len
    coef, *_ = np.linalg.lstsq(_design(y, splits.origins("train"), lags),
                               targets(splits, "train"), rcond=None)
    return _design(y, splits.origins(split), lags) @ coef


# ---------------------------------------------------------------- statsmodels models


def arima_model(splits: SeriesSplits, endog: np.ndarray):
    """The unfitted SARIMAX of this series (orders from ARIMA_ORDERS) on `endog`."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    order, seasonal, trend = ARIMA_ORDERS.get(splits.series.name, CSV_ARIMA)
    m = splits.series.season
    seasonal_order = (*SEASONAL_ORDER, m) if seasonal and m > 1 else (0, 0, 0, 0)
    return SARIMAX(endog, order=order, seasonal_order=seasonal_order, trend=trend)


def ets_model(splits: SeriesSplits, endog: np.ndarray):
    """The unfitted additive-error exponential smoothing of this series on `endog`."""
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    trend, damped, seasonal = ETS_FORMS.get(splits.series.name, CSV_ETS)
    m = splits.series.season
    return ExponentialSmoothing(endog, trend=trend, damped_trend=damped and trend,
                                seasonal=m if seasonal and m > 1 else None)


def fit_on_train(splits: SeriesSplits, make_model):
    """The model fitted by maximum likelihood on the train values only."""
    with warnings.catch_warnings():  # convergence chatter; the fit is used as it ends
        warnings.simplefilter("ignore")
        return make_model(splits, splits.series.values[: splits.n_train]).fit(disp=False)


def state_space_forecasts(result, y: np.ndarray, origins: np.ndarray,
                          horizon: int) -> np.ndarray:
    """[windows, H]: the fitted `result`'s parameters run over y[: t + 1], then H steps ahead.

    H = 1 runs the filter once over the whole series and reads its one-step
    predictions (each conditions on the values before it only); H > 1 runs it
    once per origin.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if horizon == 1:
            full = result.apply(y[: origins[-1] + 2])
            pred = np.asarray(full.get_prediction(start=origins[0] + 1,
                                                  end=origins[-1] + 1).predicted_mean)
            return pred[:, None]
        return np.stack([np.asarray(result.apply(y[: t + 1]).forecast(horizon))
                         for t in origins])


def all_forecasts(splits: SeriesSplits, split: str = "test") -> dict[str, np.ndarray]:
    """{baseline name: [windows, H] forecasts of `split`}; seasonal naive only with a season."""
    y, t, h = splits.series.values, splits.origins(split), splits.horizon
    out = {"persistence": persistence(y, t, h)}
    if splits.series.season > 1:
        out["seasonal_naive"] = seasonal_naive(y, t, h, splits.series.season)
    out["linear_ar"] = linear_ar(splits, split)
    for name, make_model in (("arima", arima_model), ("ets", ets_model)):
        out[name] = state_space_forecasts(fit_on_train(splits, make_model), y, t, h)
    return out
