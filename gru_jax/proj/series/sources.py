"""Real time series for the `series` task: packaged with statsmodels, or a user's CSV.

Each source gives a `Series`: float64 values [n], their times [n] (numpy
datetime64 or float64; None when the data have no time), and the seasonal
period used by the seasonal naive forecast and by MASE (1: no seasonality).

Packaged series (inside the statsmodels wheel, no download; the `series`
extra: ``pip install -e .[series]``):

    name       n    step     season  what
    co2        526  month    12      Mauna Loa CO2 (ppm), 1958-03 .. 2001-12: trend + yearly cycle
    elnino     732  month    12      sea surface temperature (deg C), 1950-01 .. 2010-12
    sunspots   309  year     11      yearly sunspot number, 1700 .. 2008 (the ~11-year cycle)
    nile       100  year     1       Nile flow at Aswan (1e8 m^3), 1871 .. 1970: no season

CO2 comes as weekly readings with missing weeks; it is the monthly mean of the
weeks present. 5 of its 526 months have no reading at all: they are filled by
linear interpolation between the neighbouring months (the only filled values
anywhere; the other series have none missing).

A CSV (``task.csv`` and ``task.column``, optional ``task.time_column``) is read
as it is: missing or non-numeric values, and a time column that is not
strictly increasing with one regular step (a gap: a missing month, day, ...),
are refused with one line naming the file, column and line, never filled or
dropped silently (dropping a row would join two values that are not one step
apart). Every failure raises `ConfigError` naming the task key.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from gru_jax.harness.errors import ConfigError, need

PACKAGED = ("co2", "elnino", "sunspots", "nile")
SEASON = {"co2": 12, "elnino": 12, "sunspots": 11, "nile": 1}
UNITS = {"co2": "CO2 (ppm)", "elnino": "SST (deg C)", "sunspots": "sunspot number",
         "nile": "flow (1e8 m^3)"}


@dataclasses.dataclass(frozen=True)
class Series:
    """One univariate series: values [n] float64, times [n] or None, season (1: none)."""

    name: str
    values: np.ndarray
    times: np.ndarray | None
    season: int
    unit: str = ""

    def time_labels(self) -> list[str]:
        """[n] strings for CSV files: ISO dates (YYYY-MM-DD), numbers, or the index."""
        if self.times is None:
            return [str(i) for i in range(len(self.values))]
        if np.issubdtype(self.times.dtype, np.datetime64):
            return [str(t) for t in _dates_or_seconds(self.times)]
        return [f"{t:g}" for t in self.times]

    def future_labels(self, horizon: int) -> list[str]:
        """The `horizon` time labels after the last value, at the series' own step
        (calendar months when every time falls on the same day of a month)."""
        n, k = len(self.values), np.arange(1, horizon + 1)
        if self.times is None or len(self.times) < 2:
            return [str(i) for i in n - 1 + k]
        if np.issubdtype(self.times.dtype, np.datetime64):
            days = self.times.astype("datetime64[D]")
            months = days.astype("datetime64[M]")
            if (days == months.astype("datetime64[D]") + (days[0] - months[0])).all():
                step = int((months[-1] - months[-2]).astype(int))
                nxt = months[-1] + step * k
                return [str(t) for t in nxt.astype("datetime64[D]") + (days[0] - months[0])]
            times = _dates_or_seconds(self.times)
            return [str(t) for t in times[-1] + (times[-1] - times[-2]) * k]
        step = self.times[-1] - self.times[-2]
        return [f"{t:g}" for t in self.times[-1] + step * k]


def _dates_or_seconds(times: np.ndarray) -> np.ndarray:
    """datetime64 [n] at day resolution when every time is a midnight, else at seconds."""
    days = times.astype("datetime64[D]")
    return days if (days == times).all() else times.astype("datetime64[s]")


def _statsmodels_datasets():
    return need("statsmodels.datasets", "series", "task.dataset")  # or give task.csv


def _years(first: int, n: int) -> np.ndarray:
    return np.arange(first, first + n).astype(float)


@functools.cache
def packaged(name: str) -> Series:
    """The packaged series `name` (one of PACKAGED), read from statsmodels' files."""
    ds = _statsmodels_datasets()
    if name == "co2":
        weekly = ds.co2.load_pandas().data["co2"]
        monthly = weekly.resample("MS").mean()  # NaN weeks are skipped; empty months stay NaN
        monthly = monthly.interpolate(method="linear")
        values = monthly.to_numpy(np.float64)
        times = monthly.index.to_numpy().astype("datetime64[D]")
    elif name == "elnino":
        table = ds.elnino.load_pandas().data  # one row per year: YEAR, JAN .. DEC
        values = table.drop(columns="YEAR").to_numpy(np.float64).ravel()
        first = int(table["YEAR"].iloc[0])
        times = np.arange(np.datetime64(f"{first}-01"), np.datetime64(f"{first}-01")
                          + len(values)).astype("datetime64[D]")
    elif name == "sunspots":
        table = ds.sunspots.load_pandas().data
        values = table["SUNACTIVITY"].to_numpy(np.float64)
        times = table["YEAR"].to_numpy(np.float64)
    elif name == "nile":
        table = ds.nile.load_pandas().data
        values = table["volume"].to_numpy(np.float64)
        times = table["year"].to_numpy(np.float64)
    else:
        raise ConfigError(f"task.dataset: must be one of {list(PACKAGED)}, got {name!r}")
    values.setflags(write=False)  # cached: callers must not mutate it
    return Series(name, values, times, SEASON[name], UNITS[name])


