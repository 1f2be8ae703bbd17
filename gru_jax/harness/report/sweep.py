"""The sweep report: tables and figures from the run summaries of a sweep folder.

`write_report(DIR)` writes into DIR:

    results.csv                  one row per run (COLUMNS)
    results.md                   the cell comparison table, one row per run, the figures
    heatmap_<task>_<metric>.png  per cell: final metric over hidden size x sequence length
    heatmap_<task>_steps_to_solve.png
    curves_<task>.png            eval metric against step, one panel per cell
    gradients_<task>.png         ||dL/dh_t|| against lag T-1-t (the summaries' grad_norms)

Heatmap cells average over the runs at that (cell, hidden size, sequence
length): the seeds (and any other axis the sweep varies). Missing points are
blank; failed and diverged runs are left out of the means and counted in the
cell's annotation. Reads only the runs' summaries and the sweep's (or search's)
plan of runs: no JAX needed.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gru_jax.harness.errors import WorkdirError
from gru_jax.harness.files import SUMMARY_FILE, planned_runs
from gru_jax.harness.metrics import higher_is_better
from gru_jax.harness.report import figures
from gru_jax.harness.report.rows import (
    COLUMNS,
    axis,
    cell_key,
    collect,
    load_runs,
    rows_of,
)
from gru_jax.harness.report.tables import (
    fmt,
    markdown_table,
    median_range,
    mib,
    num,
    write_csv,
)
from gru_jax.harness.summary import RunSummary, SummaryError, TaskInfo

REFERENCE_CELL = "gru"  # the comparison table's ratios are against this cell


# ---------------------------------------------------------------- tables


def _matched_ratio(rows: Sequence[Mapping], cell: str, ref: str, field: str) -> float | None:
    """Geometric mean of cell/ref of `field` over runs at the same (task, hidden
    size, sequence length, seed, learning rate): the like-for-like comparison."""
    def key(r):
        return (r["task"], r["hidden_size"], r["seq_len"], r["seed"], r["learning_rate"])

    ref_vals = {key(r): num(r[field]) for r in rows if r["cell"] == ref}
    logs = []
    for r in rows:
        v, w = num(r[field]), ref_vals.get(key(r))
        if r["cell"] == cell and v and w and v > 0 and w > 0:
            logs.append(math.log(v / w))
    return math.exp(sum(logs) / len(logs)) if logs else None


def comparison(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per cell, over its runs: parameters at each hidden size, step time and
    train-step memory (XLA's account of the compiled step; median, range, and
    ratio to the GRU at matched points), the longest sequence length solved,
    the gradient horizon."""
    cells = sorted({r["cell"] for r in rows}, key=cell_key)
    ref = REFERENCE_CELL if REFERENCE_CELL in cells else (cells[0] if cells else None)
    out = []
    for cell in cells:
        runs = [r for r in rows if r["cell"] == cell]
        params = {}
        for r in runs:
            if r["num_params"] is not None and r["hidden_size"] is not None:
                params.setdefault(r["hidden_size"], set()).add(r["num_params"])
        solved = [r for r in runs if r["solved"] is True and num(r["seq_len"]) is not None]
        tried = [num(r["seq_len"]) for r in runs if num(r["seq_len"]) is not None]
        longest = max((r["seq_len"] for r in solved), default=None)
        out.append({
            "cell": cell,
            "runs": len(runs),
            "finished": sum(r["status"] in ("done", "diverged") for r in runs),
            "failed": sum(r["status"] == "failed" for r in runs),
            "solved": len(solved),
            "params": {h: sorted(v) for h, v in sorted(params.items(), key=lambda kv: kv[0])},
            "step_time_ms": [v for r in runs if (v := num(r["step_time_ms"])) is not None],
            "step_memory_bytes": [
                v for r in runs if (v := num(r["step_memory_bytes"])) is not None
            ],
            "grad_horizon": [v for r in runs if (v := num(r["grad_horizon"])) is not None],
            "time_ratio": _matched_ratio(rows, cell, ref, "step_time_ms"),
            "memory_ratio": _matched_ratio(rows, cell, ref, "step_memory_bytes"),
            "reference": ref,
            "longest_solved": longest,
            "longest_solved_hidden": min(
                (r["hidden_size"] for r in solved if r["seq_len"] == longest and
                 r["hidden_size"] is not None), default=None),
            "longest_tried": max(tried) if tried else None,
        })
    return out


