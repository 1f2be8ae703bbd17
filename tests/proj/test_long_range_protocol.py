"""The long-range study's second protocol: arms, ladder, the calibration's choice rule."""

import math

import pytest

from gru_jax.harness.config import apply_overrides, validate
from gru_jax.proj.long_range import calibration, design
from gru_jax.proj.long_range.calibration import CalibrationRun


def test_ladder_is_geometric_and_fixed():
    ratios = [b / a for a, b in zip(design.LADDER, design.LADDER[1:], strict=False)]
    assert design.LADDER[:5] == (10, 14, 20, 28, 40) and design.LADDER[-1] == 20480
    assert all(1.35 < r < 1.48 for r in ratios)  # sqrt 2, rounded to whole steps


def test_the_adding_top_is_at_equal_cost_per_step_and_copy_stops_at_640():
    """T x H <= 2560 x 128, the longest such rung, reached by climbing x2 from rung 0."""
    tops = {h: design.LADDER[design.top_rung("adding", h)] for h in (16, 32, 64, 128)}
    assert tops == {16: 20480, 32: 10240, 64: 5120, 128: 2560}
    assert all(design.top_rung("adding", h) % 2 == 0 for h in tops)  # on the x2 climb
    assert {design.LADDER[design.top_rung("copy", h)] for h in (64, 128)} == {640}


@pytest.mark.parametrize("task", ["adding", "copy"])
def test_every_arm_is_a_valid_config_and_round_trips(task):
    for arm in design.ARMS:
        p = design.point(task, arm, 16, 40, 0, 1e-3)
        config = apply_overrides(design.base_config(task), p)
        validate(config)
        assert design.arm_of(config.to_dict()) == arm
        if "chrono" in arm:  # Tallec & Ollivier: T on adding, 3T/2 on copy
            assert config.model.chrono_t_max == (40.0 if task == "adding" else 60.0)


def test_protocol_schedule_is_constant_and_copy_is_the_literature_task():
    c = design.base_config("copy")
    assert c.train.schedule == "constant" and c.train.eval_size >= 1024
    assert (c.task.copy_len, c.task.num_symbols) == (10, 8)


def _run(lr, seed, solved, steps=None, rel=0.5, arm="gru", hidden=16, cap=1000):
    return CalibrationRun("adding", arm, hidden, lr, seed, solved, steps, cap, rel)


def test_choice_rule_most_solved_then_fewest_steps_then_loss():
    runs = [_run(1e-3, 0, True, 900), _run(1e-3, 1, True, 800),    # 2 solved, 1700 steps
            _run(3e-3, 0, True, 200), _run(3e-3, 1, False),         # 1 solved
            _run(1e-2, 0, True, 300), _run(1e-2, 1, True, 400),     # 2 solved, 700 steps
            _run(3e-2, 0, False, rel=0.1), _run(3e-2, 1, False, rel=0.1)]
    ch = calibration.choose(runs)[("adding", "gru", 16)]
    assert (ch.lr, ch.solved, ch.seeds, ch.median_steps) == (1e-2, 2, 2, 350)
    assert not ch.at_edge
    # Nothing solves: the lowest relative loss decides, and an end of the grid is flagged.
    none = [_run(lr, s, False, rel=r) for lr, r in ((3e-4, 0.9), (1e-3, 0.4)) for s in (0, 1)]
    ch = calibration.choose(none)[("adding", "gru", 16)]
    assert ch.lr == 1e-3 and ch.solved == 0 and ch.median_steps is None and ch.at_edge
    # An unsolved seed costs twice the cap: 1 solved fast + 1 unsolved loses to 2 slow ones.
    assert math.isclose(calibration._key([_run(1e-3, 0, True, 10), _run(1e-3, 1, False)])[1],
                        2010)


def test_choices_table_and_lookup(tmp_path):
    choices = {"adding": {"gru": {"16": {"lr": 0.01, "solved": 2, "seeds": 2,
                                         "median_steps": 300, "rel_loss": 0.01,
                                         "at_edge": False}}}}
    assert calibration.learning_rate(choices, "adding", "gru", 16) == 0.01
    with pytest.raises(KeyError, match="no calibrated learning rate for adding lstm H=16"):
        calibration.learning_rate(choices, "adding", "lstm", 16)
    assert "| gru | 0.01 (2/2) |" in calibration.markdown(choices)


def test_refinement_is_the_choice_and_its_neighbours_at_the_harder_length():
    assert design.neighbours(3e-2) == (1e-2, 3e-2, 1e-1)
    assert design.neighbours(1e-4) == (1e-4, 3e-4)
    pts = design.refine_points("adding", {("gru", 16): 3e-2})
    assert {p["train.learning_rate"] for p in pts} == {1e-2, 3e-2, 1e-1}
    assert {p["task.seq_len"] for p in pts} == {design.REFINE_T["adding"]} and len(pts) == 6


def test_digits_points_calibrate_on_validation_and_test_at_the_full_cap():
    pairs = [("gru", 64), ("chrono-lstm", 56)]
    cal = design.digits_points(pairs)
    assert len(cal) == len(pairs) * len(design.DIGITS["lrs"]) * len(
        design.DIGITS["calibration_seeds"])
    assert {p["task.split"] for p in cal} == {"validation"}
    assert not {p["seed"] for p in cal} & set(design.SEEDS)  # the choice is not fitted to them
    test = design.digits_points(pairs, {("gru", 64): 3e-3})  # an uncalibrated pair is left out
    assert [(p["seed"], p["train.learning_rate"]) for p in test] == [(s, 3e-3)
                                                                    for s in design.SEEDS]
    for p in cal[:2] + test[:1]:
        config = apply_overrides(design.base_config("digits"), p)
        validate(config)
        assert config.train.schedule == "constant" and config.task.seq_len == 64
    # the test runs train through the cap, so the accuracy is read at one budget
    config = apply_overrides(design.base_config("digits"), test[0])
    assert config.train.stop_when_solved == 0 and config.task.split == "test"
    chrono = apply_overrides(design.base_config("digits"), cal[1])
    assert chrono.model.chrono_t_max == 64.0


def test_digits_columns_text():
    from gru_jax.proj.long_range.digits import DigitsRun, accuracy_text, steps_text

    runs = [DigitsRun("gru", 64, s, 1e-2, a, n, 2000)
            for s, a, n in ((0, 0.96, 400), (1, 0.99, 300), (2, 0.80, None))]
    assert accuracy_text(runs) == "0.917 [0.800, 0.990]"
    assert steps_text(runs) == "400, 300, >2000"
    assert accuracy_text(runs[:1]) == "0.960" and steps_text([]) == "not run"
