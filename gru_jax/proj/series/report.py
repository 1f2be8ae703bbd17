"""The forecasting study's results: every model and baseline per series, on the test split.

`write_results(runs_dir, out_dir)` reads the `series` runs of a sweep folder,
scores each run's test forecasts (`gru_jax.proj.series.forecasting`) and the classical
baselines (`gru_jax.proj.series.baselines`) on the same splits, and writes into out_dir::

    series.json        per series: one row per model (mean and std over seeds) and
                       baseline; what the README section is rendered from
    series.csv         one row per run and per baseline
    series.md          the tables
    series_<name>.png  the test split: truth and forecasts
    runs/<run>/               each run's summary (no checkpoints, no events)
    manifest.json      commit, command, machine, wall times

`render_section(out_dir)` is the README's forecasting section, from series.json
alone (no JAX, no statsmodels), and `update_readme(readme, out_dir)` puts it
between the README's ``<!-- series:begin -->`` and ``<!-- series:end -->``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from gru_jax.harness.errors import WorkdirError
from gru_jax.harness.files import SUMMARY_FILE, write_json_atomic
from gru_jax.harness.report.figures import Axes, Line, line_panels
from gru_jax.harness.report.rows import load_runs
from gru_jax.harness.report.tables import markdown_table, replace_section
from gru_jax.harness.summary import RunSummary, SummaryError, write_summary

BEGIN, END = "<!-- series:begin -->", "<!-- series:end -->"
CELL_LABELS = {"gru": "GRU", "lstm": "LSTM", "rnn": "tanh RNN", "mingru": "minGRU"}
BASELINE_LABELS = {"persistence": "persistence", "seasonal_naive": "seasonal naive",
                   "linear_ar": "linear AR", "arima": "ARIMA", "ets": "ETS"}
NAIVE = ("persistence", "seasonal_naive")
METRICS = ("mae", "rmse", "mase")


# ---------------------------------------------------------------- runs


def _series_runs(runs_dir: Path) -> list[tuple[str, RunSummary]]:
    """(folder name, summary) of every finished `series` run under runs_dir."""
    out = []
    for name, s in load_runs(runs_dir):
        if isinstance(s, SummaryError):
            raise s
        if s.status == "done" and s.config["task"]["name"] == "series":
            out.append((name, s))
    if not out:
        raise WorkdirError(f"{runs_dir}: no finished series runs (*/{SUMMARY_FILE})")
    return out


def _group_key(config: dict) -> tuple:
    """What a model is, apart from its seed: (cell, hidden, window, lr, differenced)."""
    return (config["model"]["cell"], config["model"]["hidden_size"], config["task"]["seq_len"],
            config["train"]["learning_rate"], config["task"]["difference"])


def _label(key: tuple, usual: tuple, differenced_usual: bool) -> str:
    """GRU(50); ", tuned: ..." when window or learning rate differ from the usual runs';
    ", levels" / ", differences" when the transform differs."""
    cell, hidden, window, lr, diff = key
    label = f"{CELL_LABELS.get(cell, cell)}({hidden})"
    if (window, lr) != usual:
        label += f", WOA-tuned (window {window}, lr {lr:.3g})"
    if diff != differenced_usual:
        label += ", differences" if diff else ", levels"
    return label


def _mean_std(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0}


def _dataset_of(config: dict) -> str:
    """The table a run belongs in: its series, and its horizon when that is over 1."""
    task = config["task"]
    name = f"{Path(task['csv']).stem}:{task['column']}" if task["csv"] else task["dataset"]
    return name if task["horizon"] == 1 else f"{name}, horizon {task['horizon']}"


def _figure_name(dataset: str) -> str:
    return "series_" + re.sub(r"[^A-Za-z0-9]+", "_", dataset).strip("_") + ".png"


def score_runs(runs: list[tuple[str, dict]], runs_dir: Path) -> dict[str, list[dict]]:
    """{dataset: [one dict per run: name, key, seed, params, val_mse, test metrics,
    test forecasts]}; each run's checkpoint is loaded and forecasts the test split."""
    from gru_jax.proj.series import baselines, forecasting

    out: dict[str, list[dict]] = defaultdict(list)
    for name, summary in runs:
        run = forecasting.load_run(str(runs_dir / name))
        pred = forecasting.test_forecasts(run)
        out[_dataset_of(summary.config)].append({
            "name": name, "key": _group_key(summary.config), "seed": summary.config["seed"],
            "num_params": summary.num_params, "val_mse": summary.final_value,
            "wall_time_sec": summary.wall_time_sec, "splits": run.splits,
            "forecast": pred, **baselines.score(run.splits, "test", pred)})
    return out


