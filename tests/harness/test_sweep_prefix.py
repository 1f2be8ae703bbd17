"""A run whose cap was raised by resuming (constant learning rate) answers for the same
point at the shorter cap: a sweep rebuilt from its run folders (its storage lost, the
results committed) reads it instead of training the shorter run over it."""

from __future__ import annotations

from pathlib import Path

from conftest import make_tiny_config

from gru_jax.harness.summary import RunSummary, prefix, read_summary
from gru_jax.harness.sweep.training import finished_before
from gru_jax.harness.sweep.worker import Job
from gru_jax.harness.train import train_and_evaluate

CONSTANT = {"train.schedule": "constant", "train.warmup_steps": 20, "train.eval_every": 20,
            "train.checkpoint_every": 100, "train.learning_rate": 2e-2}


def _job(run_dir: Path, steps: int, **over) -> Job:
    point = {"train.learning_rate": 2e-2, "train.steps": steps, **over}
    return Job(None, point, run_dir, make_tiny_config(**{**CONSTANT, **point}))


def test_prefix_of_an_extended_run_is_the_shorter_run(tmp_path):
    short = train_and_evaluate(make_tiny_config(**CONSTANT, **{"train.steps": 100}),
                               str(tmp_path / "short"))
    train_and_evaluate(make_tiny_config(**CONSTANT, **{"train.steps": 100}), str(tmp_path / "long"))
    long = train_and_evaluate(make_tiny_config(**CONSTANT, **{"train.steps": 200}),
                              str(tmp_path / "long"))  # resumed: the cap raised
    assert long["resumed_from"] == 100 and long["step"] == 200
    read = finished_before(_job(tmp_path / "long", 100))
    assert read is not None
    for key in ("step", "final", "solved", "steps_to_solve", "eval_history", "stop_reason"):
        assert getattr(read, key) == short[key], key
    assert read.config["train"]["steps"] == 100 and read.wall_time_sec is None
    assert finished_before(_job(tmp_path / "long", 200)) == read_summary(tmp_path / "long")
    # Not the same point, or a schedule whose shorter run is not a prefix: train it.
    assert finished_before(_job(tmp_path / "long", 100, **{"train.learning_rate": 1e-2})) is None
    assert finished_before(_job(tmp_path / "long", 300)) is None


def test_prefix_reads_the_solve_within_the_cap():
    hist = [{"step": s, "mse": v} for s, v in ((100, .5), (200, .2), (300, .005), (400, .004))]
    s = RunSummary(status="done", step=400, eval_history=hist, solved=True, steps_to_solve=300,
                   stop_reason="budget", config={"train": {"steps": 400}})
    at200, at300 = prefix(s, 200), prefix(s, 300)
    assert (at200.solved, at200.steps_to_solve, at200.final) == (False, None, {"mse": .2})
    assert (at300.solved, at300.steps_to_solve, at300.step) == (True, 300, 300)
    assert prefix(s, 250) is None  # no eval at the cap: cannot tell its final numbers
    assert prefix(s, 500) is s  # it stopped before: the longer cap changes nothing
