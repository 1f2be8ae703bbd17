"""The trainer's clock (gru_jax.harness.chrono) on a fake clock: what counts as training
time, where paused time goes, and totals carried over a restart."""

from __future__ import annotations

import pytest

from gru_jax.harness.chrono import PAUSES, TOTALS, Chrono


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_training_time_leaves_out_pauses_before_and_inside_the_loop():
    clock = FakeClock()
    c = Chrono(clock)
    with c.paused("compile_sec"):  # before the loop: compiling
        clock.now += 7
    assert c.train_time() == 0.0  # nothing timed before start
    c.start()
    clock.now += 2  # two seconds of steps
    c.tick(4)
    with c.paused("eval_sec"):
        clock.now += 3
        with c.paused("checkpoint_sec"):  # nested: counted once, to the outer kind
            clock.now += 1
    clock.now += 2
    c.tick(4)
    assert c.train_time() == pytest.approx(4.0)
    t = c.totals({})
    assert set(t) == set(TOTALS)
    assert t["wall_time_sec"] == pytest.approx(15.0)
    assert t["train_time_sec"] == pytest.approx(4.0) and t["train_steps_timed"] == 8
    assert (t["compile_sec"], t["eval_sec"], t["checkpoint_sec"]) == (7.0, 4.0, 0.0)
    assert Chrono.speed(t) == pytest.approx((2.0, 500.0))


def test_rate_is_the_speed_since_the_last_call():
    clock = FakeClock()
    c = Chrono(clock)
    c.start()
    assert c.rate() is None  # nothing timed yet
    clock.now += 2
    c.tick(10)
    assert c.rate() == pytest.approx(5.0)
    with c.paused("log_sec"):
        clock.now += 100  # not training
    clock.now += 1
    c.tick(10)
    assert c.rate() == pytest.approx(10.0)


def test_totals_add_to_a_restored_checkpoints():
    clock = FakeClock()
    saved = {"wall_time_sec": 10.0, "train_time_sec": 6.0, "train_steps_timed": 30,
             "eval_sec": 1.5}
    c = Chrono(clock)
    c.start()
    clock.now += 3
    c.tick(6)
    t = c.totals(saved)
    assert t["wall_time_sec"] == pytest.approx(13.0)
    assert t["train_time_sec"] == pytest.approx(9.0) and t["train_steps_timed"] == 36
    assert t["eval_sec"] == 1.5 and all(t[k] == 0 for k in PAUSES if k != "eval_sec")


def test_a_session_that_ends_before_its_loop_timed_nothing():
    c = Chrono(FakeClock())
    assert Chrono.speed(c.totals({})) == (None, None)
