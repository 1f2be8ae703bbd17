"""The second protocol's cost table: parameter counts against the cells' equations, the
equal-parameter sizes, a side-by-side measurement, and its report section."""

import csv

import pytest

from gru_jax.proj.long_range import costs, report


def _gru(i, h):  # 3 gates of (input + recurrent) kernels, b_i and b_h per gate; Dense(1)
    return 3 * (i * h + h * h) + 6 * h + h + 1


def _lstm(i, h):  # 4 gates, one bias each
    return 4 * (i * h + h * h) + 4 * h + h + 1


def _rnn(i, h):
    return i * h + h * h + h + h + 1


def _mingru(i, h, layers):  # z and candidate kernels from the input only, 2 biases
    return sum(2 * ((i if k == 0 else h) * h + h) for k in range(layers)) + h + 1


@pytest.mark.parametrize("arm,h,expected", [
    ("gru", 64, _gru(2, 64)), ("chrono-gru", 64, _gru(2, 64)), ("lstm", 56, _lstm(2, 56)),
    ("rnn", 113, _rnn(2, 113)), ("mingru", 56, _mingru(2, 56, 3)),
    ("mingru-1", 1874, _mingru(2, 1874, 1))])
def test_parameter_counts_follow_the_equations(arm, h, expected):
    assert costs.num_params("adding", arm, h) == expected


def test_equal_parameter_sizes_are_the_nearest_within_tolerance():
    target = _gru(2, 64)
    for arm, count in (("lstm", _lstm), ("rnn", _rnn)):
        h = costs.equal_params_hidden("adding", arm, target)
        assert abs(count(2, h) / target - 1) <= costs.PARAMS_TOLERANCE
        assert all(abs(count(2, h) - target) <= abs(count(2, g) - target) + 1e-9
                   for g in range(h - 3, h + 4))
    with pytest.raises(ValueError, match="within 10%"):
        costs.equal_params_hidden("adding", "gru", 10**9, sizes=range(2, 64))


def test_the_report_shows_the_measured_table():
    """(`measure_configs`, which measured it, is tested through the first protocol's
    test_measure_costs_times_every_pair_side_by_side.)"""
    rows = [{"arm": a, "hidden": h, "num_params": costs.num_params("adding", a, h),
             "step_ms": ms, "step_ms_all": [ms], "memory_bytes": 2**20}
            for a, h, ms in (("gru", 64, 2.0), ("lstm", 56, 3.0))]
    c = {"task": "adding", "seq_len": 200, "batch_size": 32, "steps": 10, "repeats": 1,
         "machine": {"cpu": "x", "cpu_count": 2, "jax": "0"}, "rows": rows}
    md = report.costs_markdown(c, [])
    assert "| gru | 64 | 13121 | 2.00 (1.00x) | 1.0 | not run | - |" in md
    assert "| lstm | 56 | 13273 | 3.00 (1.50x) |" in md


def test_overhead_itemises_each_run_and_the_later_seeds_find_the_programs():
    from gru_jax.proj.long_range import overhead

    point = {"task": "adding", "arm": "gru", "hidden": 4, "seq_len": 10, "lr": 1e-2}
    runs = overhead.run_overhead(steps=20, seeds=(0, 1), point=point)
    assert [r["seed"] for r in runs] == [0, 1]
    for r in runs:
        assert r["ratio"] == pytest.approx(r["wall_s"] / r["stepping_s"]) and r["ratio"] >= 1
        assert r["train_time_sec"] == pytest.approx(r["stepping_s"], abs=1e-4)  # rounded
    assert runs[1]["compile_sec"] < runs[0]["compile_sec"]  # the first seed compiled


def test_study_overhead_over_the_committed_runs():
    from pathlib import Path

    from gru_jax.proj.long_range import overhead

    root = Path(__file__).resolve().parents[2] / "results" / "long_range"
    o = overhead.study_overhead(root)
    # Recomputed from the committed table itself, not from the report's Run objects.
    with open(root / "search" / "runs.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["step_time_ms"] and r["device"] == "cpu"]

    def ratio(rs):
        stepping = sum(int(r["last_step"]) * float(r["step_time_ms"]) / 1000 for r in rs)
        return sum(float(r["wall_time_sec"]) for r in rs) / stepping

    long = [r for r in rows if int(r["last_step"]) >= 200]
    assert o["all"] == pytest.approx(ratio(rows), rel=1e-3) and o["all"] > 1
    assert o[">= 200 steps"] == pytest.approx(ratio(long), rel=1e-3)
    assert o["T >= 640"] == pytest.approx(ratio([r for r in long if int(r["seq_len"]) >= 640]),
                                          rel=1e-3)