def _usual(runs: list[dict]) -> tuple:
    """(window, lr, differenced) of the untuned models: the (window, lr) most runs share,
    and the transform most of those use. Baselines and the series' header use this window."""
    counts: dict[tuple, int] = defaultdict(int)
    for r in runs:
        counts[r["key"][2:4]] += 1
    window_lr = max(counts, key=counts.get)
    diffs = [r["key"][4] for r in runs if r["key"][2:4] == window_lr]
    return (*window_lr, max(set(diffs), key=diffs.count))


def _model_rows(runs: list[dict], usual: tuple) -> list[dict]:
    """One row per model (runs grouped by everything but the seed): mean and std of metrics."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        groups[r["key"]].append(r)
    rows = []
    for k, g in groups.items():
        rows.append({"model": _label(k, usual[:2], usual[2]), "kind": "recurrent",
                     "cell": k[0], "params": g[0]["num_params"], "seeds": len(g),
                     **{m: _mean_std([r[m] for r in g]) for m in (*METRICS, "val_mse")},
                     "forecast": np.mean([r["forecast"] for r in g], axis=0)})
    return rows


def _baseline_rows(splits) -> list[dict]:
    from gru_jax.proj.series import baselines

    rows = []
    for name, pred in baselines.all_forecasts(splits, "test").items():
        rows.append({"model": BASELINE_LABELS[name], "kind": "naive" if name in NAIVE
                     else "classical", "cell": name, "params": None, "seeds": 1,
                     **{m: {"mean": v, "std": 0.0}
                        for m, v in baselines.score(splits, "test", pred).items()},
                     "forecast": pred})
    return rows


def verdict(rows: list[dict]) -> list[str]:
    """Plain sentences: does the GRU(50) beat the naive forecasts, does a classical
    baseline beat every recurrent cell (by mean test RMSE)?"""
    rec = [r for r in rows if r["kind"] == "recurrent"]
    other = [r for r in rows if r["kind"] != "recurrent"]
    best_rec = min(rec, key=lambda r: r["rmse"]["mean"])
    lines = []
    gru = [r for r in rec if r["model"] == "GRU(50)"]
    naive = [r for r in other if r["kind"] == "naive"]
    if gru and naive:
        beats = all(gru[0]["rmse"]["mean"] < r["rmse"]["mean"] for r in naive)
        names = " and ".join(r["model"] for r in naive)
        theirs = ", ".join(f"{r['rmse']['mean']:.4g}" for r in naive)
        lines.append(f"GRU(50) {'beats' if beats else 'does not beat'} {names} "
                     f"(RMSE {gru[0]['rmse']['mean']:.4g} vs {theirs}).")
    winners = [r for r in other if r["rmse"]["mean"] < best_rec["rmse"]["mean"]]
    for r in sorted(winners, key=lambda r: r["rmse"]["mean"]):
        lines.append(f"**{r['model']} beats every recurrent cell** (RMSE "
                     f"{r['rmse']['mean']:.4g} vs the best recurrent, {best_rec['model']}, "
                     f"{best_rec['rmse']['mean']:.4g}).")
    if not winners:
        lines.append(f"The best recurrent model, {best_rec['model']}, beats every baseline.")
    return lines


# ---------------------------------------------------------------- files


def _plot(dataset: str, splits, rows: list[dict], path: Path) -> None:
    """Truth over the end of the series and each model's mean test forecast of the last
    step ahead (H = horizon: the forecast made H steps before each point)."""
    origins, h = splits.origins("test"), splits.horizon
    x = origins + h
    start = max(0, origins[0] + 1 - 2 * len(origins))
    y = splits.series.values
    best = min((r for r in rows if r["kind"] != "recurrent"), key=lambda r: r["rmse"]["mean"])
    shown = [r for r in rows if r["kind"] == "recurrent"] + [best]
    lines = [Line(np.arange(start, len(y)), y[start:], "black", lw=1.4, label="truth")]
    lines += [Line(x, r["forecast"][:, -1], f"C{k}", style="--" if r is best else "-", lw=1,
                   label=f"{r['model']} (RMSE {r['rmse']['mean']:.3g})", order=k + 1)
              for k, r in enumerate(shown)]
    ahead = "one-step" if h == 1 else f"{h}-steps-ahead"
    line_panels({"": lines},
                Axes(xlabel=f"time step (test from {x[0]}); {splits.series.unit}",
                     vlines=[x[0] - 0.5]),
                title=f"{dataset}: test split, {ahead} forecasts (models: mean over seeds)",
                path=path, panel_size=(8, 3.6))


def _fmt(stat: dict, digits: int = 4) -> str:
    if stat["std"] == 0.0:
        return f"{stat['mean']:.{digits}g}"
    return f"{stat['mean']:.{digits}g} ± {stat['std']:.2g}"


def table(rows: list[dict]) -> str:
    """Markdown: model, parameters, seeds, test MAE / RMSE / MASE (mean ± std), by RMSE."""
    return markdown_table(
        ["model", "params", "seeds", "test MAE", "test RMSE", "test MASE"],
        [[r["model"], "" if r["params"] is None else r["params"], r["seeds"], _fmt(r["mae"]),
          _fmt(r["rmse"]), _fmt(r["mase"], 3)]
         for r in sorted(rows, key=lambda r: r["rmse"]["mean"])], align="lrrrrr")


def _describe(splits) -> dict:
    s = splits.series
    return {"n": len(s.values), "train": splits.n_train, "val": splits.n_val,
            "test": splits.n_test, "season": s.season, "unit": s.unit,
            "difference": splits.difference, "window": splits.seq_len,
            "horizon": splits.horizon}


def _machine(summary: RunSummary) -> str:
    """Where a run trained, from its summary's machine record (this machine if absent)."""
    m = summary.machine or {"cpu": platform.processor() or platform.machine(),
                                   "cpu_count": os.cpu_count(), "backend": "cpu"}
    return f"{m['cpu']}, {m['cpu_count']} cores, JAX backend {m['backend']} (shared machine)"


