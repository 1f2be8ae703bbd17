"""Writes a sweep folder's report: results.csv, results.md and figures (*.png).

    python scripts/report.py --workdir=runs/adding

Reads every DIR/*/summary.json (finished, failed or still partial runs alike), so
it can be run at any time while a sweep is going. Prints the tables of
results.md; the runs' curves are in TensorBoard: tensorboard --logdir DIR

Forecasting studies (experiments/series.py): --series_results=OUT also scores
the series runs and the classical baselines on the test split into OUT
(`gru_jax.proj.series.report`), and --series_readme=README.md renders OUT into the
README between its series markers (alone, without --workdir, it only renders)::

    python scripts/report.py --workdir=runs/series --series_results=results/series
    python scripts/report.py --series_readme=README.md --series_results=results/series

The long-range study (second protocol, `gru_jax.proj.long_range.report`): --study=DIR,
the study folder (results/long_range: search/<task> the length searches of
experiments/long_range_search.py), writes report.md, runs.csv, manifest.json and the
figures into DIR/search; --study_readme=README.md also renders the README's section
between its long-range markers; --reduced labels it the reduced grid (make study)::

    python scripts/report.py --study=results/long_range --study_readme=README.md

--first_protocol: DIR holds the first protocol's task sweeps (results/long_range/{adding,
copy}; `gru_jax.proj.long_range.first_protocol.report`), re-rendered into DIR, and
--measure_costs first times every arm's training step side by side (DIR/costs.json)::

    python scripts/report.py --study=results/long_range --first_protocol
"""

from __future__ import annotations

import os
import sys

from absl import flags

from gru_jax.harness import cli, report
from gru_jax.harness.errors import WorkdirError

_WORKDIR = flags.DEFINE_string("workdir", None, "Sweep folder (or a single run's folder).")
_SERIES = flags.DEFINE_string("series_results", None,
                              "Write the forecasting results of --workdir's series runs here.")
_README = flags.DEFINE_string("series_readme", None,
                              "Render --series_results into this README's series section.")
_STUDY = flags.DEFINE_string("study", None, "A study folder: one sweep folder per task.")
_STUDY_README = flags.DEFINE_string("study_readme", None,
                                    "--study: replace this README's long-range section.")
_REDUCED = flags.DEFINE_bool("reduced", False, "--study: label it the reduced grid.")
_FIRST = flags.DEFINE_bool("first_protocol", False,
                           "--study: the first protocol's sweeps (DIR/adding, DIR/copy).")
_MEASURE = flags.DEFINE_bool("measure_costs", False, "--study --first_protocol: time each "
                             "arm's training step side by side first.")


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
    if _STUDY.value:
        try:
            return (_first_protocol if _FIRST.value else _study)(_STUDY.value)
        except (WorkdirError, OSError, ValueError) as e:
            _die(e)
    if _README.value and not _SERIES.value:
        _die("--series_readme: needs --series_results (the folder to render)")
    if not workdir and not _README.value:
        _die("--workdir: required")
    try:
        if workdir and _SERIES.value:
            from gru_jax.harness import cli
            from gru_jax.proj.series import report as series_report

            cli.setup(argv)  # quiet Orbax: every reloaded checkpoint logs at INFO

            command = "python scripts/report.py " + " ".join(sys.argv[1:])
            series_report.write_results(workdir, _SERIES.value, command=command)
            print(f"Wrote the forecasting results into {_SERIES.value}")
        if _README.value:
            from gru_jax.proj.series import report as series_report

            changed = series_report.update_readme(_README.value, _SERIES.value)
            print(f"{_README.value}: series section {'updated' if changed else 'unchanged'}")
        if not workdir:
            return
        text = report.write_report(workdir)
    except (WorkdirError, OSError) as e:
        _die(e)
    print(text)
    print(f"Wrote results.csv, results.md and the figures (*.png) into {workdir}")
    print(f"TensorBoard (training curves of every run): tensorboard --logdir {workdir}")


def _study(study: str) -> None:
    from gru_jax.proj.long_range import report as study_report

    if not os.path.isdir(os.path.join(study, "search")):
        raise WorkdirError(f"--study={study}: no search/ folder (the length searches of "
                           "experiments/long_range_search.py); --first_protocol for the "
                           "first protocol's sweeps")
    print(study_report.write_study_report(study, reduced=_REDUCED.value,
                                          readme=_STUDY_README.value))
    if _STUDY_README.value:
        print(f"{_STUDY_README.value}: long-range section rendered from {study}")
    print(f"Wrote report.md, runs.csv, manifest.json and the figures (*.png) into "
          f"{os.path.join(study, 'search')}")


def _first_protocol(study: str) -> None:
    from gru_jax.proj.long_range.first_protocol import costs as study_costs
    from gru_jax.proj.long_range.first_protocol import report as study_report

    if _MEASURE.value:
        study_costs.measure_study_costs(study)
    text = study_report.write_study_report(study, reduced=_REDUCED.value, readme_dir=".")
    print(text)
    print(f"Wrote report.md, runs.csv, manifest.json and the figures (*.png) into {study}")


def run() -> None:
    """The command line (``python scripts/report.py`` and ``gru-jax report``)."""
    cli.run_command(main, sys.modules[__name__], _parse)
