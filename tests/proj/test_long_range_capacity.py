"""The copy task's capacity control: bits per recalled symbol, the better rate, the C
bracket a size holds, the delay sweep's copy length, the Collins et al. verdict, and
the experiments that read the choice."""

import math

import numpy as np
import pytest

from gru_jax.harness import sweep
from gru_jax.proj.long_range import capacity, design
from gru_jax.proj.long_range.capacity import CapacityRun
from gru_jax.proj.long_range.published import collins_capacity


def _channel_information(a: float, k: int) -> float:
    """I(X; Y) in bits from the joint distribution of a K-ary symmetric channel."""
    joint = np.full((k, k), (1 - a) / (k - 1) / k)
    np.fill_diagonal(joint, a / k)
    px, py = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log2(joint[nz] / (px @ py)[nz])))


@pytest.mark.parametrize("a", [0.3, 0.5, 0.9, 0.99])
def test_symbol_bits_is_the_channels_mutual_information(a):
    assert math.isclose(capacity.symbol_bits(a, 8), _channel_information(a, 8), rel_tol=1e-9)


def test_symbol_bits_ends():
    assert capacity.symbol_bits(1.0, 8) == 3.0
    assert capacity.symbol_bits(1 / 8, 8) == pytest.approx(0.0, abs=1e-12)
    assert capacity.symbol_bits(0.0, 8) == pytest.approx(0.0, abs=1e-12)  # below chance


def _runs(held: dict, arm="gru", h=16, lens=(2, 4, 8, 10, 16, 32)):
    """Two rates x two seeds per C: at 1e-2 every seed solves C <= held[arm, h];
    at 3e-3 nothing solves (the better rate is 1e-2)."""
    out = []
    for c in lens:
        for lr in (3e-3, 1e-2):
            for seed in (0, 1):
                ok = lr == 1e-2 and c <= held
                out.append(CapacityRun(arm, h, c, 8, lr, seed, ok, 1.0 if ok else 0.5))
    return out


def test_better_rate_bracket_and_bits():
    table = capacity.cells(_runs(8))
    cell = table[("gru", 16, 8)]
    assert (cell.lr, cell.solved, cell.seeds, cell.held) == (1e-2, 2, 2, True)
    assert capacity.held_bracket(table, "gru", 16) == (8, 10)
    # the most bits at any C: C = 8 at accuracy 1 (24) beats C = 32 at 0.5 (19.1) ...
    assert capacity.bits_recalled(table, "gru", 16) == 24
    # ... and C = 32 at 0.5 beats C = 2 at 1 (6 bits)
    assert capacity.bits_recalled(capacity.cells(_runs(2)), "gru", 16) == pytest.approx(
        32 * _channel_information(0.5, 8))
    assert capacity.held_bracket(capacity.cells(_runs(64)), "gru", 16) == (32, None)
    assert capacity.held_bracket(capacity.cells(_runs(1)), "gru", 16) == (None, 2)


def test_a_hole_in_the_ladder_ends_the_bracket():
    runs = [CapacityRun(r.arm, r.hidden, r.copy_len, 8, r.lr, r.seed,
                        r.solved and r.copy_len != 4, r.accuracy) for r in _runs(16)]
    assert capacity.held_bracket(capacity.cells(runs), "gru", 16) == (2, 4)


def test_copy_length_is_the_literatures_where_every_arm_holds_it():
    runs = (_runs(16, "gru", 64) + _runs(32, "lstm", 64)     # both hold 10: C = 10
            + _runs(8, "gru", 128) + _runs(32, "lstm", 128)  # gru holds 8 only: C = 8
            + _runs(1, "gru", 32) + _runs(4, "lstm", 32))    # gru holds nothing: left out
    table = capacity.cells(runs)
    assert capacity.copy_lengths(table, hidden=(32, 64, 128)) == {64: 10, 128: 8}


def test_collins_verdict_from_the_bracket_per_unit():
    agree = capacity.cells(_runs(8, h=16))  # 8-10 symbols on 16 units: 0.5-0.63 per unit
    assert collins_capacity(agree)[0][2] == "agrees"
    # 2-4 on 16 units: a failure within the cap may be trainability: open
    assert collins_capacity(capacity.cells(_runs(2, h=16)))[0][2] == "open"
    assert collins_capacity(capacity.cells(_runs(32, h=8)))[0][2] == "disagrees"  # 4/unit
    assert collins_capacity(None)[0][2] == "open"


def test_capacity_points_hold_the_literatures_c_and_copy_points_take_their_length():
    assert design.COPY_LEN in design.CAPACITY["copy_lens"]
    points = design.calibration_points("copy", copy_len={64: 8})
    assert points and {p["model.hidden_size"] for p in points} == {64}
    assert {p["task.copy_len"] for p in points} == {8}


def test_copy_experiments_need_the_capacity_choice(tmp_path, monkeypatch):
    lr = sweep.load_experiment("experiments/long_range_lr.py")
    monkeypatch.setattr(lr, "CAPACITY", str(tmp_path))
    with pytest.raises(ValueError, match="copy_len.json"):
        lr.get_sweep("copy")
    (tmp_path / capacity.CHOICE_FILE).write_text('{"64": 8, "128": 10}')
    points = lr.get_sweep("copy")
    assert {(p["model.hidden_size"], p["task.copy_len"]) for p in points} == {(64, 8), (128, 10)}
    assert lr.get_sweep("adding")  # adding needs no choice


def test_load_reads_a_trained_run(tmp_path):
    from gru_jax.harness.config import apply_overrides
    from gru_jax.harness.train import train_and_evaluate

    p = {**design.point("copy", "gru", 8, 3, 0, 1e-2, 200), "task.copy_len": 2,
         "train.eval_every": 100, "train.eval_size": 64, "train.diagnose_every": 0,
         "train.progress": False}
    train_and_evaluate(apply_overrides(design.base_config("copy"), p), str(tmp_path / "run"))
    (run,) = capacity.load(tmp_path)
    assert (run.arm, run.hidden, run.copy_len, run.num_symbols, run.lr) == ("gru", 8, 2, 8, 1e-2)
    assert 0 <= run.accuracy <= 1 and run.wall_time_sec > 0


def test_the_choice_waits_only_for_the_runs_it_reads():
    # every run at the copy sizes with C <= 10; C = 16, 32 and H = 16 are not read
    runs = [r for arm in ("gru", "lstm") for h in (16, 64, 128) for r in _runs(10, arm, h)]
    assert capacity.choice_missing(runs) == 0
    short = [r for r in runs if r.copy_len <= 10 and r.hidden in design.HIDDEN["copy"]]
    assert len(short) == 64 and capacity.choice_missing(short) == 0
    assert capacity.choice_missing(short[1:]) == 1
    assert capacity.choice_missing([]) == 64
