"""The long-range study's report: phase diagrams, boundary curves, gradient against lag,
learning curves, the cell comparison and the published-results tables, and the README
section, all from the committed runs of a study folder.

A study folder holds one sweep folder per task (``results/long_range/adding``, ``.../copy``),
each with ``sweep.json`` (the whole grid) and one run summary in ``<point>/`` per finished
run. A grid point is (arm, hidden size, sequence length) with one run per seed; it is

* run: some seeds finished; "solved" there means at least half of its seeds solved;
* pruned: the sweep did not run it because every seed failed at the next shorter length
  (`gru_jax.sweep.prune_reason`), so it counts as unsolved;
* pending: not run yet (the sweep is still going, or was stopped): shown blank.

The gradient horizon (`gru_jax.diagnostics.grad_horizon`) is the largest lag k at which
||dL/dh_{T-1-k}|| stays above HORIZON_FRACTION of ||dL/dh_{T-1}||; the report shows it at
initialisation and as the median over the evals of training, as TensorBoard does.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gru_jax.harness.diagnostics import HORIZON_FRACTION
from gru_jax.harness.files import SWEEP_FILE
from gru_jax.harness.report import markdown_table, replace_section
from gru_jax.harness.summary import RunSummary, read_summary
from gru_jax.harness.sweep import point_names, prune_reason

# arm -> the model overrides that make it (chrono: the GRU's update-gate bias ~ log U[1, T-1]).
ARM_OVERRIDES = {
    "gru": {"model.cell": "gru", "model.chrono": False},
    "chrono-gru": {"model.cell": "gru", "model.chrono": True},
    "lstm": {"model.cell": "lstm", "model.chrono": False},
    "rnn": {"model.cell": "rnn", "model.chrono": False},
    "mingru": {"model.cell": "mingru", "model.chrono": False},
}
ARMS = tuple(ARM_OVERRIDES)
ARM_COLORS = {"gru": "C0", "chrono-gru": "C9", "lstm": "C1", "rnn": "C3", "mingru": "C2"}
README_BEGIN, README_END = "<!-- long-range:begin -->", "<!-- long-range:end -->"
CURVE_HIDDEN = 64  # the hidden size of the gradient and learning-curve figures


def study_points(hidden: Sequence[int], seq_len: Sequence[int], seeds: Sequence[int]
                 ) -> list[dict[str, Any]]:
    """A study's sweep: every arm x hidden x seq_len x seed, in increasing seq_len (the
    sweep's pruning reads the shorter lengths' results)."""
    return [{**arm, "model.hidden_size": h, "task.seq_len": t, "seed": seed}
            for t in seq_len for h in hidden for arm in ARM_OVERRIDES.values() for seed in seeds]


def arm_of(overrides: Mapping[str, Any]) -> str:
    """The study arm of a point: its cell, or chrono-<cell> with chrono initialisation."""
    cell = overrides["model.cell"]
    return f"chrono-{cell}" if overrides.get("model.chrono") else cell


@dataclass
class Point:
    """One grid point (arm, hidden, seq_len) of one task and its runs (one per seed)."""

    arm: str
    hidden: int
    seq_len: int
    seeds: int  # runs the grid asks for
    runs: list[RunSummary] = field(default_factory=list)  # finished summaries
    pruned: bool = False

    @property
    def state(self) -> str:
        return "pruned" if self.pruned else ("run" if self.runs else "pending")

    @property
    def frac_solved(self) -> float | None:
        if self.pruned:
            return 0.0
        return sum(r.solved for r in self.runs) / len(self.runs) if self.runs else None

    @property
    def solved(self) -> bool:
        return bool(self.runs) and 2 * sum(r.solved for r in self.runs) >= len(self.runs)

    @property
    def median_steps(self) -> float | None:
        steps = [r.steps_to_solve for r in self.runs if r.solved]
        return float(np.median(steps)) if steps else None


@dataclass
class TaskResults:
    """A task's sweep folder read back: its grid points and what the runs share."""

    name: str
    folder: Path
    points: dict[tuple[str, int, int], Point]
    metric: str
    solved_at: float
    baseline: float | None
    config: dict  # the base config (budget, optimiser) the grid ran under

    @property
    def hiddens(self) -> list[int]:
        return sorted({h for _, h, _ in self.points})

    @property
    def lengths(self) -> list[int]:
        return sorted({t for _, _, t in self.points})

    @property
    def arms(self) -> list[str]:
        present = {a for a, _, _ in self.points}
        return [a for a in ARMS if a in present]

    def runs(self) -> list[RunSummary]:
        return [r for p in self.points.values() for r in p.runs]

    def boundary(self, arm: str, hidden: int) -> tuple[int | None, bool]:
        """(longest seq_len solved, censored): censored when the grid's longest length is
        solved (the boundary lies beyond) or pending points remain above the last solved."""
        solved = [t for t in self.lengths if (p := self.points.get((arm, hidden, t)))
                  and p.solved]
        best = max(solved) if solved else None
        above = [self.points[(arm, hidden, t)] for t in self.lengths
                 if (arm, hidden, t) in self.points and (best is None or t > best)]
        censored = best == self.lengths[-1] or any(p.state == "pending" for p in above)
        return best, censored


