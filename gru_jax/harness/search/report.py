"""A search's report, read from its study: the best run, the candidates, the trials,
and a comparison of several searches (one row per study, then per sampler).

    python -m gru_jax.harness.search DIR_OR_STORAGE [...]    the comparison table

A source is a search folder (its study.db, or the storage its search.json
names) or a storage URL (every search study in it: several samplers or seeds
sharing one PostgreSQL server or journal file).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gru_jax.harness.errors import WorkdirError
from gru_jax.harness.files import SEARCH_FILE
from gru_jax.harness.metrics import higher_is_better
from gru_jax.harness.report.tables import markdown_table
from gru_jax.harness.summary import read_summary
from gru_jax.harness.sweep.points import short_keys


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def format_table(log_: Mapping[str, Any], top: int | None = 5) -> str:
    """A markdown table of the `top` best runs (all when None), best first, failed
    and diverged last; a run proposed several times is one row (its first
    candidate's index and generation; `proposed`: how often)."""
    runs: dict[str, dict] = {}
    for c in log_["candidates"]:
        runs.setdefault(c["name"], {**c, "proposed": 0})["proposed"] += 1
    rows = sorted(runs.values(), key=lambda c: (c["score"] is None, c["score"] or 0.0,
                                                c["index"]))
    if top is not None:
        rows = rows[:top]
    keys = list(log_["space"])
    short = short_keys(keys)
    metric = log_.get("metric") or "score"
    head = ["#", "gen", *(short[k] for k in keys), "status", metric, "proposed"]
    return markdown_table(head, [[c["index"], c["generation"],
                                  *(_fmt(c["overrides"][k]) for k in keys),
                                  c["status"], _fmt(c["value"]), c["proposed"]] for c in rows])


def trials_table(study, top: int | None = None) -> str:
    """The study's trials as Optuna holds them, in trial order: state, params,
    value (the minimised score), the run's folder and what the trial was (a
    retry of a lost trial, a free repeat, a duplicate left to another)."""
    from gru_jax.harness.search.log import IDLE_ATTR, REPEAT_ATTR
    from gru_jax.harness.sweep.queue import DIR_ATTR, DUPLICATE_ATTR

    trials = study.get_trials(deepcopy=False)[:top]
    keys = list(study.user_attrs.get("search", {}).get("space", {}))
    short = short_keys(keys)
    rows = []
    for t in trials:
        if REPEAT_ATTR in t.user_attrs:
            note = f"repeat of #{t.user_attrs[REPEAT_ATTR]}"
        elif DUPLICATE_ATTR in t.user_attrs:
            note = f"duplicate of #{t.user_attrs[DUPLICATE_ATTR]}"
        elif IDLE_ATTR in t.user_attrs:
            note = "no candidate (the generation's runs were taken)"
        elif "failed_trial" in t.system_attrs:
            note = f"retry of #{t.system_attrs['failed_trial']}"
        else:
            note = ""
        rows.append([t.number, t.state.name.lower(), *(_fmt(t.params.get(k)) for k in keys),
                     _fmt(t.value), t.user_attrs.get(DIR_ATTR, "-"), note])
    return markdown_table(["trial", "state", *(short[k] for k in keys), "score", "run", "note"],
                          rows)


def best_line(log_: Mapping[str, Any], workdir: str | os.PathLike) -> str:
    best = log_["best"]
    if best is None:
        return "best: none (every candidate failed or diverged)"
    return (f"best: #{best['index']} {log_['metric']} {best['value']:.4g} "
            f"{best['overrides']} ({os.path.join(str(workdir), best['name'])})")


def _is_storage(source: str) -> bool:
    return "://" in source or source.startswith("journal:") or source.endswith(".log")


def search_logs(source: str | os.PathLike) -> list[tuple[dict, Path, Any]]:
    """(log, folder, study) of every search in `source` (see the module docstring);
    a folder whose search.json predates the study (no "study" key) is read as is
    (study None)."""
    from gru_jax.harness.search.engine import SETTINGS_ATTR, WORKDIR_ATTR, search_log
    from gru_jax.harness.sweep import storage as storage_

    source = str(source)
    if _is_storage(source):
        url, wd = source, None
    else:
        wd = Path(source)
        try:
            saved = json.loads((wd / SEARCH_FILE).read_text())
        except (OSError, ValueError) as e:
            raise WorkdirError(f"{wd / SEARCH_FILE}: unreadable ({e})") from e
        if "study" not in saved:
            return [(saved, wd, None)]
        url = saved.get("storage")
    import optuna

    st = storage_.open_storage(url, wd or ".")
    out = []
    for s in optuna.get_all_study_summaries(st, include_best_trial=False):
        if SETTINGS_ATTR not in s.user_attrs or (wd is not None and s.study_name != saved["study"]):
            continue
        study = optuna.load_study(study_name=s.study_name, storage=st)
        out.append((search_log(study), Path(study.user_attrs[WORKDIR_ATTR]), study))
    return out


def compare(sources: Sequence[str | os.PathLike]) -> str:
    """A markdown table comparing searches, one row per study, then per sampler the
    median and best of the searches' best values.

    Columns: sampler, seed, candidates, trained runs, best value, the candidate
    index where it was found, median of all candidates' values, runs at the
    task's solved threshold (when the summaries give one), failed or diverged
    runs, the search's training time (sum of its runs' wall_time_sec).
    """
    rows, by_method, metric = [], {}, None
    for source in sources:
        for log_, wd, _ in search_logs(source):
            cands = log_["candidates"]
            names = {c["name"] for c in cands}
            values = [c["value"] for c in cands if c["value"] is not None]
            solved, wall = 0, 0.0
            for name in names:
                s = read_summary(wd / name)
                solved += bool(s is not None and s.solved)
                wall += s.wall_time_sec if s is not None and s.wall_time_sec else 0.0
            best = log_["best"]
            metric = metric or log_.get("metric")
            rows.append([log_["method"], log_["seed"], len(cands), len(names),
                         _fmt(best["value"] if best else None),
                         best["index"] if best else "-",
                         _fmt(statistics.median(values) if values else None), solved,
                         len({c["name"] for c in cands if c["value"] is None}),
                         f"{wall:.0f} s"])
            if best:
                by_method.setdefault(log_["method"], []).append(best["value"])
    metric = metric or "score"
    head = ["method", "seed", "candidates", "runs trained", f"best {metric}", "found at #",
            f"median {metric}", "runs solved", "failed/diverged", "train time"]
    pick = max if higher_is_better(metric) else min
    per = [[m, len(b), _fmt(statistics.median(b)), _fmt(pick(b))] for m, b in by_method.items()]
    return (markdown_table(head, rows) + "\n\n" + markdown_table(
        ["method", "searches", f"median of best {metric}", f"best {metric}"], per))
