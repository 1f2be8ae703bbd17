"""The second protocol's figures (drawn by gru_jax.harness.report.figures).

* `steps_figure`: steps-to-solve against T, log-log, one panel per arm, one line per
  hidden size (median over seeds where every seed solved), each run a marker (open:
  unsolved, drawn at its cap), and the arm's fitted power law.
* `budget_figure`: T*(budget) against hidden size, one panel per arm: per lineage a
  vertical bar from the longest solved to the shortest failed length, one colour
  per budget (an open side: a one-rung stub ending in an arrow head).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from gru_jax.harness.report import figures as fig
from gru_jax.proj.long_range import design
from gru_jax.proj.long_range.analysis import AlphaFit, Bracket
from gru_jax.proj.long_range.searches import Key, Run, first_solve, reread

SIZE_COLORS = {16: "C0", 32: "C1", 64: "C2", 128: "C3", 256: "C4"}
BUDGET_STYLE = ("C0", "C1", "C2", "C3")


def _ticks(values: Sequence[int]):
    return list(values), [str(v) for v in values]


def steps_figure(task: str, by_arm: Mapping[str, Sequence[Run]],
                 alphas: Mapping[str, AlphaFit | None], path: Path, title: str) -> Path:
    panels = {}
    lengths = sorted({r.seq_len for rs in by_arm.values() for r in rs})
    for arm, runs in by_arm.items():
        lines = []
        by_h: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
        for r in runs:
            d = reread(r)
            if d is None:
                continue
            s = first_solve(r) if d else r.last_step
            by_h[r.hidden][r.seq_len].append(s if d else None)
            lines.append(fig.Line([r.seq_len], [s], color=SIZE_COLORS.get(r.hidden, "C7"),
                                  style="", marker="o", filled=bool(d), alpha=0.6))
        for h, pts in sorted(by_h.items()):
            xs = [t for t, v in sorted(pts.items()) if all(s is not None for s in v)]
            lines.append(fig.Line(xs, [statistics.median(pts[t]) for t in xs],
                                  color=SIZE_COLORS.get(h, "C7"), label=f"H={h}", order=h))
        a = alphas.get(arm)
        if a is not None:  # the fitted power law, per hidden size
            xs = sorted({r.seq_len for r in runs})
            for h in sorted(by_h):
                lines.append(fig.Line(xs, [a.steps(t, h) for t in xs],
                                      color=SIZE_COLORS.get(h, "C7"), style="--", lw=0.8))
        panels[f"{arm}: alpha {a.alpha.value:.2f}" if a else arm] = lines
    axes = fig.Axes(xlabel="T", ylabel="steps to solve (open: unsolved at cap)", logx=2,
                    logy=10, xticks=_ticks([t for t in lengths if t in design.LADDER[::2]]))
    return fig.line_panels(panels, axes, title=title, path=path, panel_size=(3.0, 3.0),
                           legend="outside")


def budget_figure(task: str, by_budget: Mapping[int, Mapping[Key, Bracket]],
                  arms: Sequence[str], top: Mapping[tuple[str, int], int], path: Path,
                  title: str) -> Path:
    """top: {(arm, hidden size): the longest T searched there}."""
    hiddens = sorted({h for _, h in top})
    panels = {}
    shift = {b: 1 + 0.06 * (i - (len(by_budget) - 1) / 2) for i, b in enumerate(by_budget)}
    for arm in arms:
        lines = []
        for i, (budget, brackets) in enumerate(by_budget.items()):
            c = BUDGET_STYLE[i % len(BUDGET_STYLE)]
            for (a, h, seed), (lo, hi) in brackets.items():
                if a != arm or (lo is None and hi is None):
                    continue
                x = h * shift[budget] * (1 + 0.02 * (seed - 1))
                # an open side: a stub one rung long, and an arrow head at its end
                y0 = lo if lo is not None else hi / math.sqrt(2)
                y1 = hi if hi is not None else lo * math.sqrt(2)
                lines.append(fig.Line([x, x], [y0, y1], color=c, lw=2.0, alpha=0.7,
                                      label=f"budget {budget}", order=budget))
                if hi is None or lo is None:
                    lines.append(fig.Line([x], [y1 if hi is None else y0], color=c,
                                          style="", marker="^" if hi is None else "v"))
        hs = sorted({h for b in by_budget.values() for (a, h, _) in b if a == arm})
        lines.append(fig.Line(hs, [top[arm, h] for h in hs], color="gray", style=":", lw=0.8,
                              marker="_" if len(hs) == 1 else None, label="top searched",
                              order=0))
        panels[arm] = lines
    axes = fig.Axes(xlabel="hidden size", ylabel="T*: [longest solved, shortest failed]",
                    logx=2, logy=2, xticks=_ticks(hiddens))
    return fig.line_panels(panels, axes, title=title, path=path, panel_size=(2.6, 3.0),
                           legend="outside")
