"""Flax wrappers: the linen GRU / Recurrent / GRUCell (in flax.linen.RNN) and the nnx
modules compute what the pure scans compute with the same params (the scans
themselves are checked against numpy loops in test_cells.py), and train."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import gru_jax
import gru_jax.nnx as gnnx
from gru_jax import GRU, GRUCell, Recurrent, gru_scan, init_gru, lstm_scan

B, T, IN, H = 4, 8, 3, 6
TOL = dict(rtol=1e-5, atol=1e-6)


def close(a, b, **tol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **(tol or TOL))


def randomize(params, seed, scale=0.5):
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [scale * jax.random.normal(k, x.shape, x.dtype)
               for k, x in zip(keys, leaves, strict=True)])


def data(seed=0):
    kx, kh = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (B, T, IN)), 0.5 * jax.random.normal(kh, (B, H))


class Regressor(nn.Module):
    """RNN(our GRUCell) -> Dense(1) on the last step."""

    @nn.compact
    def __call__(self, xs):
        hs = nn.RNN(GRUCell(H, name="cell"))(xs)  # built here, so the cell's params live here
        return nn.Dense(1)(hs[:, -1])[:, 0]


def test_gru_cell_in_flax_rnn_trains_and_equals_gru_scan():
    xs, _ = data(0)
    y = jnp.sum(xs[..., 0], axis=1) / T  # a tiny regression: the mean of channel 0
    model = Regressor()
    params = model.init(jax.random.key(1), xs)["params"]
    # the cell's params are our flat dict, as init_gru lays it out
    ours = params["cell"]["gru"]
    assert jax.tree.map(jnp.shape, ours) == jax.tree.map(jnp.shape, init_gru(
        jax.random.key(0), IN, H))

    # the RNN's outputs equal gru_scan with those params (random, nonzero biases)
    cell_params = randomize(ours, 2)
    hs = nn.RNN(GRUCell(H)).apply({"params": {"cell": {"gru": cell_params}}}, xs)
    close(hs, gru_scan(cell_params, xs)[1])

    tx = optax.adam(1e-2)
    opt = tx.init(params)

    def loss_fn(p):
        return jnp.mean((model.apply({"params": p}, xs) - y) ** 2)

    @jax.jit
    def step(p, o):
        loss, g = jax.value_and_grad(loss_fn)(p)
        upd, o = tx.update(g, o, p)
        return optax.apply_updates(p, upd), o, loss

    losses = []
    for _ in range(20):
        params, opt, loss = step(params, opt)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(np.isfinite(losses))


def test_gru_cell_initialize_carry_and_feature_axes():
    cell = GRUCell(H)
    carry = cell.initialize_carry(jax.random.key(0), (B, IN))
    assert carry.shape == (B, H) and carry.dtype == jnp.float32 and not carry.any()
    assert cell.num_feature_axes == 1
    # one step from a random state equals gru_step from the equations' implementation
    p = randomize(init_gru(jax.random.key(0), IN, H), 3)
    xs, h0 = data(3)
    h1, y = cell.apply({"params": {"gru": p}}, h0, xs[:, 0])
    close(h1, gru_scan(p, xs[:, :1], h0)[0])
    close(y, h1)


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
def test_linen_gru_equals_gru_scan(variant):
    xs, h0 = data(4)
    lengths = jnp.array([T, 3, 5, 1])
    layer = GRU(H, variant=variant, remat=3)
    variables = layer.init(jax.random.key(0), xs)
    # init is init_gru with the module's key: same tree and the variant's keys
    assert sorted(variables["params"]["gru"]) == sorted(
        init_gru(jax.random.key(0), IN, H, variant=variant))
    p = randomize(variables["params"]["gru"], 5)
    got = layer.apply({"params": {"gru": p}}, xs, h0, seq_lengths=lengths, reverse=True)
    want = gru_scan(p, xs, h0, seq_lengths=lengths, reverse=True, impl="reference")
    close(got[0], want[0])
    close(got[1], want[1])
    # and the GRU module's params run unchanged in the GRUCell under nn.RNN
    hs = nn.RNN(GRUCell(H, variant=variant)).apply({"params": {"cell": {"gru": p}}}, xs,
                                                   initial_carry=h0)
    close(hs, gru_scan(p, xs, h0)[1])


def test_linen_recurrent_lstm_equals_lstm_scan():
    xs, h0 = data(6)
    layer = Recurrent(H, cell="lstm")
    variables = layer.init(jax.random.key(0), xs)
    p = randomize(variables["params"]["lstm"], 6)
    (c, h), hs = layer.apply({"params": {"lstm": p}}, xs, (h0, -h0))
    (c2, h2), hs2 = lstm_scan(p, xs, (h0, -h0))
    close(hs, hs2)
    close(c, c2)
    close(h, h2)
    with pytest.raises(ValueError):
        Recurrent(H, cell="rnn", chrono_t_max=10).init(jax.random.key(0), xs)


def test_nnx_gru_equals_gru_scan_and_trains():
    xs, h0 = data(7)
    layer = gnnx.GRU(IN, H, rngs=nnx.Rngs(0))
    p = randomize(layer.get_params(), 7)
    layer.set_params(p)
    lengths = jnp.array([2, T, 4, 6])
    got = layer(xs, h0, seq_lengths=lengths)
    want = gru_scan(p, xs, h0, seq_lengths=lengths, impl="reference")
    close(got[0], want[0])
    close(got[1], want[1])

    # the nnx gradient is gru_scan's gradient, and an optimizer step changes the params
    loss = lambda m: jnp.sum(m(xs, h0)[1] ** 2)  # noqa: E731
    g = nnx.grad(loss)(layer)
    g_ref = jax.grad(lambda q: jnp.sum(gru_scan(q, xs, h0, impl="reference")[1] ** 2))(p)
    for k in p:
        close(g["params"][k].get_value(), g_ref[k], rtol=1e-4, atol=1e-6)
    opt = nnx.Optimizer(layer, optax.sgd(1e-2), wrt=nnx.Param)
    before = float(loss(layer))
    opt.update(layer, g)
    assert float(loss(layer)) < before


def test_nnx_recurrent_lstm():
    xs, _ = data(8)
    layer = gnnx.Recurrent(IN, H, cell="lstm", rngs=nnx.Rngs(1))
    (c, h), hs = layer(xs)
    (c2, h2), hs2 = lstm_scan(layer.get_params(), xs)
    close(hs, hs2)
    close(c, c2)


def test_modules_exported():
    assert gru_jax.GRU is GRU and gru_jax.GRUCell is GRUCell and gru_jax.Recurrent is Recurrent