def load_task(folder: str | os.PathLike) -> TaskResults:
    """A task's sweep folder: the grid from sweep.json, each point's finished runs."""
    folder = Path(folder)
    grid = json.loads((folder / SWEEP_FILE).read_text())
    overrides = [p["overrides"] for p in grid["points"]]
    names = point_names(overrides)
    points: dict[tuple[str, int, int], Point] = {}
    info = None
    for i, (o, name) in enumerate(zip(overrides, names, strict=True)):
        key = (arm_of(o), int(o["model.hidden_size"]), int(o["task.seq_len"]))
        p = points.setdefault(key, Point(*key, seeds=0))
        p.seeds += 1
        s = read_summary(folder / name)
        if s is not None and s.finished:
            p.runs.append(s)
            info = info or s
        elif s is None and prune_reason(i, overrides, names, folder, "task.seq_len"):
            p.pruned = True
    if info is None:
        raise ValueError(f"{folder}: no finished run yet")
    return TaskResults(name=info.config["task"]["name"], folder=folder, points=points,
                       metric=info.metric, solved_at=info.task.solved_at,
                       baseline=info.task.baseline, config=grid.get("base_config") or {})


def load_study(study: str | os.PathLike) -> list[TaskResults]:
    """Every task folder (with a sweep.json) of a study folder, in name order."""
    study = Path(study)
    tasks = [load_task(d) for d in sorted(study.iterdir()) if (d / SWEEP_FILE).is_file()]
    if not tasks:
        raise ValueError(f"{study}: no task folder with a {SWEEP_FILE}")
    return tasks


# --- figures -----------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def phase_figure(tr: TaskResults, path: Path, title: str) -> None:
    """Per arm, over hidden x length: fraction of seeds solved (colour) and the median
    step at which they solved (number); pruned points hatched, pending ones blank."""
    plt = _plt()
    arms, hs, ts = tr.arms, tr.hiddens, tr.lengths
    fig, axes = plt.subplots(1, len(arms), figsize=(2.6 * len(arms) + 1, 2.9), sharey=True,
                             squeeze=False)
    for ax, arm in zip(axes[0], arms, strict=True):
        frac = np.full((len(hs), len(ts)), np.nan)
        for i, h in enumerate(hs):
            for j, t in enumerate(ts):
                p = tr.points.get((arm, h, t))
                if p is None:
                    continue
                if p.frac_solved is not None:
                    frac[i, j] = p.frac_solved
                if p.pruned:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                               hatch="///", lw=0, color="0.6"))
                elif p.median_steps is not None:
                    ax.text(j, i, f"{p.median_steps:.0f}", ha="center", va="center",
                            fontsize=7, color="w" if p.frac_solved > 0.5 else "k")
        im = ax.imshow(frac, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(ts)), [str(t) for t in ts], fontsize=7)
        ax.set_yticks(range(len(hs)), [str(h) for h in hs], fontsize=7)
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("sequence length T", fontsize=8)
    axes[0][0].set_ylabel("hidden size", fontsize=8)
    fig.colorbar(im, ax=axes[0].tolist(), label="fraction of seeds solved", shrink=0.9)
    fig.suptitle(f"{title}: {tr.name}, fraction of seeds solved (colour), median steps to "
                 "solve (number), hatched = pruned (failed at a shorter T)", fontsize=9, y=1.04)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def fit_boundary(hiddens: Sequence[int], bounds: Sequence[int]) -> tuple[float, float] | None:
    """Least squares of log2 T* = a + b log2 H over uncensored points: (a, b), or None
    with fewer than two distinct hidden sizes. T* ~ 2^a H^b."""
    if len(set(hiddens)) < 2:
        return None
    b, a = np.polyfit(np.log2(hiddens), np.log2(bounds), 1)
    return float(a), float(b)


