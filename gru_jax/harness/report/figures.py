"""The one figure module: every report's figures, in one style (matplotlib, no pyplot).

Two kinds of figure, each drawn here only:

* `heatmap_panels`: one panel per cell (or arm), a value over hidden size x
  sequence length, with a note in each box and optional hatching;
* `line_panels`: one panel or several of `Line`s (curves, gradients against lag,
  boundaries, forecasts), with optional min-max bands and reference lines.

The reports compute what to draw; this module decides how it looks (sizes, fonts,
colours: `color`, dpi: DPI). `matplotlib.figure.Figure` keeps no global state and
needs no GUI backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DPI = 110
TITLE_SIZE, LABEL_SIZE, TICK_SIZE, NOTE_SIZE, LEGEND_SIZE = 9, 8, 7, 7, 7
# one colour per cell / arm in every figure (matplotlib's tab10 names)
COLORS = {"gru": "C0", "chrono-gru": "C9", "lstm": "C1", "rnn": "C3", "mingru": "C2"}


def color(name: str, k: int = 0) -> str:
    """The colour of cell or arm `name` (the k-th unknown one: C{k + 4})."""
    return COLORS.get(name, f"C{(k + 4) % 10}")


def figure(width: float, height: float):
    """An empty Figure in the reports' layout (constrained, off screen)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: str | Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return Path(path)


@dataclasses.dataclass
class Grid:
    """One heatmap panel: values [rows, cols] (NaN: blank), a note per box, and the
    boxes to hatch (e.g. pruned grid points)."""

    values: Any  # float array [rows, cols]
    notes: Sequence[Sequence[str]] | None = None
    hatched: Any = None  # bool array [rows, cols] or None


def _norm(grids: Sequence[Grid], log_scale: bool, vmin, vmax):
    import numpy as np
    from matplotlib import colors

    finite = np.concatenate([np.ravel(g.values)[np.isfinite(np.ravel(g.values))]
                             for g in grids] or [np.zeros(0)])
    if log_scale:
        finite = finite[finite > 0]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if log_scale and finite.size and hi > lo:
        return colors.LogNorm(lo, hi)
    return colors.Normalize(lo, hi if hi > lo else lo + 1.0)