def comparison_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    comp = comparison(rows)
    if not comp:
        return "_no runs_"
    ref = comp[0]["reference"]
    header = ["cell", "runs (solved / failed)", "parameters (by hidden size)",
              "step time ms, median (range)", f"time vs {ref}",
              "train-step memory MiB, median (range)", f"memory vs {ref}",
              "longest seq_len solved", "gradient horizon, median (max)"]
    lines = []
    for c in comp:
        params = ", ".join(
            f"h={h}: {'/'.join(str(p) for p in ps)}" for h, ps in c["params"].items()
        ) or "—"
        if c["longest_solved"] is None:
            longest = "none" + (f" (tried up to {c['longest_tried']:g})"
                                if c["longest_tried"] is not None else "")
        else:
            longest = f"{c['longest_solved']} (h={c['longest_solved_hidden']})"
        gh = c["grad_horizon"]
        horizon = f"{statistics.median(gh):.3g} ({max(gh):.3g})" if gh else "—"
        lines.append([
            str(c["cell"]),
            f"{c['runs']} ({c['solved']} / {c['failed']})",
            params,
            median_range(c["step_time_ms"]),
            "—" if c["time_ratio"] is None else f"{c['time_ratio']:.2f}×",
            median_range(c["step_memory_bytes"], fmt=lambda v: f"{v / 2**20:.3g}"),
            "—" if c["memory_ratio"] is None else f"{c['memory_ratio']:.2f}×",
            longest,
            horizon,
        ])
    return markdown_table(header, lines)


RUN_HEADER = ("run", "task", "cell", "hidden", "seq_len", "seed", "status", "step", "metric",
              "final", "solved", "steps to solve", "params", "step ms", "steps/s",
              "step MiB", "peak MiB", "grad horizon")


def runs_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """One row per run; the error of a failed run follows the table."""
    lines = [[
        f"`{r['run']}`", fmt(r["task"]), fmt(r["cell"]), fmt(r["hidden_size"]),
        fmt(r["seq_len"]), fmt(r["seed"]), fmt(r["status"]), fmt(r["step"]),
        fmt(r["metric"]), fmt(r["final"]), fmt(r["solved"]), fmt(r["steps_to_solve"]),
        fmt(r["num_params"]), fmt(r["step_time_ms"]), fmt(r["steps_per_sec"]),
        mib(r["step_memory_bytes"]), mib(r["peak_memory_bytes"]), fmt(r["grad_horizon"]),
    ] for r in rows]
    text = markdown_table(RUN_HEADER, lines)
    errors = [f"- `{r['run']}`: {r['error']}" for r in rows if r["error"]]
    if errors:
        text += "\n\nErrors:\n\n" + "\n".join(errors)
    return text


# ---------------------------------------------------------------- figures


def _safe(s: Any) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(s))


def _bad_runs(runs: Sequence[Mapping[str, Any]]) -> str:
    """e.g. '1 diverged, 2 failed': the runs a heatmap cell leaves out."""
    bad = [r["status"] for r in runs if r["status"] in ("failed", "diverged", "unreadable")]
    return ", ".join(f"{bad.count(s)} {s}" for s in sorted(set(bad)))


def _grids(task_rows, hiddens, lens, cells, value_fn) -> dict[str, figures.Grid]:
    """Per cell, value_fn(runs) -> (value or None, note) over hidden x length."""
    import numpy as np

    out = {}
    for cell in cells:
        g = np.full((len(hiddens), len(lens)), np.nan)
        notes = [["" for _ in lens] for _ in hiddens]
        for i, h in enumerate(hiddens):
            for j, length in enumerate(lens):
                runs = [r for r in task_rows
                        if r["cell"] == cell and r["hidden_size"] == h and r["seq_len"] == length]
                if runs:
                    v, notes[i][j] = value_fn(runs)
                    g[i, j] = np.nan if v is None else v
        out[str(cell)] = figures.Grid(g, notes)
    return out


def _final_value(runs):
    good = [v for r in runs if r["status"] not in ("failed", "diverged", "unreadable")
            and (v := num(r["final"])) is not None]
    note = _bad_runs(runs)
    if not good:
        return None, note or "—"
    text = f"{statistics.fmean(good):.3g}"
    if len(good) > 1:
        text += f"\n±{statistics.stdev(good):.2g} (n={len(good)})"
    return statistics.fmean(good), text + (f"\n{note}" if note else "")