def boundaries(tr: TaskResults) -> dict[str, list[tuple[int, int | None, bool]]]:
    """arm -> [(hidden, longest length solved or None, censored)]."""
    return {arm: [(h, *tr.boundary(arm, h)) for h in tr.hiddens] for arm in tr.arms}


def boundary_fits(tr: TaskResults) -> dict[str, tuple[float, float] | None]:
    """arm -> `fit_boundary` over its hidden sizes with a boundary inside the grid."""
    fits = {}
    for arm, rows in boundaries(tr).items():
        inside = [(h, t) for h, t, cens in rows if t is not None and not cens]
        fits[arm] = fit_boundary(*map(list, zip(*inside, strict=True))) if inside else None
    return fits


def boundary_figure(tr: TaskResults, path: Path, title: str) -> dict[str, Any]:
    """Longest length solved against hidden size per arm (open markers: censored, the
    boundary lies at or beyond), with the power-law fit over the uncensored points.
    Returns arm -> (a, b) of each fit (or None)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    fits = boundary_fits(tr)
    floor = tr.lengths[0] / 2  # where "solves no length of the grid" is drawn
    for k, (arm, rows) in enumerate(boundaries(tr).items()):
        color = ARM_COLORS.get(arm, f"C{k}")
        # Known points only: a hidden size that solved nothing yet but may is left out.
        known = [(h * (1 + 0.03 * (k - 2)), t or floor, cens)  # side by side where equal
                 for h, t, cens in rows if t is not None or not cens]
        if known:
            ax.plot([x for x, _, _ in known], [y for _, y, _ in known], "-", color=color,
                    alpha=0.5)
        for x, y, cens in known:
            ax.plot(x, y, "^" if cens else "o", color=color,
                    mfc="none" if cens or y == floor else color)
        label = arm
        if fits[arm]:
            a, b = fits[arm]
            hh = np.array([h for h, t, cens in rows if t is not None and not cens])
            ax.plot(hh, 2 ** a * hh ** b, ":", color=color)
            label += f" (T* ~ H^{round(b, 2) + 0.0:.2f})"
        ax.plot([], [], "o-", color=color, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(tr.hiddens, [str(h) for h in tr.hiddens])
    ax.set_yticks([floor, *tr.lengths], ["none", *(str(t) for t in tr.lengths)])
    ax.minorticks_off()
    ax.set_xlabel("hidden size H")
    ax.set_ylabel("longest T solved")
    ax.set_title(f"{title}: {tr.name}; triangles: solved at the longest length run so far",
                 fontsize=8)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return fits


def curve_hidden(tr: TaskResults) -> int:
    """CURVE_HIDDEN if the grid has it, else its largest hidden size."""
    return CURVE_HIDDEN if CURVE_HIDDEN in tr.hiddens else tr.hiddens[-1]


def gradient_length(tr: TaskResults, hidden: int | None = None) -> int | None:
    """The longest length at which every arm has a finished run at `hidden`
    (default `curve_hidden`): where the gradient and learning-curve figures are drawn."""
    hidden = hidden or curve_hidden(tr)
    ok = [t for t in tr.lengths if all(
        (p := tr.points.get((a, hidden, t))) and p.runs for a in tr.arms)]
    return max(ok) if ok else None


def _median_curve(curves: list[list[float]]) -> np.ndarray:
    """Median over runs of ||dL/dh_t|| / ||dL/dh_{T-1}||, against lag (index 0 = t = T-1)."""
    rel = [np.asarray(c, np.float64)[::-1] / c[-1] for c in curves if c and c[-1]]
    return np.median(np.stack(rel), axis=0)


def gradient_figure(tr: TaskResults, path: Path, title: str, seq_len: int,
                    hidden: int | None = None) -> None:
    """||dL/dh_t|| relative to its last step, against lag, per arm: at initialisation
    (dashed) and after training (solid), median over seeds; the horizon threshold."""
    plt = _plt()
    hidden = hidden or curve_hidden(tr)
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    n = 0
    for k, arm in enumerate(tr.arms):
        runs = tr.points[(arm, hidden, seq_len)].runs
        n = max(n, len(runs))
        color = ARM_COLORS.get(arm, f"C{k}")
        init = _median_curve([r.grad_norms_init for r in runs])
        ax.plot(init, "--", color=color, lw=1)
        ax.plot(_median_curve([r.grad_norms for r in runs]), "-", color=color, lw=1.2,
                label=arm)
    ax.axhline(HORIZON_FRACTION, color="k", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("lag k = T-1-t")
    ax.set_ylabel("||dL/dh_t|| / ||dL/dh_{T-1}||")
    ax.set_title(f"{title}: {tr.name}, T={seq_len}, H={hidden}; dashed at init, solid "
                 f"trained; median over {n} seeds", fontsize=8)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def curves_figure(tr: TaskResults, path: Path, title: str, seq_len: int,
                  hidden: int | None = None) -> None:
    """Eval metric against step per arm: median over seeds and the min-max band (a run
    that stopped solved holds its last value)."""
    plt = _plt()
    hidden = hidden or curve_hidden(tr)
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for k, arm in enumerate(tr.arms):
        runs = tr.points[(arm, hidden, seq_len)].runs
        steps = sorted({e["step"] for r in runs for e in r.eval_history})
        if not steps:
            continue
        grid = np.array([[_value_at(r, s, tr.metric) for s in steps] for r in runs])
        color = ARM_COLORS.get(arm, f"C{k}")
        ax.plot(steps, np.nanmedian(grid, 0), color=color, label=f"{arm} ({len(runs)} seeds)")
        ax.fill_between(steps, np.nanmin(grid, 0), np.nanmax(grid, 0), color=color,
                        alpha=0.15, lw=0)
    ax.axhline(tr.solved_at, color="k", lw=0.6, ls=":")
    if tr.metric == "mse":
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"eval {tr.metric}")
    ax.set_title(f"{title}: {tr.name}, T={seq_len}, H={hidden}; median and range over "
                 "seeds", fontsize=8)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _value_at(run: RunSummary, step: int, metric: str) -> float:
    """The run's eval metric at `step`, or its last one before (NaN before its first)."""
    v = math.nan
    for e in run.eval_history:
        if e["step"] > step:
            break
        v = e[metric] if e[metric] is not None else math.nan
    return v


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