def heatmap_panels(panels: Mapping[str, Grid], xticks: Sequence, yticks: Sequence, *,
                   title: str, path: str | Path, xlabel: str = "sequence length",
                   ylabel: str = "hidden size", cmap: str = "viridis", log_scale: bool = False,
                   vmin: float | None = None, vmax: float | None = None,
                   colorbar_label: str = "", box_width: float = 0.9) -> Path:
    """One panel per entry of `panels` (its title: the key), one shared colour scale;
    `box_width` inches per column (room for the notes)."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    norm = _norm(list(panels.values()), log_scale, vmin, vmax)
    cm = colormaps[cmap].with_extremes(bad="white")  # missing points stay blank
    fig = figure(1.2 + (box_width * len(xticks) + 1.0) * len(panels), 1.6 + 0.55 * len(yticks))
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    image = None
    for ax, (name, g) in zip(axes, panels.items(), strict=True):
        v = np.asarray(g.values, float)
        masked = np.ma.masked_invalid(np.where(v > 0, v, np.nan) if log_scale else v)
        image = ax.imshow(masked, origin="lower", aspect="auto", cmap=cm, norm=norm)
        for i in range(v.shape[0]):
            for j in range(v.shape[1]):
                if g.hatched is not None and g.hatched[i][j]:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                           lw=0, color="0.6"))
                text = g.notes[i][j] if g.notes is not None else ""
                if text:
                    dark = np.isfinite(v[i, j]) and sum(cm(norm(v[i, j]))[:3]) < 1.5
                    ax.text(j, i, text, ha="center", va="center", fontsize=NOTE_SIZE,
                            color="white" if dark else "black")
        ax.set_xticks(range(len(xticks)), [str(x) for x in xticks], fontsize=TICK_SIZE)
        ax.set_yticks(range(len(yticks)), [str(y) for y in yticks], fontsize=TICK_SIZE)
        ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
        ax.set_title(str(name), fontsize=TITLE_SIZE)
    axes[0].set_ylabel(ylabel, fontsize=LABEL_SIZE)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.9, label=colorbar_label)
    fig.suptitle(title, fontsize=TITLE_SIZE)
    return save(fig, path)


@dataclasses.dataclass
class Line:
    """One curve: y [n] against x [n]; `band` (lo [n], hi [n]) shades a range around it.
    Lines with the same `label` share one legend entry; `order` sorts the legend."""

    x: Sequence[float]
    y: Sequence[float]
    color: str = "C0"
    style: str = "-"
    marker: str | None = None
    filled: bool = True  # marker face filled (False: open markers)
    label: str | None = None
    band: tuple[Sequence[float], Sequence[float]] | None = None
    lw: float = 1.2
    alpha: float = 0.9
    order: Any = 0


@dataclasses.dataclass
class Axes:
    """How the panels' axes read: labels, log scales (True or a base), ticks, and
    reference lines ((value, style, name); name None: unlabelled)."""

    xlabel: str = ""
    ylabel: str = ""
    logx: bool | int = False
    logy: bool | int = False
    xticks: tuple[Sequence, Sequence[str]] | None = None
    yticks: tuple[Sequence, Sequence[str]] | None = None
    hlines: Sequence[tuple[float, str, str | None]] = ()
    vlines: Sequence[float] = ()


def _scale(set_scale, log: bool | int) -> None:
    if log:
        set_scale("log", **({} if log is True else {"base": log}))


def line_panels(panels: Mapping[str, Sequence[Line]], axes_spec: Axes, *, title: str,
                path: str | Path, panel_size: tuple[float, float] = (4.2, 3.6),
                legend: str = "inside") -> Path:
    """One panel per entry of `panels` (titled by its key; "" for none), shared y.

    `legend`: "inside" (the last panel's best corner), "outside" (right of the
    last panel), or "none"; no legend is drawn with more than 30 entries.
    """
    width, height = panel_size
    fig = figure(0.4 + width * len(panels), height)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    handles: dict[str, tuple[Any, Any]] = {}
    for ax, (name, lines) in zip(axes, panels.items(), strict=True):
        for ln in lines:
            (h,) = ax.plot(ln.x, ln.y, linestyle=ln.style or "none", color=ln.color,
                           marker=ln.marker, mfc=ln.color if ln.filled else "none", lw=ln.lw,
                           alpha=ln.alpha)
            if ln.band is not None:
                ax.fill_between(ln.x, *ln.band, color=ln.color, alpha=0.15, lw=0)
            if ln.label is not None and ln.label not in handles:
                handles[ln.label] = (ln.order, h)
        for y, style, ref in axes_spec.hlines:
            ax.axhline(y, color="gray", lw=0.8, linestyle=style)
            if ref:
                ax.annotate(ref, (1, y), xycoords=("axes fraction", "data"), fontsize=6,
                            color="gray", ha="right", va="bottom")
        for x in axes_spec.vlines:
            ax.axvline(x, color="gray", ls=":", lw=1)
        _scale(ax.set_xscale, axes_spec.logx)
        _scale(ax.set_yscale, axes_spec.logy)
        if axes_spec.xticks is not None:
            ax.set_xticks(*axes_spec.xticks)
        if axes_spec.yticks is not None:
            ax.set_yticks(*axes_spec.yticks)
        if axes_spec.xticks is not None or axes_spec.yticks is not None:
            ax.minorticks_off()
        if name:
            ax.set_title(str(name), fontsize=TITLE_SIZE)
        ax.set_xlabel(axes_spec.xlabel, fontsize=LABEL_SIZE)
        ax.tick_params(labelsize=TICK_SIZE)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(axes_spec.ylabel, fontsize=LABEL_SIZE)
    if handles and len(handles) <= 30 and legend != "none":
        items = sorted(handles.items(), key=lambda kv: kv[1][0])
        where = (dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
                 if legend == "outside" else dict(loc="best"))
        axes[-1].legend([h for _, (_, h) in items], [lbl for lbl, _ in items],
                        fontsize=LEGEND_SIZE, **where)
    fig.suptitle(title, fontsize=TITLE_SIZE)
    return save(fig, path)