def _steps_value(runs):
    solved = [v for r in runs if r["solved"] is True and (v := num(r["steps_to_solve"]))
              is not None]
    if not solved:
        note = _bad_runs(runs)
        return None, "not solved" + (f"\n{note}" if note else "")
    text = f"{statistics.fmean(solved):.4g}"
    if len(solved) < len(runs):
        text += f"\n{len(solved)}/{len(runs)} solved"
    elif len(solved) > 1:
        text += f"\n(n={len(solved)})"
    return statistics.fmean(solved), text


_STYLES = ("-", "--", ":", "-.")


def _run_lines(task_runs, cells, points) -> dict[str, list[figures.Line]]:
    """Per cell, one Line per run: points(data) -> (x, y) or None; colour by sequence
    length, line style by hidden size, one legend entry per (hidden, length)."""
    from matplotlib import colormaps

    lens = axis(r["seq_len"] for r, _ in task_runs)
    hiddens = axis(r["hidden_size"] for r, _ in task_runs)
    cmap = colormaps["viridis"]
    panels: dict[str, list[figures.Line]] = {str(c): [] for c in cells}
    for row, data in task_runs:
        xy = points(data) if str(row["cell"]) in panels else None
        if xy is None:
            continue
        li = lens.index(row["seq_len"]) if row["seq_len"] in lens else 0
        hi = hiddens.index(row["hidden_size"]) if row["hidden_size"] in hiddens else 0
        panels[str(row["cell"])].append(figures.Line(
            *xy, color=cmap(li / max(1, len(lens) - 1) * 0.9), style=_STYLES[hi % 4],
            label=f"T={row['seq_len']}, h={row['hidden_size']}", order=(hi, li), alpha=0.85))
    return panels


def _curves_figure(task, task_runs, cells, metric, path, solved_at=None, baseline=None):
    """One panel per cell: the eval metric against step for each run; the task's solve
    threshold and memoryless baseline (from the summaries) as horizontal lines."""
    def points(history):
        pts = [(h["step"], h[metric]) for h in history
               if num(h.get("step")) is not None and num(h.get(metric)) is not None]
        pts = [(s, v) for s, v in pts if v > 0 or metric != "mse"]
        return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None

    refs = [(y, style, name) for y, style, name in ((solved_at, ":", "solved"),
                                                    (baseline, "--", "baseline"))
            if num(y) is not None and (metric != "mse" or y > 0)]
    return figures.line_panels(
        _run_lines(task_runs, cells, points),
        figures.Axes(xlabel="step", ylabel=f"eval {metric}", logy=metric == "mse", hlines=refs),
        title=f"{task}: eval {metric} during training", path=path, legend="outside")


def _gradients_figure(task, task_runs, cells, path):
    """One panel per cell: ||dL/dh_t|| / ||dL/dh_{T-1}|| against the lag T-1-t, one
    line per run. How fast this falls is the vanishing gradient."""
    import numpy as np

    def points(norms):
        g = np.asarray([v if num(v) is not None else np.nan for v in norms], float)[::-1]
        if g.size < 2 or not np.isfinite(g[0]) or g[0] <= 0:
            return None
        g = g / g[0]
        ok = np.isfinite(g) & (g > 0)
        return np.arange(g.size)[ok], g[ok]

    return figures.line_panels(
        _run_lines(task_runs, cells, points),
        figures.Axes(xlabel="lag T-1-t (steps back from the end)", logy=True,
                     ylabel=r"$\|\partial L/\partial h_t\| \;/\; \|\partial L/\partial h_{T-1}\|$"),
        title=f"{task}: gradient reaching back in time (at the end of training)", path=path,
        legend="outside")


