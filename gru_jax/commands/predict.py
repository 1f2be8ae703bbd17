"""Forecast with a trained `series` run: the test split and the values after the series.

    python scripts/predict.py --workdir=RUN [--csv=PATH [--column=NAME] [--time_column=NAME]]
        [--out=DIR]

Loads RUN's config.json and latest checkpoint, rebuilds its train-only scaler,
and forecasts the run's horizon from every window of the test split (or, with
--csv, from every window of that file's column, scaled like the run's training
data) and the horizon after the last value. Writes DIR/forecast.csv (origin,
step, target_time, truth, forecast; truth empty after the end) and
DIR/forecast.png (history, forecasts, truth); DIR defaults to RUN/predict.

Exit codes: 0 written, 2 bad flags, run or data (one line on stderr, nothing written).
"""

from __future__ import annotations

import os
import sys

from absl import flags

from gru_jax.harness import cli
from gru_jax.harness.errors import ConfigError, WorkdirError

PROG = "predict.py"
_WORKDIR = flags.DEFINE_string("workdir", None, "A trained series run's folder.")
_CSV = flags.DEFINE_string("csv", None, "Forecast this CSV file instead of the run's series.")
_COLUMN = flags.DEFINE_string("column", "", "--csv's value column (default: the run's).")
_TIME = flags.DEFINE_string("time_column", "", "--csv's time column (default: the run's).")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: WORKDIR/predict).")


def main(argv: list[str]) -> None:
    cli.setup(argv, PROG)
    from gru_jax.proj.series import baselines, forecasting
    from gru_jax.proj.series import report as series_report

    try:
        if not _WORKDIR.value:
            raise WorkdirError("--workdir: required")
        run = forecasting.load_run(_WORKDIR.value)
        series = forecasting.series_for(run, _CSV.value, _COLUMN.value, _TIME.value)
        table = forecasting.forecast_table(run, series, "all" if _CSV.value else "test")
    except (ConfigError, WorkdirError, OSError) as e:
        cli.die(e, PROG)
    out = _OUT.value or os.path.join(_WORKDIR.value, "predict")
    title = f"{series.name}: {run.config.model.cell}({run.config.model.hidden_size}), " \
            f"window {run.splits.seq_len}, horizon {run.splits.horizon}"
    csv_path, png_path = series_report.write_forecast(table, series, out, title)
    if not _CSV.value:
        pred = forecasting.test_forecasts(run)
        m = baselines.score(run.splits, "test", pred)
        print(f"test split: MAE {m['mae']:.4g}, RMSE {m['rmse']:.4g}, MASE {m['mase']:.3g}")
    future = table["origin"] == table["origin"].max()
    print("next values: " + ", ".join(
        f"{t} {v:.4g}" for t, v in zip(table["target_time"][future], table["forecast"][future],
                                       strict=True)))
    print(f"wrote {csv_path} and {png_path}")


def run() -> None:
    """The command line (``python scripts/predict.py`` and ``gru-jax predict``)."""
    cli.run_command(main, sys.modules[__name__], cli.flags_parser(PROG))
