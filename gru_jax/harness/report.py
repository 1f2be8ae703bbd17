"""Tables and figures from a sweep folder's runs (each run's summary, `summary.RunSummary`).

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

import csv
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gru_jax.harness.errors import WorkdirError
from gru_jax.harness.files import SUMMARY_FILE, planned_runs
from gru_jax.harness.keys import flatten
from gru_jax.harness.metrics import higher_is_better
from gru_jax.harness.summary import RunSummary, SummaryError, TaskInfo, find_summaries, read_summary

CELL_ORDER = ("gru", "lstm", "rnn", "mingru")  # the rest follow alphabetically
REFERENCE_CELL = "gru"  # the comparison table's ratios are against this cell

COLUMNS = (
    "run", "task", "cell", "hidden_size", "seq_len", "seed", "learning_rate", "status",
    "step", "metric", "final", "loss", "solved", "steps_to_solve", "num_params",
    "steps_per_sec", "step_time_ms", "step_memory_bytes", "peak_memory_bytes",
    "peak_memory_source",
    "grad_horizon", "wall_time_sec", "num_devices", "error",
)


# ---------------------------------------------------------------- reading


def _summaries(workdir: Path) -> list[tuple[str, RunSummary | SummaryError]]:
    """(run folder name, summary) for the run in `workdir` itself (a single
    run's folder) and every run in a subfolder; a summary that cannot be read
    comes as its SummaryError (reported as status "unreadable")."""
    out = []
    for run_dir in find_summaries(workdir):
        name = run_dir.name if run_dir != workdir else "."
        try:
            out.append((name, read_summary(run_dir)))
        except SummaryError as e:
            out.append((name, e))
    return out


def _num(x: Any) -> float | None:
    """A finite float, or None (missing, null, NaN, non-numeric)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _row(name: str, summary: RunSummary | SummaryError) -> dict[str, Any]:
    row = dict.fromkeys(COLUMNS)
    row["run"] = name
    if isinstance(summary, SummaryError):
        return {**row, "status": "unreadable", "error": str(summary).splitlines()[0][:300]}
    config = flatten(summary.config)
    return {
        **row,
        "task": config.get("task.name"),  # a config of any experiment: keys may be absent
        "cell": config.get("model.cell"),
        "hidden_size": config.get("model.hidden_size"),
        "seq_len": config.get("task.seq_len"),
        "seed": config.get("seed"),
        "learning_rate": config.get("train.learning_rate"),
        **{k: getattr(summary, k) for k in (
            "status", "step", "solved", "steps_to_solve", "num_params", "steps_per_sec",
            "step_time_ms", "step_memory_bytes", "peak_memory_bytes", "peak_memory_source",
            "grad_horizon", "wall_time_sec", "num_devices")},
        "metric": summary.metric,
        "final": summary.final_value,
        "loss": summary.final.get("loss"),
        "error": summary.error.splitlines()[0][:300] if summary.error else None,
    }


def _cell_key(cell: Any) -> tuple:
    return (CELL_ORDER.index(cell), "") if cell in CELL_ORDER else (len(CELL_ORDER), str(cell))


def _sort_key(row: Mapping[str, Any]) -> tuple:
    def n(x):
        v = _num(x)
        return (0, v) if v is not None else (1, 0.0)

    return (str(row["task"]), _cell_key(row["cell"]), n(row["hidden_size"]), n(row["seq_len"]),
            n(row["seed"]), n(row["learning_rate"]), row["run"])


def collect(workdir: str | Path) -> list[dict[str, Any]]:
    """One row dict (keys: COLUMNS) per run under `workdir`, sorted by task, cell
    (gru, lstm, rnn, mingru first), hidden size, sequence length, seed."""
    return sorted((_row(n, s) for n, s in _summaries(Path(workdir))), key=_sort_key)


# ---------------------------------------------------------------- tables


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or x == "":
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if math.isfinite(x) else str(x)
    return str(x).replace("|", "\\|")


def _mib(x: Any) -> str:
    v = _num(x)
    return "—" if v is None else f"{v / 2**20:.4g}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table; cells are written with str()."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _median_range(values: Sequence[float], fmt=lambda v: f"{v:.3g}") -> str:
    if not values:
        return "—"
    med = fmt(statistics.median(values))
    if len(values) == 1 or min(values) == max(values):
        return med
    return f"{med} ({fmt(min(values))}–{fmt(max(values))})"


def _matched_ratio(rows: Sequence[Mapping], cell: str, ref: str, field: str) -> float | None:
    """Geometric mean of cell/ref of `field` over runs at the same (task, hidden
    size, sequence length, seed, learning rate): the like-for-like comparison."""
    def key(r):
        return (r["task"], r["hidden_size"], r["seq_len"], r["seed"], r["learning_rate"])

    ref_vals = {key(r): _num(r[field]) for r in rows if r["cell"] == ref}
    logs = []
    for r in rows:
        v, w = _num(r[field]), ref_vals.get(key(r))
        if r["cell"] == cell and v and w and v > 0 and w > 0:
            logs.append(math.log(v / w))
    return math.exp(sum(logs) / len(logs)) if logs else None


def comparison(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per cell, over its runs: parameters at each hidden size, step time and
    train-step memory (XLA's account of the compiled step; median, range, and
    ratio to the GRU at matched points), the longest sequence length solved,
    the gradient horizon."""
    cells = sorted({r["cell"] for r in rows}, key=_cell_key)
    ref = REFERENCE_CELL if REFERENCE_CELL in cells else (cells[0] if cells else None)
    out = []
    for cell in cells:
        runs = [r for r in rows if r["cell"] == cell]
        params = {}
        for r in runs:
            if r["num_params"] is not None and r["hidden_size"] is not None:
                params.setdefault(r["hidden_size"], set()).add(r["num_params"])
        solved = [r for r in runs if r["solved"] is True and _num(r["seq_len"]) is not None]
        tried = [_num(r["seq_len"]) for r in runs if _num(r["seq_len"]) is not None]
        longest = max((r["seq_len"] for r in solved), default=None)
        out.append({
            "cell": cell,
            "runs": len(runs),
            "finished": sum(r["status"] in ("done", "diverged") for r in runs),
            "failed": sum(r["status"] == "failed" for r in runs),
            "solved": len(solved),
            "params": {h: sorted(v) for h, v in sorted(params.items(), key=lambda kv: kv[0])},
            "step_time_ms": [v for r in runs if (v := _num(r["step_time_ms"])) is not None],
            "step_memory_bytes": [
                v for r in runs if (v := _num(r["step_memory_bytes"])) is not None
            ],
            "grad_horizon": [v for r in runs if (v := _num(r["grad_horizon"])) is not None],
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
            _median_range(c["step_time_ms"]),
            "—" if c["time_ratio"] is None else f"{c['time_ratio']:.2f}×",
            _median_range(c["step_memory_bytes"], fmt=lambda v: f"{v / 2**20:.3g}"),
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
        f"`{r['run']}`", _fmt(r["task"]), _fmt(r["cell"]), _fmt(r["hidden_size"]),
        _fmt(r["seq_len"]), _fmt(r["seed"]), _fmt(r["status"]), _fmt(r["step"]),
        _fmt(r["metric"]), _fmt(r["final"]), _fmt(r["solved"]), _fmt(r["steps_to_solve"]),
        _fmt(r["num_params"]), _fmt(r["step_time_ms"]), _fmt(r["steps_per_sec"]),
        _mib(r["step_memory_bytes"]), _mib(r["peak_memory_bytes"]), _fmt(r["grad_horizon"]),
    ] for r in rows]
    text = markdown_table(RUN_HEADER, lines)
    errors = [f"- `{r['run']}`: {r['error']}" for r in rows if r["error"]]
    if errors:
        text += "\n\nErrors:\n\n" + "\n".join(errors)
    return text


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in COLUMNS})


# ---------------------------------------------------------------- figures


def _safe(s: Any) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(s))


def _axis(values: Iterable[Any]) -> list[Any]:
    """Distinct values, numbers in numeric order."""
    return sorted({v for v in values if v is not None},
                  key=lambda v: (_num(v) is None, _num(v) or 0.0, str(v)))


def _bad_runs(runs: Sequence[Mapping[str, Any]]) -> str:
    """e.g. '1 diverged, 2 failed': the runs a heatmap cell leaves out."""
    bad = [r["status"] for r in runs if r["status"] in ("failed", "diverged", "unreadable")]
    return ", ".join(f"{bad.count(s)} {s}" for s in sorted(set(bad)))


def _heatmap_figure(task_rows, hiddens, lens, cells, value_fn, title, log_scale, cmap, path,
                    vmin=None, vmax=None):
    """One panel per cell; value_fn(runs) -> (value or None, annotation)."""
    import numpy as np
    from matplotlib import colormaps, colors
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    grids, notes = {}, {}
    for cell in cells:
        g = np.full((len(hiddens), len(lens)), np.nan)
        t = [["" for _ in lens] for _ in hiddens]
        for i, h in enumerate(hiddens):
            for j, length in enumerate(lens):
                runs = [r for r in task_rows
                        if r["cell"] == cell and r["hidden_size"] == h and r["seq_len"] == length]
                if runs:
                    v, t[i][j] = value_fn(runs)
                    if v is not None:
                        g[i, j] = v
        grids[cell], notes[cell] = g, t
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
    if log_scale:
        finite = finite[finite > 0]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if log_scale and finite.size and hi > lo:
        norm = colors.LogNorm(lo, hi)
    else:
        norm = colors.Normalize(lo, hi if hi > lo else lo + 1.0)
    cm = colormaps[cmap].with_extremes(bad="white")  # missing points stay blank

    fig = Figure(figsize=(1.2 + 0.9 * len(lens) * len(cells) + 1.0 * len(cells),
                          1.6 + 0.55 * len(hiddens)), layout="constrained")
    axes = fig.subplots(1, len(cells), squeeze=False)[0]
    image = None
    for ax, cell in zip(axes, cells, strict=True):
        g = grids[cell]
        masked = np.ma.masked_invalid(np.where(g > 0, g, np.nan) if log_scale else g)
        image = ax.imshow(masked, origin="lower", aspect="auto", cmap=cm, norm=norm)
        for i in range(len(hiddens)):
            for j in range(len(lens)):
                text = notes[cell][i][j]
                if not text:
                    continue
                v = g[i, j]
                dark = np.isfinite(v) and sum(cm(norm(v))[:3]) < 1.5
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(lens)), [str(v) for v in lens])
        ax.set_yticks(range(len(hiddens)), [str(v) for v in hiddens])
        ax.set_xlabel("sequence length")
        ax.set_title(str(cell))
    axes[0].set_ylabel("hidden size")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.9)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    return path


def _final_value(runs):
    good = [v for r in runs if r["status"] not in ("failed", "diverged", "unreadable")
            and (v := _num(r["final"])) is not None]
    note = _bad_runs(runs)
    if not good:
        return None, note or "—"
    text = f"{statistics.fmean(good):.3g}"
    if len(good) > 1:
        text += f"\n±{statistics.stdev(good):.2g} (n={len(good)})"
    return statistics.fmean(good), text + (f"\n{note}" if note else "")


def _steps_value(runs):
    solved = [v for r in runs if r["solved"] is True and (v := _num(r["steps_to_solve"]))
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


def _legend(ax, handles: dict) -> None:
    """One legend (outside the last panel) for {(length index, hidden index): (line,
    label)}, by hidden size then length; none when there are too many lines to read."""
    if handles and len(handles) <= 30:
        items = [handles[k] for k in sorted(handles, key=lambda k: (k[1], k[0]))]
        ax.legend([h for h, _ in items], [lbl for _, lbl in items], fontsize=6,
                  loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def _curves_figure(task, task_runs, cells, metric, path, solved_at=None, baseline=None):
    """One panel per cell: the eval metric against step for each run; colour by
    sequence length, line style by hidden size; the task's solve threshold and
    memoryless baseline (from the summaries) as horizontal lines."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    lens = _axis(r["seq_len"] for r, _ in task_runs)
    hiddens = _axis(r["hidden_size"] for r, _ in task_runs)
    cmap = colormaps["viridis"]
    styles = ["-", "--", ":", "-."]
    fig = Figure(figsize=(0.4 + 4.2 * len(cells), 3.6), layout="constrained")
    axes = fig.subplots(1, len(cells), squeeze=False, sharey=True)[0]
    handles = {}  # one legend for all panels: colour and style mean the same in each
    for ax, cell in zip(axes, cells, strict=True):
        for row, history in task_runs:
            if row["cell"] != cell:
                continue
            pts = [(h["step"], h[metric]) for h in history
                   if _num(h.get("step")) is not None and _num(h.get(metric)) is not None]
            if metric == "mse":
                pts = [(s, v) for s, v in pts if v > 0]
            if not pts:
                continue
            li = lens.index(row["seq_len"]) if row["seq_len"] in lens else 0
            hi = hiddens.index(row["hidden_size"]) if row["hidden_size"] in hiddens else 0
            (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2, alpha=0.85,
                              color=cmap(li / max(1, len(lens) - 1) * 0.9),
                              linestyle=styles[hi % len(styles)])
            handles.setdefault((li, hi), (line, f"T={row['seq_len']}, h={row['hidden_size']}"))
        for y, style, name in ((solved_at, ":", "solved"), (baseline, "--", "baseline")):
            if _num(y) is not None and (metric != "mse" or y > 0):
                ax.axhline(y, color="gray", lw=0.8, linestyle=style)
                ax.annotate(name, (1, y), xycoords=("axes fraction", "data"), fontsize=6,
                            color="gray", ha="right", va="bottom")
        if metric == "mse":
            ax.set_yscale("log")
        ax.set_title(str(cell))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"eval {metric}")
    _legend(axes[-1], handles)
    fig.suptitle(f"{task}: eval {metric} during training", fontsize=10)
    fig.savefig(path, dpi=110)
    return path


def _gradients_figure(task, task_runs, cells, path):
    """One panel per cell: ||dL/dh_t|| / ||dL/dh_{T-1}|| against the lag T-1-t,
    colour by sequence length (the mean over a run's seeds is not taken: one
    line per run). How fast this falls is the vanishing gradient."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    lens = _axis(r["seq_len"] for r, _ in task_runs)
    hiddens = _axis(r["hidden_size"] for r, _ in task_runs)
    cmap = colormaps["viridis"]
    styles = ["-", "--", ":", "-."]
    fig = Figure(figsize=(0.4 + 4.2 * len(cells), 3.6), layout="constrained")
    axes = fig.subplots(1, len(cells), squeeze=False, sharey=True)[0]
    handles = {}
    for ax, cell in zip(axes, cells, strict=True):
        for row, norms in task_runs:
            if row["cell"] != cell:
                continue
            g = np.asarray([v if _num(v) is not None else np.nan for v in norms], float)[::-1]
            if g.size < 2 or not np.isfinite(g[0]) or g[0] <= 0:
                continue
            g = g / g[0]
            li = lens.index(row["seq_len"]) if row["seq_len"] in lens else 0
            hi = hiddens.index(row["hidden_size"]) if row["hidden_size"] in hiddens else 0
            ok = np.isfinite(g) & (g > 0)
            (line,) = ax.plot(np.arange(g.size)[ok], g[ok], lw=1.1, alpha=0.85,
                              color=cmap(li / max(1, len(lens) - 1) * 0.9),
                              linestyle=styles[hi % len(styles)])
            handles.setdefault((li, hi), (line, f"T={row['seq_len']}, h={row['hidden_size']}"))
        ax.set_yscale("log")
        ax.set_title(str(cell))
        ax.set_xlabel("lag T-1-t (steps back from the end)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(r"$\|\partial L/\partial h_t\| \;/\; \|\partial L/\partial h_{T-1}\|$")
    _legend(axes[-1], handles)
    fig.suptitle(f"{task}: gradient reaching back in time (at the end of training)",
                 fontsize=10)
    fig.savefig(path, dpi=110)
    return path


def write_figures(workdir: str | Path, rows: Sequence[Mapping[str, Any]] | None = None,
                  summaries: Sequence[tuple[str, RunSummary | SummaryError]] | None = None
                  ) -> list[Path]:
    """The heatmaps and learning curves of every task in DIR; returns their paths."""
    workdir = Path(workdir)
    summaries = list(summaries) if summaries is not None else _summaries(workdir)
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
        cells = sorted({r["cell"] for r in task_rows}, key=_cell_key)
        hiddens = _axis(r["hidden_size"] for r in task_rows)
        lens = _axis(r["seq_len"] for r in task_rows)
        if hiddens and lens:
            up = higher_is_better(metric)  # a fraction in [0, 1]; else an error, on a log scale
            paths.append(_heatmap_figure(
                task_rows, hiddens, lens, cells, _final_value,
                f"{task}: final eval {metric} (mean over seeds; blank: not run)",
                log_scale=not up, cmap="viridis" if up else "viridis_r",
                path=workdir / f"heatmap_{_safe(task)}_{_safe(metric)}.png",
                vmin=0.0 if up else None, vmax=1.0 if up else None))
            paths.append(_heatmap_figure(
                task_rows, hiddens, lens, cells, _steps_value,
                f"{task}: steps to solve (mean over solved seeds; blank: not solved or not run)",
                log_scale=False, cmap="magma_r",
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
    summaries = _summaries(workdir)
    if not summaries:
        raise WorkdirError(f"{workdir}: no */{SUMMARY_FILE} yet (has the sweep run?)")
    rows = sorted((_row(n, s) for n, s in summaries), key=_sort_key)
    write_csv(rows, workdir / "results.csv")
    figures = write_figures(workdir, rows, summaries)
    text = markdown(rows, workdir, planned_runs(workdir), figures)
    (workdir / "results.md").write_text(text)
    return text


def replace_section(text: str, begin: str, end: str, body: str) -> str:
    """`text` with what lies between the markers `begin` and `end` replaced by `body` (the
    markers stay): how the README's rendered sections are written and checked."""
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise WorkdirError(f"no {begin} ... {end} markers to render into")
    return f"{head}{begin}\n{body.strip()}\n{end}{tail}"

