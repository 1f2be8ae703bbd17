"""The number formats and files the reports share, and the one markdown table writer
(`gru_jax.bench.tables.markdown_table`, where the benchmarks can import it too)."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gru_jax.bench.tables import markdown_table  # noqa: F401 - the reports' table writer
from gru_jax.harness.errors import WorkdirError


def num(x: Any) -> float | None:
    """A finite float, or None (missing, null, NaN, non-numeric)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def fmt(x: Any, digits: int = 4) -> str:
    """A table cell: — for missing, yes/no, `digits` significant digits, | escaped."""
    if x is None or x == "":
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if math.isfinite(x) else str(x)
    return str(x).replace("|", "\\|")


def mib(x: Any) -> str:
    """Bytes as MiB (4 significant digits), — for missing."""
    v = num(x)
    return "—" if v is None else f"{v / 2**20:.4g}"


def median_range(values: Sequence[float], fmt=lambda v: f"{v:.3g}") -> str:
    """'median (min–max)', or the one value, or —."""
    if not values:
        return "—"
    med = fmt(statistics.median(values))
    if len(values) == 1 or min(values) == max(values):
        return med
    return f"{med} ({fmt(min(values))}–{fmt(max(values))})"


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | Path,
              fields: Sequence[str]) -> None:
    """One line per row, columns `fields` (None written as an empty cell)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in fields})


def replace_section(text: str, begin: str, end: str, body: str) -> str:
    """`text` with what lies between the markers `begin` and `end` replaced by `body` (the
    markers stay): how the README's rendered sections are written and checked."""
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise WorkdirError(f"no {begin} ... {end} markers to render into")
    return f"{head}{begin}\n{body.strip()}\n{end}{tail}"