# ---------------------------------------------------------------- CSV


def _line(row: int) -> int:
    """The file line of data row `row` (0-based; line 1 is the header)."""
    return row + 2


def _numbers(frame, column: str, path: str) -> np.ndarray:
    """The column as float64 [n]; ConfigError at the first missing or non-numeric cell."""
    import pandas as pd

    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        cell = raw.iloc[row]
        missing = pd.isna(cell) or str(cell).strip() == ""
        what = "a missing value" if missing else f"a non-numeric value {str(cell)!r}"
        n_bad = int(bad.sum())
        raise ConfigError(
            f"task.column: {column!r} in {path} has {what} at line {_line(row)} ({n_bad} bad "
            f"in all); gaps are refused, not filled: fill or interpolate them in the file")
    return values


def _times(frame, column: str, path: str) -> np.ndarray:
    """The time column as float64 or datetime64 [n], strictly increasing by one step."""
    import pandas as pd

    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw):
        times = _numbers(frame, column, path).astype(np.float64)
        steps = np.diff(times)
        key = "task.time_column"
    else:
        parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
        if parsed.isna().any():
            row = int(np.argmax(parsed.isna().to_numpy()))
            raise ConfigError(f"task.time_column: {column!r} in {path} has {raw.iloc[row]!r} "
                              f"at line {_line(row)}, not a date or a number")
        times = parsed.to_numpy().astype("datetime64[s]")
        key = "task.time_column"
        same_day = (parsed.dt.day == parsed.dt.day.iloc[0]).all() and (
            parsed.dt.normalize() == parsed).all()
        if same_day:  # monthly (or yearly) data: steps in calendar months, not days
            months = (parsed.dt.year * 12 + parsed.dt.month).to_numpy()
            steps = np.diff(months).astype(np.float64)
        else:
            steps = np.diff(times).astype(np.float64)  # seconds
    if len(steps) and (steps <= 0).any():
        row = int(np.argmax(steps <= 0)) + 1
        raise ConfigError(f"{key}: {column!r} in {path} is not strictly increasing at line "
                          f"{_line(row)} ({raw.iloc[row - 1]!r} then {raw.iloc[row]!r})")
    if len(steps):
        values, counts = np.unique(steps, return_counts=True)
        step = values[np.argmax(counts)]
        off = ~np.isclose(steps, step, rtol=1e-9, atol=0.0)
        if off.any():
            row = int(np.argmax(off)) + 1
            raise ConfigError(
                f"{key}: {column!r} in {path} has a gap or an uneven step at line {_line(row)} "
                f"({raw.iloc[row - 1]!r} then {raw.iloc[row]!r}); the series must have one "
                "regular step: fill the missing times in the file")
    return times


def read_csv(path: str, column: str = "", time_column: str = "", season: int = 1) -> Series:
    """A Series from `column` of the CSV file `path` (a header line, then one row per time).

    `column` may be empty when the file has one column besides `time_column`.
    Raises ConfigError (one line naming the key, file and line) for a missing
    file or column, a missing or non-numeric value, or an uneven time column.
    """
    pd = need("pandas", "series", "task.csv")

    if not os.path.isfile(path):
        raise ConfigError(f"task.csv: no such file {path!r}")
    try:
        frame = pd.read_csv(path, skipinitialspace=True, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ConfigError(f"task.csv: cannot read {path} as CSV "
                          f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if time_column and time_column not in frame.columns:
        raise ConfigError(f"task.time_column: no column {time_column!r} in {path}; it has "
                          f"{', '.join(frame.columns)}")
    if not column:
        others = [c for c in frame.columns if c != time_column]
        if len(others) != 1:
            raise ConfigError(f"task.column: required, {path} has the columns "
                              f"{', '.join(frame.columns)}")
        column = others[0]
    if column not in frame.columns:
        raise ConfigError(f"task.column: no column {column!r} in {path}; it has "
                          f"{', '.join(frame.columns)}")
    frame = frame.replace(r"^\s*$", np.nan, regex=True)
    if time_column:  # numeric times parse as numbers, anything else as dates
        as_num = pd.to_numeric(frame[time_column], errors="coerce")
        if as_num.notna().all():
            frame[time_column] = as_num
    values = _numbers(frame, column, path)
    times = _times(frame, time_column, path) if time_column else None
    name = f"{os.path.splitext(os.path.basename(path))[0]}:{column}"
    return Series(name, values, times, season, column)