def best_boundary(tr: TaskResults, arm: str) -> tuple[int | None, bool, int | None]:
    """(longest length solved at any hidden size, censored, the hidden size); censored
    when any hidden size's boundary may still lie further out."""
    rows = boundaries(tr)[arm]
    solved = [(t, h) for h, t, _ in rows if t is not None]
    t, h = max(solved) if solved else (None, None)
    return t, any(c for _, _, c in rows), h


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


def equal_params_hidden(tr: TaskResults, ref: tuple[str, int] = ("gru", CURVE_HIDDEN)
                        ) -> dict[str, int]:
    """arm -> the grid hidden size whose parameter count is nearest (in ratio) to the
    reference arm's at its hidden size."""
    params = {}
    for (arm, h, _), p in tr.points.items():
        if p.runs:
            params[(arm, h)] = p.runs[0].num_params
    target = params.get(ref)
    out = {}
    for arm in tr.arms:
        sizes = [h for (a, h) in params if a == arm]
        if target is None or not sizes:
            out[arm] = ref[1]
            continue
        out[arm] = min(sizes, key=lambda h: abs(math.log(params[(arm, h)] / target)))
    return out


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


def write_study_report(study: str | os.PathLike, *, reduced: bool = False,
                       readme_dir: str | os.PathLike = ".") -> str:
    """Figures, runs.csv, manifest.json and report.md into `study`; returns the markdown
    of `study_markdown`."""
    import csv

    study = Path(study)
    tasks = load_study(study)
    title = "long-range study" + (" (reduced grid)" if reduced else "")
    for tr in tasks:
        figs = _figures(study, tr)
        phase_figure(tr, figs["phase"], title)
        boundary_figure(tr, figs["boundary"], title)
        if (t_grad := gradient_length(tr)) is not None:
            gradient_figure(tr, figs["gradients"], title, t_grad)
            curves_figure(tr, figs["curves"], title, t_grad)
    (study / "manifest.json").write_text(json.dumps(manifest(tasks, reduced), indent=2) + "\n")
    with open(study / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(run_rows(tasks))
    text = study_markdown(study, tasks, reduced=reduced, readme_dir=readme_dir)
    (study / "report.md").write_text(f"# {title}\n\n{text}")
    return text


def replace_readme_section(readme: str, section: str) -> str:
    """`readme` with its long-range section (between README_BEGIN and README_END) replaced."""
    return replace_section(readme, README_BEGIN, README_END, section)
