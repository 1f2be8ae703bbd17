"""The long-range study's sequential-digits rows (second protocol): every (arm, hidden
size) of the cost table (`gru_jax.proj.long_range.costs.pairs`: each arm at H = 64 and at
the GRU's parameter count), on scikit-learn's 8x8 digits read one pixel per step
(T = 64). Two stages, as `gru_jax.proj.long_range.design` says:

    python scripts/sweep.py --config=experiments/long_range_digits.py:calibrate \\
        --workdir=results/long_range/calibration/digits --workers=2
    python -m gru_jax.proj.long_range.calibration results/long_range/calibration/digits
    python scripts/sweep.py --config=experiments/long_range_digits.py:test \\
        --workdir=results/long_range/digits --workers=2

One run of it::

    python scripts/train.py --config=experiments/long_range_digits.py:test \
        --workdir=runs/digits_one --config.model.cell=lstm --config.train.learning_rate=3e-2

`:calibrate`: every rate of design.DIGITS["lrs"] (3e-4 ... 0.1) on the validation
split (300 of the train images held out; seed 100), stopped once solved; the rule is
the length study's (`calibration.choose`: most seeds solved, then fewest steps, then
lowest loss).
`:test`: the chosen rate, seeds 0, 1, 2, evaluated on the test images for the whole cap.
Pairs above DIGITS_MAX_HIDDEN are left out (minGRU-1 at the GRU's parameter count,
H = 1874, costs about 10x the GRU's step).
"""

import os

from gru_jax.proj.long_range import calibration, costs, design

STUDY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "results", "long_range")
CHOICES = os.path.join(STUDY, "calibration", "digits", calibration.CHOICE_FILE)
DIGITS_MAX_HIDDEN = 256


def _stage(arg: str) -> str:
    if arg not in ("calibrate", "test"):
        raise ValueError(f"config argument must be calibrate|test, got {arg!r}")
    return arg


def get_config(arg: str = "test"):
    _stage(arg)
    return design.base_config("digits")


def pairs() -> list[tuple[str, int]]:
    return [p for p in costs.pairs("adding") if p[1] <= DIGITS_MAX_HIDDEN]


def get_sweep(arg: str = "test"):
    if _stage(arg) == "calibrate":
        return design.digits_points(pairs())
    choices = calibration.read_choices(CHOICES)
    if not choices:
        raise ValueError(f"digits:test needs the calibration's choices in {CHOICES}")
    return design.digits_points(pairs(), calibration.chosen(choices, "digits"))
