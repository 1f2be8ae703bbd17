"""The fused LSTM (gru_jax.fused.lstm: hand-written backward) against the reference
scan (JAX autodiff of the plain step): gradients of every parameter, of xs and of
the carry (c0, h0), with lengths, masks, reverse, remat, bf16 products and vmap;
and which impl "auto" picks. Tiny shapes, float64 where exact.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gru_jax import init_lstm, lstm_scan
from gru_jax.cells import LSTM
from gru_jax.scan import Impl, Needs, resolve_impl

B, IN, H, T = 3, 2, 5, 7


def _inputs(dtype=jnp.float64, chrono=False):
    k = jax.random.split(jax.random.key(1), 4)
    p = init_lstm(k[0], IN, H, param_dtype=dtype, chrono_t_max=10.0 if chrono else None)
    xs = jax.random.normal(k[1], (B, T, IN), dtype)
    carry = (jax.random.normal(k[2], (B, H), dtype), jax.random.normal(k[3], (B, H), dtype))
    return p, xs, carry


def _loss(impl, **options):
    def loss(p, xs, carry):
        (c, h), hs = lstm_scan(p, xs, carry, impl=impl, **options)
        # every output reaches the loss, each through its own weights
        return jnp.sum(jnp.sin(hs) * jnp.arange(T)[:, None]) + jnp.sum(c ** 2) + 3 * jnp.sum(h)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


def _assert_close(a, b, **tol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), **tol)


OPTIONS = {
    "plain": {},
    "lengths": {"seq_lengths": jnp.array([7, 3, 0])},
    "reverse, lengths": {"reverse": True, "seq_lengths": jnp.array([2, 7, 5])},
    "mask, held outputs": {"mask": jnp.array([[1, 0, 1, 1, 0, 1, 1]] * B, bool),
                           "zero_output_for_mask": False},
    "remat 3": {"remat": 3},
}


@pytest.mark.parametrize("name", OPTIONS)
def test_gradients_match_the_reference_scan(name):
    with jax.enable_x64(True):
        p, xs, carry = _inputs(chrono=name == "plain")
        _assert_close(_loss("fused", **OPTIONS[name])(p, xs, carry),
                      _loss("reference", **OPTIONS[name])(p, xs, carry), rtol=1e-10, atol=1e-12)


def test_bf16_products_match_the_reference_in_bf16():
    p, xs, carry = _inputs(jnp.float32)
    fused = _loss("fused", dtype=jnp.bfloat16)(p, xs, carry)
    ref = _loss("reference", dtype=jnp.bfloat16)(p, xs, carry)
    exact = _loss("reference")(p, xs, carry)
    _assert_close(fused, ref, rtol=3e-2, atol=3e-2)
    # and bf16 is what moved it: the fused bf16 run is not the float32 one
    assert not np.allclose(fused[0], exact[0], rtol=1e-6)


def test_a_carry_only_loss_and_vmap_over_members():
    with jax.enable_x64(True):
        p, xs, carry = _inputs()
        members = jax.tree_util.tree_map(lambda a: jnp.stack([a, 1.5 * a]), p)

        def last_c(impl):  # hs unused: the backward sees a symbolic zero for it
            return jax.grad(lambda p: jnp.sum(lstm_scan(p, xs, carry, impl=impl)[0][0] ** 2))

        _assert_close(jax.jit(jax.vmap(last_c("fused")))(members),
                      jax.vmap(last_c("reference"))(members), rtol=1e-10, atol=1e-12)


def test_auto_picks_fused_for_real_lstms_and_forward_mode_falls_back():
    p, xs, carry = _inputs(jnp.float32)
    assert resolve_impl("auto", LSTM, p, "cpu") is Impl.FUSED
    assert resolve_impl("auto", LSTM, p, "cpu", Needs(complex=True)) is Impl.REFERENCE
    with pytest.raises(ValueError, match="no recurrent_dropout"):
        resolve_impl("fused", LSTM, p, "cpu", Needs(recurrent_dropout=True))
    f = lambda x: lstm_scan(p, x, carry)[1]  # noqa: E731
    _, auto = jax.jvp(f, (xs,), (xs,))
    _, ref = jax.jvp(lambda x: lstm_scan(p, x, carry, impl="reference")[1], (xs,), (xs,))
    _assert_close(auto, ref, rtol=1e-6)
    with pytest.raises(ValueError, match="pass impl='auto' or 'reference'"):
        jax.jvp(lambda x: lstm_scan(p, x, carry, impl="fused")[1], (xs,), (xs,))
