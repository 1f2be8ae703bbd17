"""Writes a sweep folder's report: results.csv, results.md and figures (*.png).

    python scripts/report.py --workdir=runs/adding

Reads every DIR/*/summary.json (finished, failed or still partial runs alike), so
it can be run at any time while a sweep is going. Prints the tables of
results.md; the runs' curves are in TensorBoard: tensorboard --logdir DIR
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from gru_jax import report  # noqa: E402
from gru_jax.errors import WorkdirError  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Sweep folder (or a single run's folder).")
flags.mark_flag_as_required("workdir")


def _die(msg) -> None:
    print(f"report.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def _parse(argv: list[str]) -> list[str]:
    try:  # absl would exit 1 with usage text; the contract is one line, exit 2
        return flags.FLAGS(argv)
    except flags.Error as e:
        _die(e)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _die(f"unexpected arguments: {' '.join(argv[1:])}")
    workdir = _WORKDIR.value
    try:
        text = report.write_report(workdir)
    except (WorkdirError, OSError) as e:
        _die(e)
    print(text)
    print(f"Wrote results.csv, results.md and the figures (*.png) into {workdir}")
    print(f"TensorBoard (training curves of every run): tensorboard --logdir {workdir}")


if __name__ == "__main__":
    app.run(main, flags_parser=_parse)
