"""The long-range study, second protocol: per (arm, hidden size, seed), the adaptive
search over the length T (`gru_jax.proj.long_range.adaptive`: grow x2 on the sqrt-2
ladder 10, 14, 20, ... up to the top per task and size, `design.top_rung`; extend a
still-improving run once to twice the cap; bisect to one rung), at the learning
rate the calibration's stage 2 chose
(results/long_range/calibration/<task>_refine/lr.json, experiments/long_range_lr.py);
copy at the copy length per size the capacity control chose
(results/long_range/capacity/copy_len.json, experiments/long_range_capacity.py). The
protocol of every run is `gru_jax.proj.long_range.design`.

The searches run through the sweep engine (the experiment's `get_source`); two
workers on a 2-core machine::

    python scripts/sweep.py --config=experiments/long_range_search.py:adding \\
        --workdir=results/long_range/search/adding --workers=2

One run of it::

    python scripts/train.py --config=experiments/long_range_search.py:adding \\
        --workdir=runs/search_one --config.task.seq_len=113 --config.train.learning_rate=0.01

`:adding:reduced` / `:copy:reduced`: gru, lstm and rnn at H = 16, seeds 0 and 1, up to
T = 40, capped at 1000 steps (make study).

`:adding:extended`: the lineages of `design.EXTENDED` (the top censored them) climb on
to `design.top_rung(..., extended=True)`, in the same folders, from the committed points,
seeds queued together so a packing worker trains them as one program
(`bench_results/gpu_study.sh` runs it on a lent GPU; each summary's `machine` says where
it ran).
"""

import functools
import os

from gru_jax.proj.long_range import calibration, capacity, design
from gru_jax.proj.long_range.adaptive import LengthSearch, Lineage

STUDY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "results", "long_range")
CALIBRATION = os.path.join(STUDY, "calibration")
REDUCED = design.REDUCED


def _parse(arg: str) -> tuple[str, str]:
    task, _, grid = (arg or "adding").partition(":")
    if task not in design.CAP or grid not in ("", "full", "reduced", "extended") or (
            grid == "extended" and task != "adding"):
        raise ValueError(f"config argument must be adding|copy[:reduced] or adding:extended, "
                         f"got {arg!r}")
    return task, grid


def get_config(arg: str = "adding"):
    return design.base_config(_parse(arg)[0])


def get_source(arg: str = "adding"):
    task, grid = _parse(arg)
    reduced, extended = grid == "reduced", grid == "extended"
    choices = calibration.read_choices(
        os.path.join(CALIBRATION, f"{task}_refine", calibration.CHOICE_FILE))
    copy_len = None if reduced else capacity.study_copy_lengths(
        os.path.join(STUDY, "capacity"), task)
    arms = REDUCED["arms"] if reduced else tuple(design.ARMS)
    lineages = [Lineage(arm, h, seed) for arm in arms
                for h in (REDUCED["hidden"] if reduced else design.hidden_sizes(task, arm))
                if (copy_len is None or h in copy_len)
                and (not extended or (arm in design.EXTENDED["arms"]
                                      and h in design.EXTENDED["hidden"]))
                for seed in (REDUCED["seeds"] if reduced else design.SEEDS)]
    return LengthSearch(task, lineages,
                        lambda arm, h: calibration.learning_rate(choices, task, arm, h),
                        base_cap=REDUCED["cap"] if reduced else design.CAP[task],
                        top=(REDUCED["top"] if reduced
                             else functools.partial(design.top_rung, task, extended=extended)),
                        copy_len=copy_len, pack_seeds=extended)


def get_sweep(arg: str = "adding"):
    """The searches' first points (the engine's `get_source` grows them)."""
    return get_source(arg).initial()
