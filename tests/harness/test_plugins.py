"""Plug-ins without editing the package: a user's cell, task and optimiser by name."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import ROOT, TINY, make_tiny_config, subprocess_env

import gru_jax
from gru_jax.harness import optimizers
from gru_jax.harness.config import apply_overrides, validate
from gru_jax.harness.errors import ConfigError
from gru_jax.harness.tasks import TASK_DEFAULTS, TASKS, get_task, register_task
from gru_jax.harness.tasks import adding as adding_task


@pytest.mark.slow
def test_a_cell_registered_in_an_experiment_file_trains_through_scripts_train(tmp_path):
    overrides = {**TINY, "model.hidden_size": 4, "train.steps": 4, "train.eval_every": 2}
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"),
           f"--config={ROOT / 'experiments' / 'custom_cell.py'}", f"--workdir={tmp_path}"]
    cmd += [f"--config.{k}={v}" for k, v in overrides.items()]
    p = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), cwd=ROOT,
                       timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "done" and s["step"] == 4
    assert s["config"]["model"]["cell"] == "leaky" and s["config"]["train"]["optimizer"] == "adam"
    i, h = 2, 4  # the adding task's 2 inputs; leaky: w_i, w_h, b, alpha; head: w [h, 1], b
    assert s["num_params"] == i * h + h * h + h + h + (h + 1)
    assert np.isfinite(s["final"]["mse"])


def test_a_registered_cell_is_a_valid_model_cell_and_runs_under_scan():
    rnn = gru_jax.get_cell("rnn")
    alias = gru_jax.register_cell(rnn._replace(name="my_rnn"))
    try:
        validate(make_tiny_config(model__cell="my_rnn"))
        params = rnn.init(jax.random.key(0), 2, 3)
        xs = jax.random.normal(jax.random.key(1), (2, 5, 2))
        np.testing.assert_array_equal(gru_jax.scan(alias, params, xs)[1],
                                      gru_jax.scan("rnn", params, xs)[1])
        np.testing.assert_array_equal(gru_jax.scan("my_rnn", params, xs)[1],
                                      gru_jax.rnn_scan(params, xs)[1])
    finally:
        gru_jax.CELLS.pop("my_rnn")
    with pytest.raises(ConfigError, match=r"^model\.cell: must be one of .*got 'my_rnn'"):
        validate(make_tiny_config(model__cell="my_rnn"))


def test_register_cell_refuses_what_is_not_a_cell_and_builtin_names():
    with pytest.raises(TypeError, match="expected a gru_jax.Cell"):
        gru_jax.register_cell({"name": "x"})
    with pytest.raises(ValueError, match="'gru' is a built-in cell"):
        gru_jax.register_cell(gru_jax.get_cell("rnn")._replace(name="gru"))
    with pytest.raises(ValueError, match="must be an identifier"):
        gru_jax.register_cell(gru_jax.get_cell("rnn")._replace(name="a b"))


def test_a_registered_task_is_built_from_its_defaults_and_checked():
    register_task("adding_short", adding_task.make, {"seq_len": 7})
    try:
        assert get_task({"name": "adding_short"}).seq_len == 7
        c = apply_overrides(make_tiny_config(), {"task.name": "adding_short"})
        validate(c)
        assert c.task.to_dict() == {"name": "adding_short", "seq_len": 7}  # its own defaults
        with pytest.raises(ConfigError, match=r"^task\.copy_len: unknown key"):
            get_task({"name": "adding_short", "copy_len": 3})
    finally:
        TASKS.pop("adding_short")
        TASK_DEFAULTS.pop("adding_short")
    with pytest.raises(ValueError, match="built-in task"):
        register_task("copy", adding_task.make, {})


@pytest.mark.parametrize("name", ["adam", "sgd", "lion"])
def test_optax_optimisers_by_name_pass_the_config_check(name):
    validate(make_tiny_config(train__optimizer=name))


def test_an_unknown_optimiser_is_one_line_naming_the_key():
    with pytest.raises(ConfigError, match=r"^train\.optimizer: must name an optax optimiser"):
        validate(make_tiny_config(train__optimizer="adamm"))
    with pytest.raises(ConfigError, match=r"^train\.optimizer: "):
        validate(make_tiny_config(train__optimizer="chain"))  # optax, but not an optimiser


def _updates(tx, params, grads):
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_adamw_by_name_is_optax_adamw_with_decay_on_the_kernels_only():
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones((3,))}
    grads = {"w": jnp.full((2, 3), 0.5), "b": jnp.full((3,), -0.5)}
    mask = {"w": True, "b": False}
    want = _updates(optax.adamw(0.1, weight_decay=0.3, mask=mask), params, grads)
    got = _updates(optimizers.optimizer("adamw", 0.1, 0.3), params, grads)
    jax.tree_util.tree_map(np.testing.assert_array_equal, got, want)
    # adam takes no weight decay: train.weight_decay does not reach it
    got = _updates(optimizers.optimizer("adam", 0.1, 0.3), params, grads)
    jax.tree_util.tree_map(np.testing.assert_array_equal, got, _updates(optax.adam(0.1), params,
                                                                       grads))


def test_a_registered_optimiser_factory_trains(tmp_path):
    from gru_jax.harness.train import train_and_evaluate

    optimizers.register_optimizer("sgd_momentum", functools.partial(optax.sgd, momentum=0.9))
    try:
        c = make_tiny_config(train__optimizer="sgd_momentum", train__steps=2)
        summary = train_and_evaluate(c, str(tmp_path))
        assert summary["status"] == "done"
    finally:
        optimizers.OPTIMIZERS.pop("sgd_momentum")
    with pytest.raises(ConfigError, match="sgd_momentum"):
        validate(make_tiny_config(train__optimizer="sgd_momentum"))
