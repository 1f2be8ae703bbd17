"""Keras masks with holes (`mask=`, `zero_output_for_mask=`) against Keras's own
test numbers (keras/src/layers/rnn/gru_test.py::test_masking) and the live
keras.layers.GRU (JAX backend), for the reference and the fused GRU, with
gradients of the fused path against the reference; and masks for every cell
against a numpy loop that skips the masked steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gru_jax import gru_scan, init_gru, init_lstm, init_mingru, init_rnn, scan
from gru_jax.interop import from_keras, to_keras

TOL = dict(rtol=1e-5, atol=1e-5)

# keras/src/layers/rnn/gru_test.py::test_masking: GRU(2), kernel 0.01, recurrent
# kernel 0.02, bias 0.03 (reset_after), input arange(24) as [2, 4, 3]
KERAS_SEQ = np.arange(24).reshape((2, 4, 3)).astype("float32")
KERAS_MASK = np.array([[True, True, False, True], [True, False, False, True]])
KERAS_LAST = [[0.19393763, 0.19393763], [0.30818558, 0.30818558]]
KERAS_SEQ_OUT = [  # return_sequences=True (zero_output_for_mask=False, Keras's default)
    [[0.03606692] * 2, [0.09497581] * 2, [0.09497581] * 2, [0.19393763] * 2],
    [[0.16051409] * 2, [0.16051409] * 2, [0.16051409] * 2, [0.30818558] * 2],
]
KERAS_ZERO_OUT = [  # zero_output_for_mask=True
    [[0.03606692] * 2, [0.09497581] * 2, [0.0] * 2, [0.19393763] * 2],
    [[0.16051409] * 2, [0.0] * 2, [0.0] * 2, [0.30818558] * 2],
]
KERAS_BACKWARDS_LAST = [[0.11669192, 0.11669192], [0.28380975, 0.28380975]]


def close(a, b, **tol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **(tol or TOL))


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_keras_masking_test_numbers(impl):
    p = from_keras([np.full((3, 6), 0.01, np.float32), np.full((2, 6), 0.02, np.float32),
                    np.full((2, 6), 0.03, np.float32)])
    h, hs = gru_scan(p, KERAS_SEQ, mask=KERAS_MASK, impl=impl)
    close(h, KERAS_LAST)
    close(hs, KERAS_ZERO_OUT)
    _, hs = gru_scan(p, KERAS_SEQ, mask=KERAS_MASK, zero_output_for_mask=False, impl=impl)
    close(hs, KERAS_SEQ_OUT)
    close(gru_scan(p, KERAS_SEQ, mask=KERAS_MASK, reverse=True, impl=impl)[0],
          KERAS_BACKWARDS_LAST)


def _keras_gru(keras, params, reset_after, **kw):
    H = params["w_hr"].shape[0]
    layer = keras.layers.GRU(H, reset_after=reset_after, return_sequences=True,
                             return_state=True, **kw)
    layer.build((None, None, params["w_ir"].shape[0]))
    layer.set_weights(to_keras(params))
    return layer


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
@pytest.mark.parametrize("zero_out", [True, False])
@pytest.mark.parametrize("backwards", [False, True])
def test_holes_match_live_keras(keras, variant, zero_out, backwards):
    rng = np.random.default_rng(3)
    B, T, IN, H = 3, 6, 2, 4
    p = init_gru(jax.random.key(1), IN, H, variant=variant)
    p = {k: v + 0.2 * rng.normal(size=v.shape).astype(np.float32) for k, v in p.items()}
    xs = rng.normal(size=(B, T, IN)).astype(np.float32)
    h0 = (0.5 * rng.normal(size=(B, H))).astype(np.float32)
    mask = np.array([[1, 0, 1, 1, 0, 1], [0, 0, 1, 0, 1, 1], [1, 1, 1, 1, 1, 0]], bool)
    layer = _keras_gru(keras, p, variant == "reset_after", go_backwards=backwards,
                       zero_output_for_mask=zero_out)
    out, state = layer(xs, initial_state=h0, mask=mask)
    out = np.asarray(out)[:, ::-1] if backwards else np.asarray(out)  # Keras: processing order
    h, hs = gru_scan(p, xs, h0, mask=mask, reverse=backwards, zero_output_for_mask=zero_out)
    close(h, state)
    close(hs, out)


def test_fused_gradients_with_holes_equal_reference():
    rng = np.random.default_rng(0)
    B, T, IN, H = 3, 9, 2, 5
    with jax.enable_x64(True):
        p = {k: v + 0.1 for k, v in init_gru(jax.random.key(2), IN, H,
                                              param_dtype=jnp.float64).items()}
        xs = jnp.asarray(rng.normal(size=(B, T, IN)))
        h0 = jnp.asarray(rng.normal(size=(B, H)))
        mask = jnp.asarray(rng.random((B, T)) < 0.6)
        lengths = jnp.array([9, 5, 2])

        def loss(impl, reverse, zero_out):
            def f(p, xs, h0):
                h, hs = gru_scan(p, xs, h0, mask=mask, seq_lengths=lengths, reverse=reverse,
                                 zero_output_for_mask=zero_out, impl=impl)
                return jnp.sum(h ** 2) + jnp.sum(jnp.sin(hs))
            return jax.value_and_grad(f, argnums=(0, 1, 2))(p, xs, h0)

        for reverse in (False, True):
            for zero_out in (True, False):
                want, got = loss("reference", reverse, zero_out), loss("fused", reverse, zero_out)
                for a, b in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got),
                                strict=True):
                    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def _np_masked(step, carry, xs, mask, hidden_of):
    """A plain loop that skips masked steps: -> (carry, outputs, zero where masked)."""
    outs = []
    for x, m in zip(xs, mask, strict=True):
        if m:
            carry = step(carry, x)
        outs.append(hidden_of(carry) if m else np.zeros_like(hidden_of(carry)))
    return carry, np.stack(outs)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn", "mingru"])
def test_every_cell_skips_masked_steps(cell):
    """For every cell, a masked step is the step not taken: the loop over only
    the unmasked steps (the cell's own one-step function) gives the same carry."""
    from gru_jax import gru_step, lstm_step, mingru_step, rnn_step

    init = {"gru": init_gru, "lstm": init_lstm, "rnn": init_rnn, "mingru": init_mingru}[cell]
    one = {"gru": gru_step, "lstm": lstm_step, "rnn": rnn_step, "mingru": mingru_step}[cell]
    rng = np.random.default_rng(5)
    B, T, IN, H = 2, 7, 3, 4
    p = init(jax.random.key(0), IN, H)
    xs = rng.normal(size=(B, T, IN)).astype(np.float32)
    mask = np.array([[1, 0, 0, 1, 1, 0, 1], [0, 1, 1, 0, 1, 1, 0]], bool)
    carry, hs = scan(cell, p, xs, mask=mask)
    hidden_of = (lambda c: np.asarray(c[1])) if cell == "lstm" else np.asarray
    for b in range(B):
        c0 = (jnp.zeros((H,)), jnp.zeros((H,))) if cell == "lstm" else jnp.zeros((H,))
        want_c, want_hs = _np_masked(lambda c, x: one(p, c, jnp.asarray(x)), c0, xs[b],
                                     mask[b], hidden_of)
        close(jax.tree_util.tree_map(lambda a, b=b: a[b], carry), want_c)
        close(hs[b], want_hs)


def test_bad_mask_is_one_line():
    p = init_gru(jax.random.key(0), 3, 4)
    with pytest.raises(ValueError, match=r"mask must have shape \[2, 5\]"):
        gru_scan(p, jnp.ones((2, 5, 3)), mask=jnp.ones((5, 2), bool))
