"""Real-series forecasting: splits, scaling, CSV input, bad data, baselines, predict.

Numbers are checked against hand computation (windows, naive forecasts,
metrics), statsmodels run directly (AutoReg, SARIMAX, ExponentialSmoothing,
the packaged data files) and scikit-learn's metrics.
"""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("statsmodels")

from conftest import ROOT, subprocess_env  # noqa: E402

from gru_jax.harness.errors import ConfigError  # noqa: E402
from gru_jax.harness.tasks import get_task  # noqa: E402
from gru_jax.proj.series import baselines  # noqa: E402
from gru_jax.proj.series.sources import Series, packaged  # noqa: E402
from gru_jax.proj.series.tasks import prepare, split_series  # noqa: E402

EXPERIMENT = ROOT / "experiments" / "series.py"


def _series(values, season=1, name="toy") -> Series:
    return Series(name, np.asarray(values, np.float64), None, season)


def _write_csv(path, rows, header="date,value"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return str(path)


def _monthly_rows(values, start_year=2000):
    return [f"{start_year + i // 12}-{i % 12 + 1:02d}-01,{v}" for i, v in enumerate(values)]


# ---------------------------------------------------------------- splits and scaling


def test_scaling_never_sees_validation_or_test_values():
    """The scaler is the train part's mean and std; changing every later value
    changes neither it nor any training window (nor, for test changes, a validation one)."""
    rng = np.random.default_rng(0)
    y = rng.normal(5.0, 2.0, 120).cumsum()
    s = split_series(_series(y), 6, 2, 0.2, 0.2)
    assert (s.n_train, s.n_val, s.n_test) == (72, 24, 24)
    np.testing.assert_allclose([s.mean, s.std], [y[:72].mean(), y[:72].std()], rtol=1e-12)

    later_test = y.copy()
    later_test[96:] = later_test[96:] * 100 + 1e4
    t = split_series(_series(later_test), 6, 2, 0.2, 0.2)
    later_both = y.copy()
    later_both[72:] = -later_both[72:] * 7
    u = split_series(_series(later_both), 6, 2, 0.2, 0.2)
    for other in (t, u):
        assert (other.mean, other.std) == (s.mean, s.std)
        for a, b in zip(s.windows("train"), other.windows("train"), strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(s.windows("val"), t.windows("val"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(s.windows("test")[1], t.windows("test")[1])


def test_windows_and_targets_by_hand():
    y = np.arange(50.0) ** 1.5
    s = split_series(_series(y), 4, 3, 0.2, 0.2)  # train 30, val 10, test 10
    z = (y - y[:30].mean()) / y[:30].std()
    for split, lo, hi in (("train", 0, 30), ("val", 30, 40), ("test", 40, 50)):
        t = s.origins(split)
        x, target = s.windows(split)
        assert len(t) == (hi - lo - 3 + 1 if split != "train" else 30 - 4 - 3 + 1)
        for i, o in enumerate(t):
            np.testing.assert_allclose(x[i, :, 0], z[o - 3: o + 1], rtol=1e-6)
            np.testing.assert_allclose(target[i], z[o + 1: o + 4], rtol=1e-6)
            assert lo <= o + 1 and o + 3 < hi  # every target inside the split
        assert t[0] == max(lo, 4) - 1
    np.testing.assert_allclose(baselines.targets(s, "test"), [y[o + 1: o + 4] for o in
                                                               s.origins("test")])


def test_difference_mode_round_trips_to_levels():
    """Perfect predicted differences give back the true levels; scaler on train diffs."""
    y = np.cumsum(np.random.default_rng(1).normal(1.0, 0.5, 80)) + 100
    s = split_series(_series(y), 5, 3, 0.15, 0.15, difference=True)
    d = np.diff(y[: s.n_train])
    np.testing.assert_allclose([s.mean, s.std], [d.mean(), d.std()], rtol=1e-12)
    t = s.origins("test")
    _, target = s.windows("test")
    np.testing.assert_allclose(s.levels(y, t, target), baselines.targets(s, "test"), rtol=1e-5)
    assert s.origins("train")[0] == 5  # the first difference needs y[0]: window starts at 1


def test_task_batches_and_persistence_baseline():
    task = get_task({"name": "series", "dataset": "nile", "seq_len": 5})
    s = prepare(dataset="nile", seq_len=5)
    batch = task.sample(jax.random.key(0), 7)
    assert batch["x"].shape == (7, 5, 1) and batch["y"].shape == (7, 1)
    ev = task.eval_batch(jax.random.key(1))
    y = s.series.values
    t = s.origins("val")
    np.testing.assert_allclose(ev["y"][:, 0], (y[t + 1] - y[:70].mean()) / y[:70].std(),
                               rtol=1e-5)
    hand = np.mean(((y[t] - y[t + 1]) / y[:70].std()) ** 2)
    assert task.baseline == pytest.approx(hand, rel=1e-5)
    assert task.output_size == 1 and task.seq_len == 5


def test_packaged_series_match_the_statsmodels_files():
    import statsmodels.api as sm

    nile = packaged("nile")
    np.testing.assert_array_equal(nile.values, sm.datasets.nile.load_pandas().data["volume"])
    elnino = sm.datasets.elnino.load_pandas().data
    np.testing.assert_array_equal(packaged("elnino").values[12:24], elnino.iloc[1, 1:])
    weekly = sm.datasets.co2.load_pandas().data["co2"]
    co2 = packaged("co2")
    march_1958 = weekly["1958-03"].dropna().mean()
    assert co2.values[0] == pytest.approx(march_1958)
    assert len(co2.values) == 526 and np.isfinite(co2.values).all()
    assert co2.time_labels()[-1] == "2001-12-01" and co2.future_labels(2) == ["2002-01-01",
                                                                               "2002-02-01"]
    assert packaged("sunspots").season == 11 and len(packaged("sunspots").values) == 309


# ---------------------------------------------------------------- CSV and bad data


def test_csv_series_with_a_time_column(tmp_path):
    values = 10 + np.sin(np.arange(60) * 2 * np.pi / 12) + 0.01 * np.arange(60)
    path = _write_csv(tmp_path / "sales.csv", _monthly_rows(np.round(values, 6)))
    task = get_task({"name": "series", "csv": path, "column": "value", "time_column": "date",
                     "season": 12, "seq_len": 6, "horizon": 2})
    assert task.output_size == 2
    s = prepare(csv=path, column="value", time_column="date", season=12, seq_len=6, horizon=2)
    np.testing.assert_allclose(s.series.values, np.round(values, 6))
    assert s.series.season == 12 and s.series.name == "sales:value"
    assert s.series.time_labels()[0] == "2000-01-01"
    assert s.series.future_labels(3) == ["2005-01-01", "2005-02-01", "2005-03-01"]
    # One column besides the time: task.column may be left out; no time column at all works.
    assert prepare(csv=path, time_column="date", seq_len=6).series.values[3] == \
        pytest.approx(values[3], abs=1e-6)
    plain = _write_csv(tmp_path / "plain.csv", [str(v) for v in range(40)], header="x")
    assert prepare(csv=plain, seq_len=3).series.values[-1] == 39


BAD = {
    "missing_file": (None, "task.csv: no such file"),
    "missing_column": (["2000-01-01,1"] * 3, "task.column: no column 'sales'"),
    "non_numeric": (_monthly_rows([1, 2, "abc", 4] * 10), "non-numeric value 'abc' at line 4"),
    "empty_cell": (_monthly_rows([1, 2, 3, "", 5] * 8), "a missing value at line 5"),
    "nan": (_monthly_rows([1, 2, "nan", 5] * 10), "at line 4"),
    "time_gap": (_monthly_rows(range(40))[:20] + _monthly_rows(range(40))[21:],
                 "gap or an uneven step at line 22"),
    "unsorted_time": (list(reversed(_monthly_rows(range(40)))), "not strictly increasing"),
    "bad_date": (["yesterday,1"] + _monthly_rows(range(40))[1:], "not a date or a number"),
    "too_short": (_monthly_rows(range(12)), "series too short"),
    "constant": (_monthly_rows([3.0] * 60), "constant"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_csv_is_one_config_error_naming_the_problem(tmp_path, case):
    rows, expected = BAD[case]
    path = str(tmp_path / "nope.csv") if rows is None else _write_csv(tmp_path / "d.csv", rows)
    column = "sales" if case == "missing_column" else "value"
    with pytest.raises(ConfigError) as e:
        get_task({"name": "series", "csv": path, "column": column, "time_column": "date"})
    msg = str(e.value)
    assert expected in msg and "\n" not in msg and msg.startswith("task.")


@pytest.mark.parametrize("fields, key", [
    ({"dataset": "mars"}, "task.dataset"),
    ({"seq_len": 0}, "task.seq_len"),
    ({"horizon": 20, "dataset": "nile"}, "task.seq_len: series too short"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "task.test_fraction"),
    ({"val_fraction": 1}, "task.val_fraction"),
    ({"column": "x"}, "task.column: only with task.csv"),
    ({"difference": "yes"}, "task.difference"),
])
def test_bad_series_fields(fields, key):
    with pytest.raises(ConfigError, match=key):
        get_task({"name": "series", **fields})


def test_train_script_refuses_bad_data_with_one_line_and_writes_nothing(tmp_path):
    path = _write_csv(tmp_path / "gappy.csv", _monthly_rows([1.0, 2.0, "", 4.0] * 10))
    workdir = tmp_path / "run"
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"),
                        f"--config={EXPERIMENT}", f"--workdir={workdir}",
                        f"--config.task.csv={path}", "--config.task.column=value"],
                       capture_output=True, text=True, env=subprocess_env(), cwd=ROOT,
                       timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "a missing value at line 4" in lines[0], p.stderr
    assert not workdir.exists()


# ---------------------------------------------------------------- metrics and baselines


def test_metrics_against_sklearn_and_hand_mase():
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    rng = np.random.default_rng(2)
    y, p, train = rng.normal(size=(9, 3)), rng.normal(size=(9, 3)), rng.normal(size=30)
    scale = np.mean([abs(train[i] - train[i - 4]) for i in range(4, 30)])
    m = baselines.metrics(y, p, baselines.mase_scale(train, 4))
    assert m["mae"] == pytest.approx(mean_absolute_error(y.ravel(), p.ravel()))
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y.ravel(), p.ravel())))
    assert m["mase"] == pytest.approx(m["mae"] / scale)


def test_naive_forecasts_by_hand():
    y = np.random.default_rng(3).normal(size=60)
    origins = np.array([30, 41, 57])
    p = baselines.persistence(y, origins, 2)
    sn = baselines.seasonal_naive(y, origins, 2 * 5 + 1, 5)
    for i, t in enumerate(origins):
        assert list(p[i]) == [y[t], y[t]]
        for k in range(1, 12):
            # the latest value of the same phase at or before t: y[t+k-5], y[t+k-10], ...
            j = t + k
            while j > t:
                j -= 5
            assert sn[i, k - 1] == y[j]


def test_linear_ar_is_statsmodels_autoreg():
    from statsmodels.tsa.ar_model import AutoReg

    s = prepare(dataset="sunspots", seq_len=4)
    y = s.series.values
    fit = AutoReg(y[: s.n_train], lags=4, trend="c").fit()
    t = s.origins("test")
    direct = AutoReg(y, lags=4, trend="c").predict(fit.params, start=t[0] + 1, end=t[-1] + 1)
    np.testing.assert_allclose(baselines.linear_ar(s, "test")[:, 0], direct, rtol=1e-9)


def test_arima_and_ets_against_statsmodels_run_directly():
    """Fitted on train only; at origin t the forecast of statsmodels' own model on y[:t+1]
    with those parameters (`append`, another code path than our `apply`)."""
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    s = prepare(dataset="nile", seq_len=5)
    y, n = s.series.values, s.n_train
    got = baselines.all_forecasts(s, "test")
    assert set(got) == {"persistence", "linear_ar", "arima", "ets"}  # nile has no season
    arima = SARIMAX(y[:n], order=(0, 1, 1)).fit(disp=False)
    ets = ExponentialSmoothing(y[:n]).fit(disp=False)
    t = s.origins("test")
    for name, fit in (("arima", arima), ("ets", ets)):
        want = [fit.append(y[n: o + 1]).forecast(1)[0] for o in t]
        np.testing.assert_allclose(got[name][:, 0], want, rtol=1e-4)
    s2 = prepare(dataset="nile", seq_len=5, horizon=3)
    t2 = s2.origins("test")
    two = baselines.state_space_forecasts(arima, y, t2[[0, -1]], 3)
    for row, o in zip(two, t2[[0, -1]], strict=True):
        np.testing.assert_allclose(row, arima.append(y[n: o + 1]).forecast(3), rtol=1e-4)


# ---------------------------------------------------------------- a trained run and predict


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny GRU trained on a CSV written here: (workdir, csv path, values)."""
    from gru_jax.harness import sweep
    from gru_jax.harness.config import apply_overrides
    from gru_jax.harness.train import train_and_evaluate

    root = tmp_path_factory.mktemp("series_run")
    values = np.round(20 + 3 * np.sin(np.arange(72) * 2 * np.pi / 12) + 0.05 * np.arange(72), 4)
    path = _write_csv(root / "toy.csv", _monthly_rows(values))
    config = apply_overrides(sweep.load_experiment(EXPERIMENT).get_config(), {
        "task.csv": path, "task.column": "value", "task.time_column": "date",
        "task.season": 12, "task.difference": False, "task.seq_len": 6, "task.horizon": 2,
        "model.hidden_size": 4, "train.steps": 6, "train.eval_every": 3,
        "train.checkpoint_every": 6, "train.warmup_steps": 1})
    workdir = root / "run"
    train_and_evaluate(config, str(workdir))
    return workdir, path, values


def test_predict_script_forecasts_the_test_split_and_the_future(tiny_run, tmp_path):
    from gru_jax.harness.models import apply_model
    from gru_jax.proj.series import forecasting

    workdir, path, values = tiny_run
    out = tmp_path / "pred"
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"),
                        f"--workdir={workdir}", f"--out={out}"], capture_output=True, text=True,
                       env=subprocess_env(), cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert (out / "forecast.png").stat().st_size > 1000
    lines = (out / "forecast.csv").read_text().splitlines()
    assert lines[0] == "origin,step,target_time,truth,forecast"
    rows = [ln.split(",") for ln in lines[1:]]
    assert rows[-1][:4] == ["71", "2", "2006-02-01", ""]  # the future: no truth yet
    # The future forecast by hand: train-only scaling of the last window, the model, unscaling.
    run = forecasting.load_run(str(workdir))
    train = values[: run.splits.n_train]
    x = ((values[-6:] - train.mean()) / train.std()).astype(np.float32)[None, :, None]
    z = np.asarray(apply_model(run.params, jnp.asarray(x), run.config.model, "last"))[0]
    np.testing.assert_allclose([float(r[4]) for r in rows[-2:]], z * train.std() + train.mean(),
                               rtol=1e-5)
    # The test rows: one per (origin, step) of the test split, truth from the file.
    test = rows[:-2]
    assert len(test) == 2 * len(run.splits.origins("test"))
    assert all(float(r[3]) == values[int(r[0]) + int(r[1])] for r in test)


def test_predict_on_another_csv_and_bad_workdir(tiny_run, tmp_path):
    workdir, _, values = tiny_run
    other = _write_csv(tmp_path / "other.csv", _monthly_rows(values[:20] + 1, 2010))
    out = tmp_path / "o"
    cmd = [sys.executable, str(ROOT / "scripts" / "predict.py"), f"--workdir={workdir}",
           f"--csv={other}", f"--out={out}"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), cwd=ROOT,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    rows = (out / "forecast.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 * (20 - 6 - 2 + 1) + 2 and rows[-1].startswith("19,2,2011-10-01,,")
    bad = subprocess.run(cmd[:2] + [f"--workdir={tmp_path / 'none'}", f"--out={tmp_path / 'x'}"],
                         capture_output=True, text=True, env=subprocess_env(), cwd=ROOT,
                         timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_series_report_tables_plots_and_readme(tiny_run, tmp_path):
    from gru_jax.proj.series import report as series_report

    workdir, _, _ = tiny_run
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "a").symlink_to(workdir)
    out = tmp_path / "results"
    data = series_report.write_results(runs, out, command="test")
    d = data["datasets"]["toy:value, horizon 2"]
    names = [r["model"] for r in d["rows"]]
    assert names[0] == "GRU(4)" and {"persistence", "seasonal naive", "linear AR", "ARIMA",
                                     "ETS"} <= set(names)
    gru = d["rows"][0]
    assert gru["params"] == 3 * (4 * 1 + 4 * 4 + 2 * 4) + 4 * 2 + 2  # reset_after GRU + Dense(2)
    for f in ("series.json", "series.csv", "series.md", "series_toy_value_horizon_2.png",
              "manifest.json", "runs/a/summary.json"):
        assert (out / f).is_file(), f
    assert json.loads((out / "manifest.json").read_text())["runs"] == 1
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{series_report.BEGIN}\nold\n{series_report.END}\nrest\n")
    assert series_report.update_readme(readme, out)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "| GRU(4) |" in text
    assert not series_report.update_readme(readme, out)  # rendering again changes nothing


def test_readme_series_section_is_rendered_from_the_committed_results():
    """Re-render the README's forecasting section from results/series: it must not differ."""
    from gru_jax.proj.series import report as series_report

    readme = (ROOT / "README.md").read_text()
    section = series_report.render_section(ROOT / "results" / "series")
    assert section in readme, ("README.md's series section is stale: run python scripts/report.py"
                               " --series_readme=README.md --series_results=results/series")
    data = json.loads((ROOT / "results" / "series" / "series.json").read_text())
    for name, d in data["datasets"].items():
        assert (ROOT / "results" / "series" / series_report._figure_name(name)).is_file()
        models = {r["model"] for r in d["rows"]}
        assert {"GRU(50)", "LSTM(50)", "tanh RNN(50)", "persistence", "ARIMA", "ETS"} <= models
