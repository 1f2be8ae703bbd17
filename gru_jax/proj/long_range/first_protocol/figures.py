"""The long-range study's figures, drawn by `gru_jax.harness.report.figures` (one style):
what each shows is computed here from `results.TaskResults`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gru_jax.harness.diagnostics import HORIZON_FRACTION
from gru_jax.harness.report.figures import Axes, Grid, Line, color, heatmap_panels, line_panels
from gru_jax.proj.long_range.first_protocol.results import (
    TaskResults,
    boundaries,
    boundary_fits,
    curve_hidden,
    median_curve,
    value_at,
)


def phase_figure(tr: TaskResults, path: Path, title: str) -> Path:
    """Per arm, over hidden x length: fraction of seeds solved (colour) and the median
    step at which they solved (number); pruned points hatched, pending ones blank."""
    hs, ts = tr.hiddens, tr.lengths
    panels = {}
    for arm in tr.arms:
        frac = np.full((len(hs), len(ts)), np.nan)
        notes = [["" for _ in ts] for _ in hs]
        hatched = np.zeros((len(hs), len(ts)), bool)
        for (a, h, t), p in tr.points.items():
            if a != arm:
                continue
            i, j = hs.index(h), ts.index(t)
            if p.frac_solved is not None:
                frac[i, j] = p.frac_solved
            hatched[i, j] = p.pruned
            if not p.pruned and p.median_steps is not None:
                notes[i][j] = f"{p.median_steps:.0f}"
        panels[arm] = Grid(frac, notes, hatched)
    return heatmap_panels(
        panels, ts, hs, xlabel="sequence length T", vmin=0.0, vmax=1.0, path=path, box_width=0.3,
        colorbar_label="fraction of seeds solved",
        title=f"{title}: {tr.name}, fraction of seeds solved (colour), median steps to solve "
              "(number), hatched = pruned (failed at a shorter T)")


def boundary_figure(tr: TaskResults, path: Path, title: str) -> dict[str, Any]:
    """Longest length solved against hidden size per arm (open markers: censored, the
    boundary lies at or beyond), with the power-law fit over the uncensored points.
    Returns arm -> (a, b) of each fit (or None)."""
    fits = boundary_fits(tr)
    floor = tr.lengths[0] / 2  # where "solves no length of the grid" is drawn
    lines = []
    for k, (arm, rows) in enumerate(boundaries(tr).items()):
        c = color(arm, k)
        # Known points only: a hidden size that solved nothing yet but may is left out.
        known = [(h * (1 + 0.03 * (k - 2)), t or floor, cens)  # side by side where equal
                 for h, t, cens in rows if t is not None or not cens]
        if known:
            lines.append(Line([x for x, _, _ in known], [y for _, y, _ in known], c, alpha=0.5))
        lines += [Line([x], [y], c, style="", marker="^" if cens else "o",
                       filled=not (cens or y == floor)) for x, y, cens in known]
        label = arm
        if fits[arm]:
            a, b = fits[arm]
            hh = np.array([h for h, t, cens in rows if t is not None and not cens])
            lines.append(Line(hh, 2 ** a * hh ** b, c, style=":"))
            label += f" (T* ~ H^{round(b, 2) + 0.0:.2f})"
        lines.append(Line([], [], c, marker="o", label=label, order=k))
    line_panels(
        {"": lines},
        Axes(xlabel="hidden size H", ylabel="longest T solved", logx=2, logy=True,
             xticks=(tr.hiddens, [str(h) for h in tr.hiddens]),
             yticks=([floor, *tr.lengths], ["none", *(str(t) for t in tr.lengths)])),
        title=f"{title}: {tr.name}; triangles: solved at the longest length run so far",
        path=path, panel_size=(5.2, 3.6))
    return fits


def gradient_figure(tr: TaskResults, path: Path, title: str, seq_len: int,
                    hidden: int | None = None) -> Path:
    """||dL/dh_t|| relative to its last step, against lag, per arm: at initialisation
    (dashed) and after training (solid), median over seeds; the horizon threshold."""
    hidden = hidden or curve_hidden(tr)
    lines, n = [], 0
    for k, arm in enumerate(tr.arms):
        runs = tr.points[(arm, hidden, seq_len)].runs
        n = max(n, len(runs))
        for curves, style, label in (([r.grad_norms_init for r in runs], "--", None),
                                     ([r.grad_norms for r in runs], "-", arm)):
            y = median_curve(curves)
            lines.append(Line(np.arange(y.size), y, color(arm, k), style=style, label=label,
                              order=k, lw=1.0 if label is None else 1.2))
    return line_panels(
        {"": lines},
        Axes(xlabel="lag k = T-1-t", ylabel="||dL/dh_t|| / ||dL/dh_{T-1}||", logy=True,
             hlines=[(HORIZON_FRACTION, ":", None)]),
        title=f"{title}: {tr.name}, T={seq_len}, H={hidden}; dashed at init, solid trained; "
              f"median over {n} seeds", path=path, panel_size=(5.6, 3.6))


def curves_figure(tr: TaskResults, path: Path, title: str, seq_len: int,
                  hidden: int | None = None) -> Path:
    """Eval metric against step per arm: median over seeds and the min-max band (a run
    that stopped solved holds its last value)."""
    hidden = hidden or curve_hidden(tr)
    lines = []
    for k, arm in enumerate(tr.arms):
        runs = tr.points[(arm, hidden, seq_len)].runs
        steps = sorted({e["step"] for r in runs for e in r.eval_history})
        if not steps:
            continue
        grid = np.array([[value_at(r, s, tr.metric) for s in steps] for r in runs])
        lines.append(Line(steps, np.nanmedian(grid, 0), color(arm, k), order=k,
                          label=f"{arm} ({len(runs)} seeds)",
                          band=(np.nanmin(grid, 0), np.nanmax(grid, 0))))
    return line_panels(
        {"": lines},
        Axes(xlabel="step", ylabel=f"eval {tr.metric}", logy=tr.metric == "mse",
             hlines=[(tr.solved_at, ":", None)]),
        title=f"{title}: {tr.name}, T={seq_len}, H={hidden}; median and range over seeds",
        path=path, panel_size=(5.6, 3.6))
