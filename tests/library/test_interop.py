"""Weight conversion: outputs, final states and gradients equal torch.nn.GRU / LSTM,
Keras GRU (both reset_after settings) and flax.linen.GRUCell under nn.RNN; round trips exact.

Weights and biases are random and nonzero, the initial state is random, so every
gate's slot in the other library's layout is exercised.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gru_jax import gru_scan, init_gru, init_lstm, lstm_scan
from gru_jax.interop import (
    from_flax_gru_cell,
    from_keras,
    from_torch,
    from_torch_lstm,
    to_flax_gru_cell,
    to_keras,
    to_torch,
    to_torch_lstm,
)

B, T, IN, H = 3, 5, 4, 6
TOL = dict(rtol=1e-5, atol=1e-5)


def close(a, b, **tol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **(tol or TOL))


def exact(a, b):
    """Same keys, shapes, dtypes and bits."""
    assert sorted(a) == sorted(b)
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert x.shape == y.shape and x.dtype == y.dtype, k
        np.testing.assert_array_equal(x, y, err_msg=k)


def randomize(params, seed, scale=0.5):
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [scale * jax.random.normal(k, x.shape, x.dtype)
               for k, x in zip(keys, leaves, strict=True)])


def case(seed):
    """xs [B, T, IN], h0 [B, H], and R [B, T, H] weighting the outputs in the loss."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(B, T, IN)).astype(np.float32),
            (0.5 * rng.normal(size=(B, H))).astype(np.float32),
            rng.normal(size=(B, T, H)).astype(np.float32))


def ours(params, xs, h0, r, impl="auto"):
    """(hs, h_last, d sum(hs * r) / d xs) from gru_scan."""
    def loss(x):
        h_last, hs = gru_scan(params, x, h0, impl=impl)
        return jnp.sum(hs * r), (hs, h_last)

    (_, (hs, h_last)), dx = jax.value_and_grad(loss, has_aux=True)(jnp.asarray(xs))
    return hs, h_last, dx


# ----------------------------------------------------------------------------- torch


def torch_run(torch, module, xs, h0, r):
    """(outputs, final state(s), d sum(outputs * r) / d xs, the module) from torch."""
    x = torch.tensor(xs, requires_grad=True)
    out, state = module(x, h0)
    (out * torch.tensor(r)).sum().backward()
    return out.detach().numpy(), state, x.grad.numpy()


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_torch_gru_from_our_params(torch, impl):
    params = randomize(init_gru(jax.random.key(0), IN, H), 0)
    xs, h0, r = case(0)
    gru = torch.nn.GRU(IN, H, batch_first=True)
    gru.load_state_dict(to_torch(params))
    out, h_n, dx = torch_run(torch, gru, xs, torch.tensor(h0)[None], r)
    hs, h_last, our_dx = ours(params, xs, h0, r, impl)
    close(hs, out)
    close(h_last, h_n.detach().numpy()[0])
    close(our_dx, dx)
    # the weight gradients too: from_torch relabels torch's gradients into our layout
    our_dp = jax.grad(lambda p: jnp.sum(gru_scan(p, xs, h0, impl=impl)[1] * r))(params)
    torch_dp = from_torch({k: v.grad for k, v in gru.named_parameters()})
    for k in params:
        close(our_dp[k], torch_dp[k], rtol=1e-4, atol=1e-5)


def test_torch_gru_to_our_params(torch):
    torch.manual_seed(0)
    gru = torch.nn.GRU(IN, H, batch_first=True)  # torch init: nonzero biases
    xs, h0, r = case(1)
    out, h_n, dx = torch_run(torch, gru, xs, torch.tensor(h0)[None], r)
    hs, h_last, our_dx = ours(from_torch(gru.state_dict()), xs, h0, r)
    close(hs, out)
    close(h_last, h_n.detach().numpy()[0])
    close(our_dx, dx)
    # the module itself and numpy arrays are accepted too
    exact(from_torch(gru), from_torch({k: v.numpy() for k, v in gru.state_dict().items()}))


def test_torch_gru_round_trips(torch):
    params = randomize(init_gru(jax.random.key(2), IN, H), 2)
    back = to_torch(params)
    assert all(isinstance(v, torch.Tensor) for v in back.values())
    exact(from_torch(back), params)
    sd = torch.nn.GRU(IN, H).state_dict()
    exact(to_torch(from_torch(sd)), sd)
    # bfloat16 (which numpy lacks) survives both ways
    p16 = jax.tree.map(lambda v: v.astype(jnp.bfloat16), params)
    assert to_torch(p16)["weight_hh_l0"].dtype == torch.bfloat16
    exact(from_torch(to_torch(p16)), p16)


def test_torch_lstm(torch):
    torch.manual_seed(3)
    lstm = torch.nn.LSTM(IN, H, batch_first=True)
    xs, h0, r = case(3)
    c0 = -h0[::-1].copy()
    out, (h_n, c_n), dx = torch_run(torch, lstm, xs, (torch.tensor(h0)[None],
                                                      torch.tensor(c0)[None]), r)

    def loss(x, p):
        (c, h), hs = lstm_scan(p, x, (jnp.asarray(c0), jnp.asarray(h0)))
        return jnp.sum(hs * r), (hs, h, c)

    params = from_torch_lstm(lstm.state_dict())
    (_, (hs, h, c)), our_dx = jax.value_and_grad(loss, has_aux=True)(jnp.asarray(xs), params)
    close(hs, out)
    close(h, h_n.detach().numpy()[0])
    close(c, c_n.detach().numpy()[0])
    close(our_dx, dx)
    # ours -> torch: random params, and the round trip is exact
    mine = randomize(init_lstm(jax.random.key(3), IN, H), 3)
    exact(from_torch_lstm(to_torch_lstm(mine)), mine)
    lstm.load_state_dict(to_torch_lstm(mine))
    out, _, _ = torch_run(torch, lstm, xs, (torch.tensor(h0)[None], torch.tensor(c0)[None]), r)
    close(lstm_scan(mine, xs, (c0, h0))[1], out)