def write_results(runs_dir: str | os.PathLike, out_dir: str | os.PathLike,
                  command: str = "") -> dict:
    """Score every series run and baseline; write out_dir's files (module docstring)."""
    t0 = time.perf_counter()
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    runs = _series_runs(runs_dir)
    scored = score_runs(runs, runs_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"datasets": {}}
    csv_rows = []
    for dataset, dr in sorted(scored.items()):
        usual = _usual(dr)
        splits = next(r["splits"] for r in dr if r["key"][2:] == usual)
        rows = _model_rows(dr, usual) + _baseline_rows(splits)
        _plot(dataset, splits, rows, out_dir / _figure_name(dataset))
        data["datasets"][dataset] = {
            **_describe(splits), "verdict": verdict(rows),
            "rows": [{k: v for k, v in r.items() if k != "forecast"} for r in rows]}
        csv_rows += [{"dataset": dataset, "run": r["name"], "seed": r["seed"],
                      **{m: r[m] for m in (*METRICS, "val_mse")}} for r in dr]
        csv_rows += [{"dataset": dataset, "run": r["model"], "seed": "",
                      **{m: r[m]["mean"] for m in METRICS}, "val_mse": ""}
                     for r in rows if r["kind"] != "recurrent"]
    for name, summary in runs:
        dest = out_dir / "runs" / name
        dest.mkdir(parents=True, exist_ok=True)
        write_summary(dest, summary)
    with open(out_dir / "series.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
        w.writeheader()
        w.writerows(csv_rows)
    write_json_atomic(str(out_dir / "series.json"), data)
    (out_dir / "series.md").write_text(markdown(data))
    trained_at = sorted({s.machine.get("commit") or "unknown" for _, s in runs})
    write_json_atomic(str(out_dir / "manifest.json"), {
        # The commit the runs trained at (their summaries say): a commit of main, where
        # the HEAD of the branch that ran the report may be rebased away later.
        "commit": trained_at[0] if len(trained_at) == 1 else trained_at, "command": command,
        "machine": _machine(runs[0][1]), "runs": len(runs),
        # A packed group's members each record the group's wall time: count it once.
        "train_wall_time_sec": round(sum(
            s.wall_time_sec / s.pack_size for _, s in runs), 1),
        "report_wall_time_sec": round(time.perf_counter() - t0, 1),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    return data


# ---------------------------------------------------------------- markdown


def markdown(data: dict, image_dir: str = "") -> str:
    """Per series: what it is, its table and verdict, its figure."""
    parts = []
    for dataset, d in data["datasets"].items():
        how = "first differences" if d["difference"] else "levels"
        season = f"season {d['season']}" if d["season"] > 1 else "no season"
        parts += [f"#### {dataset}", "",
                  f"{d['n']} values ({d['unit']}; {season}); train / validation / test "
                  f"{d['train']} / {d['val']} / {d['test']}; window {d['window']}, horizon "
                  f"{d['horizon']}; recurrent models on {how}.", "",
                  table(d["rows"]), "", *(f"- {v}" for v in d["verdict"]), "",
                  f"![{dataset}]({image_dir}{_figure_name(dataset)})", ""]
    return "\n".join(parts)


def render_section(out_dir: str | os.PathLike, image_dir: str = "results/series/") -> str:
    """The README's forecasting section (between the markers), from out_dir/series.json."""
    out_dir = Path(out_dir)
    data = json.loads((out_dir / "series.json").read_text())
    manifest = json.loads((out_dir / "manifest.json").read_text())
    body = markdown(data, image_dir).replace("#### ", "### ")
    m = manifest
    head = (f"Rendered from `{image_dir.rstrip('/')}` (trained at commit {str(m['commit'])[:10]}, "
            f"{m['machine']}; {m['runs']} runs, {m['train_wall_time_sec']} s of training) by "
            f"`{m['command']}`. Test split only; models: mean ± std over seeds; MASE < 1 beats "
            "the seasonal naive forecast's in-sample error.")
    return f"{head}\n\n{body.rstrip()}"


def update_readme(readme: str | os.PathLike, out_dir: str | os.PathLike) -> bool:
    """Replace the README's section between the markers; True if it changed."""
    readme = Path(readme)
    text = readme.read_text()
    new = replace_section(text, BEGIN, END, render_section(out_dir))
    if new != text:
        readme.write_text(new)
    return new != text


# ---------------------------------------------------------------- predict.py's files


def write_forecast(table: dict[str, np.ndarray], series, out_dir: str | os.PathLike,
                   title: str) -> tuple[Path, Path]:
    """forecast.csv (one row per origin and step) and forecast.png (history, the
    step-1 forecasts against the truth, and the H values after the end) in out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out_dir / "forecast.csv", out_dir / "forecast.png"
    keys = list(table)
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for row in zip(*(table[k] for k in keys), strict=True):
            w.writerow(["" if isinstance(v, float) and np.isnan(v) else v for v in row])
    n = len(series.values)
    target = table["origin"] + table["step"]
    future = target >= n
    known = (table["step"] == 1) & ~future
    start = max(0, int(table["origin"][0]) + 1 - 2 * int(known.sum()))
    line_panels({"": [
        Line(np.arange(start, n), series.values[start:], "black", lw=1.4,
             label="history and truth"),
        Line(target[known], table["forecast"][known], "C0", lw=1, order=1,
             label="forecast (1 step ahead)"),
        Line(target[future], table["forecast"][future], "C1", marker="o", lw=1, order=2,
             label=f"forecast after the end ({int(future.sum())} steps)"),
    ]}, Axes(xlabel=f"time step; last value {series.time_labels()[-1]}"), title=title,
        path=png_path, panel_size=(8, 3.6))
    return csv_path, png_path
