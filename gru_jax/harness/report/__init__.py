"""Reports from run summaries: one loader (`rows`), one table writer (`tables`), one
figure module (`figures`), and the sweep report built on them (`sweep`).

The sweep, search, long-range and series reports all read runs through
`rows.load_runs` / `rows.read_runs` and write tables with `tables.markdown_table`;
this package's top level is the sweep report (``scripts/report.py --workdir``).
"""

from gru_jax.harness.report.rows import COLUMNS, collect, load_runs, read_runs
from gru_jax.harness.report.rows import run_row as _row  # noqa: F401 - the tests' name
from gru_jax.harness.report.sweep import (
    _final_value,  # noqa: F401 - heatmap cell values, checked by the tests
    _steps_value,  # noqa: F401
    comparison,
    comparison_markdown,
    markdown,
    runs_markdown,
    write_figures,
    write_report,
)
from gru_jax.harness.report.tables import markdown_table, replace_section, write_csv

__all__ = [
    "COLUMNS", "collect", "comparison", "comparison_markdown", "load_runs", "markdown",
    "markdown_table", "read_runs", "replace_section", "runs_markdown", "write_csv",
    "write_figures", "write_report",
]
