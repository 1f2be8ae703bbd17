"""train.stop_when_solved ends a run once it stays solved; the gradient horizon at
initialisation and its median over training; the sweep prunes along a difficulty axis."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import make_tiny_config
from sweep_fakes import FakeTrainer, base_config, no_validate

from gru_jax.harness import diagnostics, sweep
from gru_jax.harness.config import make_task
from gru_jax.harness.errors import ConfigError
from gru_jax.harness.models import hidden_grads, model_spec
from gru_jax.harness.steps import create_train_state, task_loss
from gru_jax.harness.train import DIAGNOSTIC_EXAMPLES, EVAL_SEED, train_and_evaluate

# Solvable in a few hundred steps: GRU hidden 8, adding problem at T = 8.
EASY = {"train.steps": 400, "train.eval_every": 20, "train.checkpoint_every": 1000,
        "train.learning_rate": 2e-2, "train.batch_size": 32}


def test_stops_after_k_solved_evals_and_the_trajectory_is_unchanged(tmp_path):
    full = train_and_evaluate(make_tiny_config(**EASY), str(tmp_path / "full"))
    stopped = train_and_evaluate(make_tiny_config(**EASY, **{"train.stop_when_solved": 2}),
                                 str(tmp_path / "stop"))
    solved_at = full["steps_to_solve"]
    assert solved_at is not None and full["stop_reason"] == "budget"
    # The first run of two solved evals in a row, read off the full run's own history.
    solved = [e["mse"] <= 0.01 for e in full["eval_history"]]
    k = next(i for i in range(1, len(solved)) if solved[i - 1] and solved[i])
    stop_step = full["eval_history"][k]["step"]
    assert stopped["stop_reason"] == "solved" and stopped["status"] == "done"
    assert stopped["step"] == stop_step < 400 and stopped["solved"]
    assert stopped["steps_to_solve"] == solved_at
    # Stopping early changes nothing before the stop (same batches, same updates).
    assert stopped["eval_history"] == full["eval_history"][: k + 1]
    # Run again in the same folder: it is finished, nothing more is trained.
    again = train_and_evaluate(make_tiny_config(**EASY, **{"train.stop_when_solved": 2}),
                               str(tmp_path / "stop"))
    assert again["step"] == stop_step and again["eval_history"] == stopped["eval_history"]


def test_a_run_stopped_solved_between_diagnostics_has_them_at_its_end(tmp_path):
    """The protocol's diagnostics come every diagnose_every steps and at the end: a run
    that stops solved at an eval in between gets them at its last step too."""
    s = train_and_evaluate(make_tiny_config(**EASY, **{
        "train.stop_when_solved": 2, "train.diagnose_every": 1000}), str(tmp_path))
    assert s["stop_reason"] == "solved" and s["step"] < 400
    assert [st for st, _ in s["grad_horizons"]] == [s["step"]]
    assert s["grad_horizon"] == s["grad_horizons"][-1][1] and len(s["grad_norms"]) == 8
    assert s["eval_history"][-1]["step"] == s["step"]  # its eval is not repeated
    assert len({e["step"] for e in s["eval_history"]}) == len(s["eval_history"])


def test_horizon_at_init_and_median_over_training(tmp_path):
    config = make_tiny_config(**{"train.steps": 6, "train.eval_every": 2})
    s = train_and_evaluate(config, str(tmp_path))
    # At init, from the fresh params computed here directly.
    task = make_task(config)
    state = create_train_state(jax.random.fold_in(jax.random.key(config.seed), 0), config, task)
    batch = task.eval_batch(jax.random.key(EVAL_SEED), config.train.eval_size)
    few = jax.tree_util.tree_map(lambda a: a[:DIAGNOSTIC_EXAMPLES], batch)
    grads = hidden_grads(state.params, few["x"], model_spec(config.model), task.target,
                         lambda p: task_loss(p, few, task.loss))
    norms = np.asarray(diagnostics.grad_norm_curve(grads))
    np.testing.assert_allclose(s["grad_norms_init"], norms, rtol=1e-5)
    assert s["grad_horizon_init"] == diagnostics.grad_horizon(norms)
    steps = [st for st, _ in s["grad_horizons"]]
    assert steps == [2, 4, 6]
    hs = sorted(h for _, h in s["grad_horizons"])
    assert s["grad_horizon_median"] == hs[1]
    assert s["schema_version"] == 1
    assert s["machine"]["cpu_count"] >= 1 and s["machine"]["backend"] == jax.default_backend()


def test_bad_stop_when_solved_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="train.stop_when_solved"):
        make_task(make_tiny_config(**{"train.stop_when_solved": -1}))


class Unsolving(FakeTrainer):
    """Solves only the lengths in `solves` (per cell)."""

    def __init__(self, solves):
        super().__init__()
        self.solves = solves

    def __call__(self, config, workdir):
        s = super().__call__(config, workdir)
        s["solved"] = config.task.seq_len in self.solves[config.model.cell]
        (Path(workdir) / "summary.json").write_text(json.dumps(s))
        return s


def test_sweep_prunes_lengths_beyond_one_that_no_seed_solved(tmp_path):
    points = [{"task.seq_len": t, "model.cell": c, "seed": s}
              for t in (10, 20, 40, 80) for c in ("gru", "rnn") for s in (0, 1)]
    trainer = Unsolving({"gru": {10, 20, 40, 80}, "rnn": {10}})
    results = sweep.run_sweep(base_config(), points, tmp_path, train_fn=trainer,
                              validate=no_validate, progress=False, prune_along="task.seq_len")
    by = {(r["overrides"]["model.cell"], r["overrides"]["task.seq_len"]): r["action"]
          for r in results}
    assert {k: v for k, v in by.items() if k[0] == "gru"} == {
        ("gru", t): "ran" for t in (10, 20, 40, 80)}
    # rnn fails both seeds at 20: 40 and 80 are never run.
    assert by[("rnn", 10)] == by[("rnn", 20)] == "ran"
    assert by[("rnn", 40)] == by[("rnn", 80)] == "pruned"
    assert len(trainer.calls) == 12
    assert not (tmp_path / sweep.point_name(points[-1])).exists()


def test_one_solved_seed_keeps_the_next_length(tmp_path):
    points = [{"task.seq_len": t, "seed": s} for t in (10, 20) for s in (0, 1)]

    class OneSeed(FakeTrainer):
        def __call__(self, config, workdir):
            s = super().__call__(config, workdir)
            s["solved"] = config.seed == 0
            (Path(workdir) / "summary.json").write_text(json.dumps(s))
            return s

    results = sweep.run_sweep(base_config(), points, tmp_path, train_fn=OneSeed(),
                              validate=no_validate, progress=False, prune_along="task.seq_len")
    assert [r["action"] for r in results] == ["ran"] * 4