# ----------------------------------------------------------------------------- Keras


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru(keras, reset_after):
    variant = "reset_after" if reset_after else "reset_before"
    params = randomize(init_gru(jax.random.key(4), IN, H, variant=variant), 4)
    xs, h0, r = case(4)
    layer = keras.layers.GRU(H, return_sequences=True, return_state=True,
                             reset_after=reset_after)
    layer.build((B, T, IN))
    weights = to_keras(params)
    assert [w.shape for w in weights] == [w.shape for w in layer.get_weights()]
    layer.set_weights(weights)

    def keras_loss(x):
        out, state = layer(x, initial_state=jnp.asarray(h0))
        return jnp.sum(out * r), (out, state)

    (_, (out, state)), dx = jax.value_and_grad(keras_loss, has_aux=True)(jnp.asarray(xs))
    hs, h_last, our_dx = ours(params, xs, h0, r)
    close(hs, out)
    close(h_last, state)
    close(our_dx, dx)
    # Keras's own layout back to ours, exactly; and ours -> Keras -> ours
    exact(from_keras(layer.get_weights(), reset_after=reset_after), params)
    got = [np.asarray(w) for w in to_keras(from_keras(layer.get_weights(), reset_after))]
    for a, b in zip(got, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_keras_gate_order_is_z_r_h(keras):
    """With only the first H columns of the kernel nonzero, Keras moves only z."""
    w = [np.zeros((IN, 3 * H), np.float32), np.zeros((H, 3 * H), np.float32),
         np.zeros((2, 3 * H), np.float32)]
    w[0][:, :H] = 1.0
    p = from_keras(w)
    assert float(jnp.abs(p["w_iz"]).min()) == 1.0
    assert float(jnp.abs(p["w_ir"]).max()) == float(jnp.abs(p["w_in"]).max()) == 0.0


# ----------------------------------------------------------------------------- flax


def test_flax_gru_cell_under_nn_rnn():
    import flax.linen as nn

    params = randomize(init_gru(jax.random.key(5), IN, H), 5)
    xs, h0, r = case(5)
    rnn = nn.RNN(nn.GRUCell(features=H), return_carry=True)
    variables = {"params": {"cell": to_flax_gru_cell(params)}}
    # same tree as flax's own init
    flax_init = rnn.init(jax.random.key(0), jnp.asarray(xs))
    assert jax.tree.map(jnp.shape, flax_init) == jax.tree.map(jnp.shape, variables)

    def flax_loss(x):
        h_last, out = rnn.apply(variables, x, initial_carry=jnp.asarray(h0))
        return jnp.sum(out * r), (out, h_last)

    (_, (out, state)), dx = jax.value_and_grad(flax_loss, has_aux=True)(jnp.asarray(xs))
    hs, h_last, our_dx = ours(params, xs, h0, r)
    close(hs, out)
    close(h_last, state)
    close(our_dx, dx)

    # flax's own (randomised) params into ours, and flax -> ours -> flax exactly
    theirs = randomize(flax_init, 6)
    back = from_flax_gru_cell(theirs)
    h_last_theirs, out = rnn.apply(theirs, jnp.asarray(xs), initial_carry=jnp.asarray(h0))
    close(gru_scan(back, xs, h0)[1], out)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)),
                                     to_flax_gru_cell(back), theirs["params"]["cell"]))
    # ours -> flax -> ours moves b_hr, b_hz into the input biases and nothing else
    moved = dict(params, b_ir=params["b_ir"] + params["b_hr"], b_iz=params["b_iz"] + params["b_hz"],
                 b_hr=jnp.zeros(H), b_hz=jnp.zeros(H))
    exact(from_flax_gru_cell(to_flax_gru_cell(params)), moved)


# ----------------------------------------------------------------------------- errors


def test_clear_errors():
    good = to_torch(init_gru(jax.random.key(0), IN, H))
    reset_before = init_gru(jax.random.key(0), IN, H, variant="reset_before")
    bad = [
        lambda: from_torch({k: v for k, v in good.items() if k != "weight_hh_l0"}),
        lambda: from_torch({**good, "weight_ih_l0": np.zeros((3 * H + 1, IN))}),
        lambda: from_torch({**good, "weight_ih_l1": good["weight_ih_l0"]}),
        lambda: from_torch({**good, "bias_ih_l0": np.zeros(H)}),
        lambda: from_torch({k: v for k, v in good.items() if k != "bias_hh_l0"}),
        lambda: from_torch_lstm(good),  # a GRU's 3H rows are not an LSTM's 4H
        lambda: to_torch(reset_before),
        lambda: to_torch({"w_ir": np.zeros((IN, H))}),
        lambda: from_keras(to_keras(reset_before), reset_after=True),
        lambda: from_keras(to_keras(init_gru(jax.random.key(0), IN, H)), reset_after=False),
        lambda: from_keras([np.zeros((IN, 3 * H)), np.zeros((H, 3 * H + 3))]),
        lambda: from_keras([np.zeros((IN, 3 * H))]),
        lambda: from_flax_gru_cell({"params": {"ir": {}}}),
        lambda: to_flax_gru_cell(reset_before),
    ]
    for call in bad:
        with pytest.raises(ValueError) as e:
            call()
        assert "\n" not in str(e.value)  # one line
