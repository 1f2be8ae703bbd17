"""The trainer: a short end-to-end run, exact resumption, and the model and
diagnostics checked against loops written from the equations."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config

from gru_jax.cells import gru_step, lstm_step, rnn_step
from gru_jax.harness import diagnostics
from gru_jax.harness.checkpoint import Checkpointer
from gru_jax.harness.config import make_task
from gru_jax.harness.models import apply_model, hidden_grads, init_model
from gru_jax.harness.steps import (
    create_train_state,
    make_schedule,
    task_loss,
    task_metric,
    train_step,
)
from gru_jax.harness.train import train_and_evaluate

SUMMARY_FIELDS = {
    "status", "step", "num_devices", "final", "num_params", "solved", "steps_to_solve",
    "steps_per_sec", "wall_time_sec", "grad_horizon", "peak_memory_bytes", "step_time_ms",
    "eval_history", "config", "resumed_from", "step_memory_bytes",
}


def test_two_steps_end_to_end(tmp_path):
    config = make_tiny_config(**{"train.steps": 2, "train.eval_every": 1})
    summary = train_and_evaluate(config, str(tmp_path))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    assert SUMMARY_FIELDS <= set(summary)
    assert summary["status"] == "done" and summary["step"] == 2
    assert summary["num_devices"] == jax.device_count()
    # GRU (reset_after), input 2, hidden 8: 3 gates x (2*8 + 8*8 + 2*8 biases) + head 8 + 1.
    assert summary["num_params"] == 3 * (2 * 8 + 8 * 8 + 2 * 8) + 8 + 1
    assert set(summary["final"]) == {"loss", "mse"}
    assert summary["final"]["mse"] == pytest.approx(summary["final"]["loss"])
    assert [e["step"] for e in summary["eval_history"]] == [1, 2]
    assert summary["eval_history"][-1]["mse"] == summary["final"]["mse"]
    assert summary["solved"] is (summary["final"]["mse"] <= 0.01)
    assert summary["steps_to_solve"] is None or summary["solved"]
    assert 0 <= summary["grad_horizon"] <= 7 and len(summary["grad_norms"]) == 8
    assert summary["peak_memory_bytes"] > 0 and summary["wall_time_sec"] > 0
    assert summary["step_memory_bytes"] > 0
    assert summary["steps_per_sec"] > 0 and summary["step_time_ms"] > 0
    assert summary["resumed_from"] is None
    assert summary["config"]["model"]["hidden_size"] == 8
    assert summary["config"]["task"] == {"name": "adding", "seq_len": 8}
    assert json.loads((tmp_path / "config.json").read_text()) == summary["config"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2"]
    assert list(tmp_path.glob("events.out.tfevents.*"))


def _final_params(workdir, config):
    task = make_task(config)
    target = create_train_state(jax.random.key(0), config, task)
    ckpt = Checkpointer(str(workdir), keep=5, every=1)
    step, state, _ = ckpt.restore_latest(target)
    ckpt.close()
    return step, state


def test_resume_matches_uninterrupted(tmp_path):
    # A constant schedule: the 4-step run is then a prefix of the 8-step one.
    common = {"train.eval_every": 2, "train.checkpoint_every": 2}  # TINY's schedule is constant
    full = make_tiny_config(**common, **{"train.steps": 8})
    ref = train_and_evaluate(full, str(tmp_path / "full"))

    half = train_and_evaluate(make_tiny_config(**common, **{"train.steps": 4}),
                              str(tmp_path / "resumed"))
    assert half["final"] == {k: v for k, v in ref["eval_history"][1].items() if k != "step"}
    again = train_and_evaluate(full, str(tmp_path / "resumed"))
    assert again["resumed_from"] == 4
    assert again["eval_history"] == ref["eval_history"]
    assert again["final"] == ref["final"]
    (s1, a), (s2, b) = _final_params(tmp_path / "full", full), \
        _final_params(tmp_path / "resumed", full)
    assert s1 == s2 == 8
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --- the model --------------------------------------------------------------------------

def _loop_layer(cell, params, xs):
    """One layer by a Python loop over time from the cells' one-step functions:
    xs [B, T, I] -> list over t of the carry after step t."""
    B, H = xs.shape[0], next(iter(params.values())).shape[-1]
    h = jnp.zeros((B, H))
    carry = (h, h) if cell == "lstm" else h
    step = {"gru": gru_step, "lstm": lstm_step, "rnn": rnn_step}[cell]
    out = []
    for t in range(xs.shape[1]):
        carry = step(params, carry, xs[:, t])
        out.append(carry)
    return out


def _hidden(cell, carry):
    return carry[1] if cell == "lstm" else carry


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_two_layers_equal_loops_by_hand(cell):
    spec = {"cell": cell, "hidden_size": 5, "num_layers": 2}
    params = init_model(jax.random.key(1), spec, 3, 2)
    x = jax.random.normal(jax.random.key(2), (4, 6, 3))
    h1 = jnp.stack([_hidden(cell, c) for c in _loop_layer(cell, params["layers"][0], x)], 1)
    h2 = jnp.stack([_hidden(cell, c) for c in _loop_layer(cell, params["layers"][1], h1)], 1)
    w, b = params["head"]["w"], params["head"]["b"]
    np.testing.assert_allclose(apply_model(params, x, spec, "last"), h2[:, -1] @ w + b,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(apply_model(params, x, spec, "sequence"), h2 @ w + b,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm", "mingru"])
def test_model_options_keep_the_function(cell):
    """remat, unroll and (gru) impl change how the scan runs, not what it computes;
    bfloat16 matmuls stay close. Two layers, sequence target."""
    base = {"cell": cell, "hidden_size": 6, "num_layers": 2}
    params = init_model(jax.random.key(0), base, 3, 2)
    x = jax.random.normal(jax.random.key(1), (2, 7, 3))
    want = apply_model(params, x, base, "sequence")
    variants = [{"remat": 3}, {"unroll": 2}]
    if cell == "gru":
        variants.append({"impl": "reference"})  # the default (auto) is the fused scan
    for v in variants:
        got = apply_model(params, x, {**base, **v}, "sequence")
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=str(v))
    low = apply_model(params, x, {**base, "dtype": "bfloat16"}, "sequence")
    assert low.dtype == jnp.float32
    np.testing.assert_allclose(low, want, atol=5e-2)


def test_chrono_init_reaches_the_keep_gate():
    spec = {"cell": "gru", "hidden_size": 64, "chrono": True}
    p = init_model(jax.random.key(0), spec, 2, 1, seq_len=50)["layers"][0]
    # b_iz ~ log U[1, T_max - 1]: within [0, log 49], not all zero.
    assert float(p["b_iz"].min()) >= 0.0 and float(p["b_iz"].max()) <= math.log(49) + 1e-6
    assert float(p["b_iz"].std()) > 0.3


@pytest.mark.parametrize("cell, layers, target", [
    ("gru", 1, "last"), ("lstm", 1, "last"), ("rnn", 1, "last"), ("gru", 2, "last"),
    ("gru", 1, "sequence"), ("lstm", 1, "sequence")])
def test_hidden_grads_equal_gradient_of_the_tail(cell, layers, target):
    """dL/dh_t from the reverse scan over carries equals the gradient of 'run the rest
    of the sequence from h_t' (a Python loop; with target "sequence" the predictions
    before t are constants), for every t."""
    spec = {"cell": cell, "hidden_size": 4, "num_layers": layers}
    params = init_model(jax.random.key(3), spec, 2, 1)
    x = jax.random.normal(jax.random.key(4), (3, 5, 2))
    T = x.shape[1]
    y = jax.random.normal(jax.random.key(5), (3, T, 1) if target == "sequence" else (3, 1))
    loss_fn = lambda preds: jnp.mean((preds - y) ** 2)  # noqa: E731
    got = hidden_grads(params, x, spec, target, loss_fn)  # [B, T, H]

    inp = x
    for layer in params["layers"][:-1]:
        inp = jnp.stack([_hidden(cell, c) for c in _loop_layer(cell, layer, inp)], 1)
    last = params["layers"][-1]
    carries = _loop_layer(cell, last, inp)
    step = {"gru": gru_step, "lstm": lstm_step, "rnn": rnn_step}[cell]
    w, b = params["head"]["w"], params["head"]["b"]
    for t in range(T):
        def tail(h, t=t):
            carry = (carries[t][0], h) if cell == "lstm" else h
            hs = [_hidden(cell, c) for c in carries[:t]] + [h]
            for s in range(t + 1, T):
                carry = step(last, carry, inp[:, s])
                hs.append(_hidden(cell, carry))
            pred = (jnp.stack(hs, 1) if target == "sequence" else hs[-1]) @ w + b
            return loss_fn(pred)

        want = jax.grad(tail)(_hidden(cell, carries[t]))
        np.testing.assert_allclose(got[:, t], want, rtol=1e-4, atol=1e-7)


# --- diagnostics ------------------------------------------------------------------------

def test_grad_horizon():
    # t = 0..4; relative to the last step: 1e-5, 1e-4, 1e-2, 0.5, 1.
    assert diagnostics.grad_horizon([1e-5, 1e-4, 1e-2, 0.5, 1.0], 1e-3) == 2
    assert diagnostics.grad_horizon([1e-5, 1e-4, 1e-2, 0.5, 1.0], 1e-6) == 4
    assert diagnostics.grad_horizon([1.0, 1e-9, 1.0], 1e-3) == 0  # must STAY above
    assert diagnostics.grad_horizon([1.0, 2.0, 0.0], 1e-3) == 0  # no gradient at the end
    assert diagnostics.grad_horizon([float("nan"), 1.0, 1.0], 1e-3) == 1


def test_grad_norm_curve():
    g = jnp.zeros((2, 3, 2)).at[0, 1].set(jnp.array([3.0, 4.0]))  # norm 5 at t=1, example 0
    np.testing.assert_allclose(diagnostics.grad_norm_curve(g), [0.0, 2.5, 0.0])


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
def test_update_gate_matches_the_equations(variant):
    from gru_jax.cells import init_gru

    p = init_gru(jax.random.key(0), 3, 4, variant=variant)
    p = {k: v + 0.1 * jax.random.normal(jax.random.key(9), v.shape) for k, v in p.items()}
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
    hs = jnp.stack(_loop_layer("gru", p, xs), 1)
    z = diagnostics.update_gate(p, xs, hs)
    h = jnp.zeros((2, 4))
    for t in range(5):
        pre = xs[:, t] @ p["w_iz"] + p["b_iz"] + h @ p["w_hz"]
        if variant == "reset_after":
            pre = pre + p["b_hz"]
        np.testing.assert_allclose(z[:, t], 1 / (1 + np.exp(-pre)), rtol=1e-5, atol=1e-6)
        h = hs[:, t]


def test_gate_stats():
    s = diagnostics.gate_stats(jnp.array([0.01, 0.5, 0.97, 0.2]))
    assert float(s["z_mean"]) == pytest.approx(0.42)
    assert float(s["z_saturated"]) == pytest.approx(0.5)


# --- losses, schedule, step -------------------------------------------------------------

def test_losses_and_metrics_by_hand():
    preds = jnp.array([[1.0], [3.0]])
    batch = {"y": jnp.array([[0.0], [1.0]])}
    assert float(task_loss(preds, batch, "mse")) == pytest.approx((1 + 4) / 2)
    assert float(task_metric(preds, batch, "mse")) == pytest.approx(2.5)
    logits = jnp.array([[[2.0, 0.0], [0.0, 2.0], [5.0, 0.0]]])  # [1, 3, 2]
    seq = {"y": jnp.array([[0, 0, 0]]), "w": jnp.array([[0.0, 1.0, 1.0]])}
    # Scored steps 1 (wrong) and 2 (right): 1/2. The loss is the plain mean over all 3.
    assert float(task_metric(logits, seq, "accuracy")) == pytest.approx(0.5)
    xent = [math.log1p(math.exp(-2)), 2 + math.log1p(math.exp(-2)), math.log1p(math.exp(-5))]
    assert float(task_loss(logits, seq, "xent")) == pytest.approx(sum(xent) / 3, rel=1e-6)


def test_schedules():
    cfg = make_tiny_config(**{"train.steps": 100, "train.warmup_steps": 10,
                              "train.learning_rate": 0.5, "train.schedule": "cosine"}).train
    f = make_schedule(cfg)
    for s in (0, 5, 10, 40, 100):
        want = 0.5 * s / 10 if s < 10 else 0.25 * (1 + math.cos(math.pi * (s - 10) / 90))
        assert float(f(s)) == pytest.approx(want, abs=1e-7)
    cfg.schedule = "constant"
    g = make_schedule(cfg)
    assert [float(g(s)) for s in (0, 5, 10, 99)] == pytest.approx([0, 0.25, 0.5, 0.5])


def test_train_step_metrics_and_nonfinite_freeze():
    config = make_tiny_config()
    task = make_task(config)
    state = create_train_state(jax.random.key(0), config, task)
    batch = task.sample(jax.random.key(1), 16)
    spec = config.model.to_dict()

    def plain_loss(params):
        return jnp.mean((apply_model(params, batch["x"], spec, "last") - batch["y"]) ** 2)

    grads = jax.jit(jax.grad(plain_loss))(state.params)
    new, m = jax.jit(train_step)(state, batch)
    assert float(m["loss"]) == pytest.approx(float(plain_loss(state.params)), rel=1e-6)
    assert float(m["mse"]) == pytest.approx(float(m["loss"]), rel=1e-6)
    gnorm = math.sqrt(sum(float(jnp.sum(g ** 2)) for g in jax.tree_util.tree_leaves(grads)))
    assert float(m["grad_norm"]) == pytest.approx(gnorm, rel=1e-5)
    assert float(m["learning_rate"]) == 0.0  # warmup from 0 at step 0
    new, m = jax.jit(train_step)(new, batch)
    assert float(m["learning_rate"]) == pytest.approx(1e-2 / 2)  # TINY: 2 warmup steps
    assert int(new.step) == 2 and int(new.bad_step) == -1

    poisoned = {**batch, "x": batch["x"].at[0, 0, 0].set(jnp.nan)}
    frozen, m = jax.jit(train_step)(new, poisoned)
    assert not np.isfinite(float(m["loss"]))
    assert int(frozen.bad_step) == 3 and int(frozen.step) == 3
    later, _ = jax.jit(train_step)(frozen, batch)  # finite again, but the run stays frozen
    assert int(later.bad_step) == 3
    for a, b in zip(jax.tree_util.tree_leaves((new.params, new.opt_state)),
                    jax.tree_util.tree_leaves((later.params, later.opt_state)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