def write_figures(workdir: str | Path, rows: Sequence[Mapping[str, Any]] | None = None,
                  summaries: Sequence[tuple[str, RunSummary | SummaryError]] | None = None
                  ) -> list[Path]:
    """The heatmaps and learning curves of every task in DIR; returns their paths."""
    workdir = Path(workdir)
    summaries = list(summaries) if summaries is not None else load_runs(workdir)
    rows = list(rows) if rows is not None else collect(workdir)
    by_name = {name: s for name, s in summaries if isinstance(s, RunSummary)}
    empty = RunSummary(status="failed")  # an unreadable run: no history, no gradients
    paths = []
    for task in sorted({r["task"] for r in rows}, key=str):
        task_rows = [r for r in rows if r["task"] == task and r["cell"] is not None]
        metrics = [r["metric"] for r in task_rows if r["metric"]]
        if not task_rows or not metrics:
            continue
        metric = max(set(metrics), key=metrics.count)
        cells = sorted({r["cell"] for r in task_rows}, key=cell_key)
        hiddens = axis(r["hidden_size"] for r in task_rows)
        lens = axis(r["seq_len"] for r in task_rows)
        if hiddens and lens:
            up = higher_is_better(metric)  # a fraction in [0, 1]; else an error, on a log scale
            paths.append(figures.heatmap_panels(
                _grids(task_rows, hiddens, lens, cells, _final_value), lens, hiddens,
                title=f"{task}: final eval {metric} (mean over seeds; blank: not run)",
                log_scale=not up, cmap="viridis" if up else "viridis_r",
                path=workdir / f"heatmap_{_safe(task)}_{_safe(metric)}.png",
                vmin=0.0 if up else None, vmax=1.0 if up else None))
            paths.append(figures.heatmap_panels(
                _grids(task_rows, hiddens, lens, cells, _steps_value), lens, hiddens,
                title=f"{task}: steps to solve (mean over solved seeds; blank: not solved or "
                      "not run)", cmap="magma_r",
                path=workdir / f"heatmap_{_safe(task)}_steps_to_solve.png"))
        runs = [(r, by_name.get(r["run"], empty)) for r in task_rows]
        info = next((s.task for _, s in runs if s.task.metric), TaskInfo())
        task_runs = [(r, s.eval_history) for r, s in runs]
        if any(h for _, h in task_runs):
            paths.append(_curves_figure(task, task_runs, cells, metric,
                                        workdir / f"curves_{_safe(task)}.png",
                                        info.solved_at, info.baseline))
        grad_runs = [(r, s.grad_norms or []) for r, s in runs]
        if any(isinstance(g, list) and len(g) > 1 for _, g in grad_runs):
            paths.append(_gradients_figure(task, grad_runs, cells,
                                           workdir / f"gradients_{_safe(task)}.png"))
    return paths


# ---------------------------------------------------------------- report


def markdown(rows: Sequence[Mapping[str, Any]], workdir: str | Path,
             planned: Sequence[str] | None = None,
             figures: Sequence[Path] = ()) -> str:
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["status"]] += 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    parts = [
        f"# Results: {workdir}",
        "",
        f"Made by `python scripts/report.py --workdir={workdir}` from each run's "
        "summary. TensorBoard: `tensorboard --logdir " + str(workdir) + "`.",
        "",
        f"{len(rows)} runs: {tally}.",
    ]
    if planned is not None:
        have = {r["run"] for r in rows}
        missing = [name for name in planned if name not in have]
        parts.append(f"The sweep has {len(planned)} points; {len(missing)} not run yet"
                     + (": " + ", ".join(f"`{m}`" for m in missing[:20]) if missing else "")
                     + (", ..." if len(missing) > 20 else "") + ".")
    parts += [
        "",
        "## Cells compared",
        "",
        "Over each cell's runs. Time and memory ratios are geometric means over the "
        "points run with both cells (same task, hidden size, sequence length, seed, "
        "learning rate). Longest seq_len solved: the longest sequence any run of the "
        "cell solved (the smallest hidden size that did).",
        "",
        comparison_markdown(rows),
        "",
    ]
    sources = sorted({str(r["peak_memory_source"]) for r in rows if r["peak_memory_source"]})
    if sources:
        parts += [
            "Train-step memory is XLA's account of the compiled training step "
            "(temporaries, arguments, outputs): per run, comparable across runs. Peak MiB "
            f"in the runs table is the process's high-water mark ({', '.join(sources)}): "
            "runs that shared one sweep process carry the peaks of the runs before them.",
            "",
        ]
    parts += [
        "## Runs",
        "",
        runs_markdown(rows),
    ]
    if figures:
        parts += ["", "## Figures", ""]
        for p in figures:
            parts += [f"![{p.stem}]({p.name})", ""]
    return "\n".join(parts) + "\n"


def write_report(workdir: str | Path) -> str:
    """Writes results.csv, results.md and the figures into `workdir`; returns the
    markdown. WorkdirError if it holds no run summary."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise WorkdirError(f"{workdir}: no such folder")
    summaries = load_runs(workdir)
    if not summaries:
        raise WorkdirError(f"{workdir}: no */{SUMMARY_FILE} yet (has the sweep run?)")
    rows = rows_of(summaries)
    write_csv(rows, workdir / "results.csv", COLUMNS)
    figures = write_figures(workdir, rows, summaries)
    text = markdown(rows, workdir, planned_runs(workdir), figures)
    (workdir / "results.md").write_text(text)
    return text
