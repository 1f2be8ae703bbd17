"""The long-range study's report: phase diagrams, boundary curves, gradient against lag,
learning curves, the cell comparison and the published-results tables, and the README
section, all from the committed runs of a study folder.

The runs are read by `results` (`load_study`), drawn by `figures`; the tables and the
markdown are here. The gradient horizon (`gru_jax.diagnostics.grad_horizon`) is the
largest lag k at which ||dL/dh_{T-1-k}|| stays above HORIZON_FRACTION of
||dL/dh_{T-1}||; the report shows it at initialisation and as the median over the
evals of training, as TensorBoard does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gru_jax.harness.diagnostics import HORIZON_FRACTION
from gru_jax.harness.report.tables import markdown_table, replace_section, write_csv
from gru_jax.harness.summary import RunSummary
from gru_jax.proj.long_range.first_protocol import figures
from gru_jax.proj.long_range.first_protocol.results import (  # noqa: F401 - the study's names, kept here
    ARM_OVERRIDES,
    ARMS,
    CURVE_HIDDEN,
    Point,
    TaskResults,
    arm_of,
    best_boundary,
    boundaries,
    boundary_fits,
    curve_hidden,
    equal_params_hidden,
    fit_boundary,
    gradient_length,
    load_study,
    load_task,
    study_points,
)

README_BEGIN, README_END = "<!-- long-range:begin -->", "<!-- long-range:end -->"


# --- tables ------------------------------------------------------------------------------

def _bound_text(t: int | None, censored: bool) -> str:
    if t is None:
        return "none" + (" yet" if censored else "")
    return f">= {t}" if censored else str(t)


def boundary_table(tr: TaskResults, fits: Mapping[str, Any]) -> str:
    """Longest length solved per arm and hidden size, with the fitted exponent."""
    rows = []
    for arm, bs in boundaries(tr).items():
        fit = fits.get(arm)
        rows.append([arm, *(_bound_text(t, c) for _, t, c in bs),
                     f"H^{round(fit[1], 2) + 0.0:.2f}" if fit else "-"])
    return markdown_table(["arm", *(f"H={h}" for h in tr.hiddens), "fit T* ~"], rows)


def _horizons(runs: list[RunSummary], key: str) -> str:
    hs = [getattr(r, key) for r in runs if getattr(r, key) is not None]
    return f"{np.median(hs):.0f}" if hs else "-"


def comparison_rows(tr: TaskResults, others: Sequence[TaskResults], costs: Mapping | None,
                    hidden_of: Mapping[str, int]) -> list[list[Any]]:
    """One row per arm at hidden_of[arm]: parameters, step time and train-step memory
    (side by side, from `costs`), longest length solved per task, gradient horizons."""
    t_grad = gradient_length(tr)
    cost = {(c["arm"], c["hidden"]): c for c in (costs or {}).get("rows", [])}
    rows = []
    for arm in tr.arms:
        h = hidden_of[arm]
        runs = [r for t in tr.lengths if (p := tr.points.get((arm, h, t))) for r in p.runs]
        c = cost.get((arm, h), {})
        at_t = tr.points[(arm, h, t_grad)].runs if t_grad and (arm, h, t_grad) in \
            tr.points else []
        rows.append([
            arm, h, runs[0].num_params if runs else "-",
            f"{c['step_ms']:.2f}" if c else "-",
            f"{c['memory_bytes'] / 2**20:.2f}" if c else "-",
            *(_bound_text(*x.boundary(arm, h)) for x in (tr, *others)),
            _horizons(at_t, "grad_horizon_init"), _horizons(at_t, "grad_horizon_median"),
        ])
    return rows


def comparison_markdown(tasks: Sequence[TaskResults], costs: Mapping | None) -> str:
    tr, others = tasks[0], list(tasks[1:])
    t_grad = gradient_length(tr)
    header = ["arm", "hidden", "parameters", "step time ms", "train-step memory MiB",
              *(f"longest T solved, {x.name}" for x in tasks),
              f"horizon at init ({tr.name}, T={t_grad or '-'})",
              "horizon, median over training"]
    hidden = curve_hidden(tr)
    same = comparison_rows(tr, others, costs, {a: hidden for a in tr.arms})
    equal = comparison_rows(tr, others, costs, equal_params_hidden(tr, ("gru", hidden)))
    what = ""
    if costs:
        what = (f"Step time: median of {costs['repeats']} interleaved timings of a jitted "
                f"training step on the {tr.name} task at T={costs['seq_len']}, batch "
                f"{costs['batch_size']}, in one process ({costs['machine']['cpu']}, "
                f"{costs['machine']['cpu_count']} cores); memory: XLA's buffer assignment for "
                "that step (arguments + outputs + temporaries). ")
    return (f"At equal hidden size ({hidden}):\n\n{markdown_table(header, same)}\n\n"
            f"At (nearly) equal parameter count: each arm at the grid hidden size whose "
            f"parameter count is nearest the GRU's at {hidden}:\n\n"
            f"{markdown_table(header, equal)}\n\n{what}Horizon: the largest lag at which "
            f"||dL/dh_t|| stays above {HORIZON_FRACTION:g} of its value at the last step, "
            "median over seeds.")


def _bt(tr: TaskResults, arm: str) -> str:
    t, cens, h = best_boundary(tr, arm)
    return f"{_bound_text(t, cens)}" + (f" (H={h})" if h else "")


def _next_length(tr: TaskResults, t: int | None) -> int | None:
    longer = [x for x in tr.lengths if t is None or x > t]
    return longer[0] if longer else None


def _compare(a: tuple[int | None, bool], b: tuple[int | None, bool]) -> int | None:
    """Sign of boundary a - boundary b ((length or None, censored) each) where the grid
    decides it, else None. A censored boundary is a lower bound; two arms that solve no
    length tell nothing about which reaches further."""
    (ta, ca), (tb, cb) = a, b
    if ta is None and tb is None:
        return None
    va, vb = ta or 0, tb or 0
    if not ca and not cb:
        return (va > vb) - (va < vb)
    if not ca and va < vb:  # b is at least vb
        return -1
    if not cb and vb < va:
        return 1
    return None


def published_rows(tasks: Mapping[str, TaskResults]) -> list[list[str]]:
    """Published findings next to ours, each with a verdict computed from the results."""
    rows = []
    add, copy = tasks.get("adding"), tasks.get("copy")
    steps = lambda tr: tr.config.get("train", {}).get("steps", "?")  # noqa: E731
    has = lambda tr, arm: tr is not None and arm in tr.arms  # noqa: E731
    if has(add, "rnn"):
        t, cens, _ = best_boundary(add, "rnn")
        fail = _next_length(add, t)
        verdict = ("open: the boundary is not reached in the grid yet" if cens else
                   "agrees" if fail is not None and fail <= 200 else "disagrees")
        rows.append(["The tanh RNN fails the adding problem from about T = 100-200",
                     "Arjovsky et al. 2016; Li et al. 2018 (IndRNN)",
                     f"longest T solved {_bt(add, 'rnn')}"
                     + ("" if cens else f"; fails from T = {fail}"), verdict])
    if has(add, "gru"):
        t, cens, h = best_boundary(add, "gru")
        verdict = ("agrees" if t is not None and t >= 500 else
                   "open: not reached in the grid yet" if cens else
                   f"disagrees at our budget ({steps(add)} steps)")
        rows.append(["A GRU solves the adding problem at T = 600 (MSE 5.3e-5)",
                     "Bai et al. 2018 (TCN), Table 1", f"longest T solved {_bt(add, 'gru')}",
                     verdict])
    if has(add, "lstm"):
        t, cens, _ = best_boundary(add, "lstm")
        verdict = ("open: not reached in the grid yet" if cens and (t or 0) < 500 else
                   "agrees" if (t or 0) < 500 else
                   f"disagrees: our LSTM (forget bias 1) solves T = {t}")
        rows.append(["...while their LSTM did not (MSE 0.164 at T = 600)",
                     "Bai et al. 2018 (TCN), Table 1", f"longest T solved {_bt(add, 'lstm')}",
                     verdict])
    if copy is not None:
        t_max = copy.lengths[-1]
        arms = [a for a in ("gru", "lstm", "rnn") if a in copy.arms]
        at_max = [copy.points[(a, h, t_max)] for a in arms for h in copy.hiddens
                  if (a, h, t_max) in copy.points]
        ours = "; ".join(f"{a} {_bt(copy, a)}" for a in arms)
        solve_max = sorted({p.arm for p in at_max if p.solved})
        verdict = (f"not comparable: our grid ends at T = {t_max}, where "
                   f"{', '.join(solve_max)} still solve" if solve_max else
                   "open: the longest delay is not run yet" if any(
                       p.state == "pending" for p in at_max) else
                   f"consistent: none solves T = {t_max} (our longest; 1000 not run)")
        rows.append(["On the copy task at T = 1000, GRU, LSTM and RNN stay at the memoryless "
                     "baseline", "Bai et al. 2018 (TCN), Table 1",
                     f"longest T solved: {ours}", verdict])
    for tr in (x for x in (add, copy) if x is not None and "chrono-gru" in x.arms):
        pairs = {h: (tr.boundary("chrono-gru", h), tr.boundary("gru", h)) for h in tr.hiddens}
        signs = [s for c, g in pairs.values() if (s := _compare(c, g)) is not None]
        verdict = ("open: no hidden size where the two boundaries can be ordered yet"
                   if not signs else "agrees" if min(signs) >= 0 and max(signs) > 0 else
                   "no difference in the grid" if not any(signs) else
                   "disagrees" if max(signs) <= 0 else "mixed: longer at some H, shorter at others")
        rows.append([f"Chrono initialisation extends the range a GRU learns ({tr.name})",
                     "Tallec & Ollivier 2018",
                     "longest T solved, chrono-gru vs gru: " + ", ".join(
                         f"H={h}: {_bound_text(*c)} vs {_bound_text(*g)}"
                         for h, (c, g) in pairs.items()), verdict])
    return rows


# --- the report --------------------------------------------------------------------------

CSV_FIELDS = ("task", "arm", "hidden", "seq_len", "seed", "status", "stop_reason", "solved",
              "steps_to_solve", "step", "metric", "final", "num_params", "step_time_ms",
              "step_memory_bytes", "grad_horizon_init", "grad_horizon_median",
              "wall_time_sec", "cpu")


def run_rows(tasks: Sequence[TaskResults]) -> list[dict]:
    rows = []
    for tr in tasks:
        for (arm, h, t), p in sorted(tr.points.items()):
            for r in sorted(p.runs, key=lambda r: r.config["seed"]):
                rows.append({
                    "task": tr.name, "arm": arm, "hidden": h, "seq_len": t,
                    "seed": r.config["seed"], "status": r.status,
                    "stop_reason": r.stop_reason, "solved": r.solved,
                    "steps_to_solve": r.steps_to_solve, "step": r.step,
                    "metric": tr.metric, "final": r.final.get(tr.metric),
                    "num_params": r.num_params, "step_time_ms": r.step_time_ms,
                    "step_memory_bytes": r.step_memory_bytes,
                    "grad_horizon_init": r.grad_horizon_init,
                    "grad_horizon_median": r.grad_horizon_median,
                    "wall_time_sec": r.wall_time_sec, "cpu": r.machine["cpu"],
                })
    return rows


def manifest(tasks: Sequence[TaskResults], reduced: bool) -> dict:
    """What the committed results are and where they came from, read off the runs."""
    runs = [r for tr in tasks for r in tr.runs()]
    machines: dict[str, dict] = {}
    for r in runs:
        m = {k: v for k, v in r.machine.items() if k != "commit"}
        machines.setdefault(json.dumps(m, sort_keys=True), {**m, "runs": 0})["runs"] += 1
    suffix = ":reduced" if reduced else ""
    return {
        "study": "long_range" + (" (reduced grid)" if reduced else ""),
        "commands": [f"python scripts/sweep.py --config=experiments/long_range_{tr.name}.py"
                     f"{suffix} --workdir={tr.folder}" for tr in tasks],
        "commits": sorted({r.machine["commit"] or "unknown" for r in runs}),
        "machines": list(machines.values()),
        "runs": len(runs),
        "run_wall_time_hours": round(sum(r.wall_time_sec for r in runs) / 3600, 2),
        "points": {tr.name: {s: sum(p.state == s for p in tr.points.values())
                             for s in ("run", "pruned", "pending")} for tr in tasks},
    }


def _coverage(tr: TaskResults) -> str:
    states = [p.state for p in tr.points.values()]
    seeds = max(p.seeds for p in tr.points.values())
    return (f"{len(tr.runs())} runs; of {len(states)} grid points (x {seeds} seeds) "
            f"{states.count('run')} run, {states.count('pruned')} pruned, "
            f"{states.count('pending')} not run yet")


def _budget(tr: TaskResults) -> str:
    t = tr.config.get("train", {})
    return (f"AdamW, peak lr {t.get('learning_rate')}, warmup {t.get('warmup_steps')} then "
            f"cosine, clip {t.get('clip_norm')}, batch {t.get('batch_size')}, at most "
            f"{t.get('steps')} steps, eval every {t.get('eval_every')} on "
            f"{t.get('eval_size')} held-out examples, stop after "
            f"{t.get('stop_when_solved')} solved evals in a row")


def _figures(study: Path, tr: TaskResults) -> dict[str, Path]:
    return {k: study / f"{k}_{tr.name}.png" for k in ("phase", "boundary", "gradients",
                                                      "curves")}


def study_markdown(study: str | os.PathLike, tasks: Sequence[TaskResults], *,
                   reduced: bool = False, readme_dir: str | os.PathLike = ".") -> str:
    """The study's results section (figure links relative to `readme_dir`); reads only
    the runs and costs.json, so re-rendering it from committed results is a check."""
    study = Path(study)
    rel = lambda p: os.path.relpath(p, readme_dir)  # noqa: E731
    m = manifest(tasks, reduced)
    cpu = "; ".join(f"{x['cpu']} ({x['cpu_count']} cores, {x['backend']}): {x['runs']} runs"
                    for x in m["machines"])
    parts = [
        f"Produced by {len(m['commands'])} sweeps (`{'`, `'.join(m['commands'])}`) and "
        f"`python scripts/report.py --study={study}{' --reduced' if reduced else ''}`. "
        f"Machine: {cpu}. Compute: {m['run_wall_time_hours']} h of run wall time (two runs "
        f"at a time on 2 cores, so about as many core-hours). Manifest: "
        f"`{study / 'manifest.json'}`; every run: `{study / 'runs.csv'}`."]
    for tr in tasks:
        figs = _figures(study, tr)
        section = [f"#### {tr.name}", f"{_coverage(tr)}. Budget: {_budget(tr)}. Solved: "
                   f"{tr.metric} {'<=' if tr.metric == 'mse' else '>='} {tr.solved_at:g}.",
                   f"![phase diagram, {tr.name}]({rel(figs['phase'])})",
                   "Longest length solved (at least half the seeds), and the power-law fit "
                   "log T* = a + b log H over the hidden sizes whose boundary lies inside the "
                   "grid (`>=`: solved at the longest length run so far):",
                   boundary_table(tr, boundary_fits(tr)),
                   f"![boundary, {tr.name}]({rel(figs['boundary'])})"]
        if gradient_length(tr) is not None:
            section += [f"![gradient against lag, {tr.name}]({rel(figs['gradients'])}) "
                        f"![learning curves, {tr.name}]({rel(figs['curves'])})"]
        parts.append("\n\n".join(section))
    costs_path = study / "costs.json"
    costs = json.loads(costs_path.read_text()) if costs_path.is_file() else None
    parts.append("#### Cells compared (the seed article's table, measured)\n\n"
                 + comparison_markdown(tasks, costs))
    parts.append("#### Against published results\n\n" + markdown_table(
        ["finding", "source", "ours", "verdict"], published_rows({t.name: t for t in tasks})))
    return "\n\n".join(parts) + "\n"


REPORT_TITLE = ("long-range study, first protocol (retired: its answers were set by its "
                "protocol; the second protocol is gru_jax.proj.long_range.design)")


def write_study_report(study: str | os.PathLike, *, reduced: bool = False,
                       readme_dir: str | os.PathLike = ".") -> str:
    """Figures, runs.csv, manifest.json and report.md into `study`; returns the markdown
    of `study_markdown`."""
    study = Path(study)
    tasks = load_study(study)
    title = REPORT_TITLE + (" (reduced grid)" if reduced else "")
    for tr in tasks:
        figs = _figures(study, tr)
        figures.phase_figure(tr, figs["phase"], title)
        figures.boundary_figure(tr, figs["boundary"], title)
        if (t_grad := gradient_length(tr)) is not None:
            figures.gradient_figure(tr, figs["gradients"], title, t_grad)
            figures.curves_figure(tr, figs["curves"], title, t_grad)
    (study / "manifest.json").write_text(json.dumps(manifest(tasks, reduced), indent=2) + "\n")
    write_csv(run_rows(tasks), study / "runs.csv", CSV_FIELDS)
    text = study_markdown(study, tasks, reduced=reduced, readme_dir=readme_dir)
    (study / "report.md").write_text(f"# {title}\n\n{text}")
    return text


def replace_readme_section(readme: str, section: str) -> str:
    """`readme` with its long-range section (between README_BEGIN and README_END) replaced."""
    return replace_section(readme, README_BEGIN, README_END, section)
