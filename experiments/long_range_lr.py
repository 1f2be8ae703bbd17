"""The long-range study's learning-rate calibration (second protocol), in two stages.
Stage 1 (``:adding``, ``:copy``): every arm and hidden size at a short reference length
(adding T = 50, copy T = 20 with C of K = 8 per size as the capacity control chose,
results/long_range/capacity/copy_len.json), every rate of {3e-4, 1e-3, 3e-3,
1e-2, 3e-2}. Stage 2 (``:adding:refine``, ``:copy:refine``): at a hard length (adding
T = 200, copy T = 40), the stage-1 choice and its two neighbours on the half-decade
ladder 1e-4 ... 1e-1. Seeds 100 and 101 (not the study's), constant rate after a
100-step warmup, capped at 4000 (adding) / 6000 (copy) steps. The protocol is
`gru_jax.proj.long_range.design`, the rule `gru_jax.proj.long_range.calibration`.

    python scripts/sweep.py --config=experiments/long_range_lr.py:adding \\
        --workdir=results/long_range/calibration/adding --workers=2
    python -m gru_jax.proj.long_range.calibration results/long_range/calibration/adding
    python scripts/sweep.py --config=experiments/long_range_lr.py:adding:refine \\
        --workdir=results/long_range/calibration/adding_refine --workers=2
    python -m gru_jax.proj.long_range.calibration results/long_range/calibration/adding_refine

One run of it::

    python scripts/train.py --config=experiments/long_range_lr.py:adding \\
        --workdir=runs/lr_one --config.model.cell=lstm --config.train.learning_rate=3e-3

``:adding:reduced`` / ``:copy:reduced``: two arms, one size, two rates (make study).
"""

import os

from gru_jax.proj.long_range import calibration, capacity, design

STUDY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "results", "long_range")
RESULTS = os.path.join(STUDY, "calibration")
CAPACITY = os.path.join(STUDY, "capacity")
REDUCED = {"arms": ("gru", "lstm"), "hidden": (16,), "lrs": (3e-3, 1e-2)}


def _parse(arg: str) -> tuple[str, str]:
    task, _, stage = (arg or "adding").partition(":")
    if task not in design.CALIBRATION_T or stage not in ("", "full", "refine", "reduced"):
        raise ValueError(f"config argument must be adding|copy[:refine|:reduced], got {arg!r}")
    return task, stage or "full"


def get_config(arg: str = "adding"):
    task, stage = _parse(arg)
    config = design.base_config(task)
    config.task.seq_len = (design.REFINE_T if stage == "refine" else design.CALIBRATION_T)[task]
    config.train.steps = design.CALIBRATION_CAP[task]
    return config


def get_sweep(arg: str = "adding"):
    task, stage = _parse(arg)
    if stage == "reduced":
        return design.calibration_points(task, **REDUCED)
    if stage == "refine":
        stage1 = calibration.read_choices(os.path.join(RESULTS, task, calibration.CHOICE_FILE))
        if not stage1:
            raise ValueError(f"{task}:refine needs stage 1's choices in {RESULTS}/{task}")
        return design.refine_points(task, calibration.chosen(stage1, task),
                                    copy_len=capacity.study_copy_lengths(CAPACITY, task))
    return design.calibration_points(task, copy_len=capacity.study_copy_lengths(CAPACITY, task))
