"""The long-range study's learning-rate calibration (second protocol): every arm and
hidden size at the task's reference length (adding T = 50, copy T = 20 with C = 10
of K = 8), every rate of {3e-4, 1e-3, 3e-3, 1e-2, 3e-2}, seeds 100 and 101 (not the
study's), constant rate after a 100-step warmup, capped at 4000 (adding) / 6000
(copy) steps; the protocol is `gru_jax.proj.long_range.design`, the rule that picks
a rate per (arm, hidden size) `gru_jax.proj.long_range.calibration`.

    python scripts/sweep.py --config=experiments/long_range_lr.py:adding \\
        --workdir=results/long_range/calibration/adding
    python -m gru_jax.proj.long_range.calibration results/long_range/calibration

One run of it::

    python scripts/train.py --config=experiments/long_range_lr.py:adding \\
        --workdir=runs/lr_one --config.model.cell=lstm --config.train.learning_rate=3e-3

`:adding:reduced` / `:copy:reduced`: two arms, one size, two rates (make study).
"""

from gru_jax.proj.long_range import design

REDUCED = {"arms": ("gru", "lstm"), "hidden": (16,), "lrs": (3e-3, 1e-2)}


def _parse(arg: str) -> tuple[str, bool]:
    task, _, grid = (arg or "adding").partition(":")
    if task not in design.CALIBRATION_T or grid not in ("", "full", "reduced"):
        raise ValueError(f"config argument must be adding|copy[:reduced], got {arg!r}")
    return task, grid == "reduced"


def get_config(arg: str = "adding"):
    task, _ = _parse(arg)
    config = design.base_config(task)
    config.train.steps = design.CALIBRATION_CAP[task]
    return config


def get_sweep(arg: str = "adding"):
    task, reduced = _parse(arg)
    return design.calibration_points(task, **(REDUCED if reduced else {}))
