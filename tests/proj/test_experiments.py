"""Every experiment file loads, validates and expands its sweep; no training.

The files are found by glob, so a new `experiments/*.py` is covered without
editing this test. The forecast study's models must match the seed articles'
Keras models exactly in size: GRU(50) / LSTM(50) / SimpleRNN(50) + Dense(1) on
one input feature have 8001 / 10451 / 2651 parameters.
"""

from __future__ import annotations

from pathlib import Path

import jax
import pytest

from gru_jax.harness import sweep
from gru_jax.harness.config import make_task
from gru_jax.harness.models import init_model

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.py"))
KERAS_PARAMS = {"gru": 8001, "lstm": 10451, "rnn": 2651}  # units 50, input 1, + Dense(1)


def _ids(paths):
    return [p.stem for p in paths]


def test_experiments_found():
    names = {p.stem for p in EXPERIMENTS}
    assert {"adding", "copy", "digits", "mnist1d", "forecast"} <= names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=_ids(EXPERIMENTS))
def test_experiment_loads_validates_and_expands(path):
    module = sweep.load_experiment(path)
    assert module.__doc__ and "scripts/train.py" in module.__doc__, \
        f"{path.name}: the docstring must give the launch command"
    config = module.get_config()
    make_task(config)
    raw = sweep.load_sweep(path)
    assert raw is not None, f"{path.name}: no get_sweep()"
    points = sweep.expand(raw, config)  # applies and validates every point
    assert len(points) == len(raw) >= 2
    names = sweep.point_names(points)
    assert len(set(names)) == len(names)
    for point in map(sweep.overrides_of, points):  # each point changes the config it names
        cfg = sweep.apply_overrides(config, point)
        for key, value in point.items():
            node = cfg
            for part in key.split("."):
                node = node[part]
            assert node == value, key


def _num_params(config) -> int:
    task = make_task(config)
    params = init_model(jax.random.key(0), config.model, task.input_size, task.output_size,
                        seq_len=task.seq_len)
    return sum(x.size for x in jax.tree_util.tree_leaves(params))


@pytest.mark.parametrize("study", ["forecast", "series"])
def test_forecast_models_match_the_keras_parameter_counts(study):
    path = ROOT / "experiments" / f"{study}.py"
    config = sweep.load_experiment(path).get_config()
    seen = set()
    for point in sweep.expand(sweep.load_sweep(path), config):
        cfg = sweep.apply_overrides(config, point)
        if cfg.model.hidden_size != 50 or cfg.task.get("horizon", 1) != 1:
            continue  # series: the WOA-tuned GRU, and Dense(12) heads for 12 steps ahead
        cell = cfg.model.cell
        assert _num_params(cfg) == KERAS_PARAMS[cell], point
        seen.add(cell)
    assert seen == set(KERAS_PARAMS)


def test_forecast_parameter_count_is_what_the_trainer_builds():
    """create_train_state (what train_and_evaluate counts as num_params) agrees."""
    from gru_jax.harness.steps import create_train_state

    config = sweep.load_experiment(ROOT / "experiments" / "forecast.py").get_config()
    task = make_task(config)
    state = create_train_state(jax.random.key(0), config, task)
    assert sum(x.size for x in jax.tree_util.tree_leaves(state.params)) == \
        KERAS_PARAMS[config.model.cell]
