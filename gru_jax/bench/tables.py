"""The one markdown table writer, for the benchmarks and the harness's reports alike
(the library cannot import the harness, so it lives here; `gru_jax.harness.report.tables`
re-exports it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]],
                   align: str | None = None) -> str:
    """A markdown table; cells are written with str(). `align`: one letter per column,
    "l" (default) or "r" (right-aligned numbers), e.g. "lrr"."""
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align: one of l, r per column ({len(header)}), got {align!r}")
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in align)
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def table_lines(header: Sequence[str], rows: Iterable[Sequence[Any]], with_header: bool = True,
                align: str | None = None) -> str:
    """`markdown_table`, or without `with_header` its row lines alone: a benchmark prints
    the header first and each row as it is measured."""
    table = markdown_table(header, rows, align)
    return table if with_header else "\n".join(table.split("\n")[2:])
