"""Stacked and bidirectional layers (`gru_jax.stacked`) against live torch.nn.GRU /
torch.nn.LSTM (num_layers, bidirectional, batch_first: outputs, h_n, input and
weight gradients) and Keras's Bidirectional(GRU) in every merge mode; dropout
between layers against its definition."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gru_jax import Cell, bidirectional, gru_scan, init_gru, init_stacked, stacked_scan
from gru_jax.interop import from_torch, from_torch_lstm, to_keras, to_torch

B, T, IN, H = 3, 5, 4, 6
TOL = dict(rtol=1e-5, atol=1e-5)


def close(a, b, **tol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **(tol or TOL))


def case(seed, L, D, batch_first=True):
    """xs in torch's layout, h0 [L*D, B, H], and R weighting the outputs in the loss."""
    rng = np.random.default_rng(seed)
    shape = (B, T, IN) if batch_first else (T, B, IN)
    out = (B, T, D * H) if batch_first else (T, B, D * H)
    return (rng.normal(size=shape).astype(np.float32),
            (0.5 * rng.normal(size=(L * D, B, H))).astype(np.float32),
            rng.normal(size=out).astype(np.float32))


def torch_grads(torch, module, xs, h0, r):
    """torch's (outputs, state, d sum(out * r) / d xs, {name: weight grad})."""
    x = torch.tensor(xs, requires_grad=True)
    out, state = module(x, h0)
    (out * torch.tensor(r)).sum().backward()
    return (out.detach().numpy(), state, x.grad.numpy(),
            {k: v.grad for k, v in module.named_parameters()})


@pytest.mark.parametrize("L, bidir, batch_first, impl", [
    (2, False, True, "auto"),
    (3, True, False, "reference"),
    (2, True, True, "fused"),
    (1, True, True, "auto"),
])
def test_stacked_gru_equals_torch(torch, L, bidir, batch_first, impl):
    D = 2 if bidir else 1
    torch.manual_seed(L + 10 * D)
    gru = torch.nn.GRU(IN, H, num_layers=L, bidirectional=bidir, batch_first=batch_first)
    xs, h0, r = case(L + D, L, D, batch_first)
    out, h_n, dx, dw = torch_grads(torch, gru, xs, torch.tensor(h0), r)

    params = from_torch(gru.state_dict())
    assert len(params) == L and all(sorted(p) == ["bwd", "fwd"][2 - D:] for p in params)

    def loss(p, x):
        h_last, hs = stacked_scan("gru", p, x, jnp.asarray(h0), time_major=not batch_first,
                                  impl=impl)
        return jnp.sum(hs * r), (hs, h_last)

    (_, (hs, h_last)), (dp, our_dx) = jax.value_and_grad(loss, (0, 1), has_aux=True)(
        params, jnp.asarray(xs))
    close(hs, out)
    close(h_last, h_n.detach().numpy())
    close(our_dx, dx)
    # torch's weight gradients, relabelled into our layout by from_torch
    torch_dp = from_torch(dw)
    for ours_l, theirs_l in zip(dp, torch_dp, strict=True):
        for d in ours_l:
            for k in ours_l[d]:
                close(ours_l[d][k], theirs_l[d][k], rtol=1e-4, atol=1e-5)
    # and the layout round-trips exactly, both ways
    back = to_torch(params)
    assert sorted(back) == sorted(gru.state_dict())
    for k, v in gru.state_dict().items():
        np.testing.assert_array_equal(back[k].numpy(), v.numpy(), err_msg=k)


def test_our_stacked_params_load_into_torch(torch):
    params = init_stacked(jax.random.key(0), "gru", IN, H, 2, bidirectional=True)
    params = jax.tree.map(lambda v: v + 0.1 * jnp.arange(v.size).reshape(v.shape) / v.size,
                          params)  # nonzero biases, every slot distinct
    gru = torch.nn.GRU(IN, H, num_layers=2, bidirectional=True, batch_first=True)
    gru.load_state_dict(to_torch(params))
    xs, h0, _ = case(5, 2, 2)
    out, h_n = gru(torch.tensor(xs), torch.tensor(h0))
    h_last, hs = stacked_scan("gru", params, xs, h0)
    close(hs, out.detach().numpy())
    close(h_last, h_n.detach().numpy())


def test_stacked_lstm_equals_torch(torch):
    torch.manual_seed(4)
    lstm = torch.nn.LSTM(IN, H, num_layers=2, bidirectional=True, batch_first=True)
    xs, h0, r = case(6, 2, 2)
    c0 = -h0[:, ::-1].copy()
    out, (h_n, c_n), dx, _ = torch_grads(torch, lstm, xs, (torch.tensor(h0), torch.tensor(c0)), r)
    params = from_torch_lstm(lstm)

    def loss(x):
        (c, h), hs = stacked_scan("lstm", params, x, (jnp.asarray(c0), jnp.asarray(h0)))
        return jnp.sum(hs * r), (hs, h, c)

    (_, (hs, h, c)), our_dx = jax.value_and_grad(loss, has_aux=True)(jnp.asarray(xs))
    close(hs, out)
    close(h, h_n.detach().numpy())
    close(c, c_n.detach().numpy())
    close(our_dx, dx)


def test_stacked_with_seq_lengths_is_torch_packed(torch):
    """seq_lengths = torch's pack_padded_sequence: h_n after each valid prefix."""
    torch.manual_seed(7)
    gru = torch.nn.GRU(IN, H, num_layers=2, bidirectional=True, batch_first=True)
    xs, h0, _ = case(7, 2, 2)
    lengths = [T, 2, 4]
    pack = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(xs), lengths, batch_first=True,
                                                   enforce_sorted=False)
    out, h_n = gru(pack, torch.tensor(h0))
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    h_last, hs = stacked_scan("gru", from_torch(gru), xs, h0, seq_lengths=jnp.array(lengths))
    close(hs, out.detach().numpy())
    close(h_last, h_n.detach().numpy())


def test_interop_refuses_incomplete_stacks(torch):
    sd = torch.nn.GRU(IN, H, num_layers=2, bidirectional=True).state_dict()
    del sd["weight_ih_l1_reverse"], sd["weight_hh_l1_reverse"]
    del sd["bias_ih_l1_reverse"], sd["bias_hh_l1_reverse"]
    with pytest.raises(ValueError, match="l1_reverse"):
        from_torch(sd)
    sd = torch.nn.LSTM(IN, H, proj_size=2).state_dict()
    with pytest.raises(ValueError, match="weight_hr_l0"):
        from_torch_lstm(sd)


# ----------------------------------------------------------------------------- dropout


def _linear_cell():
    """y_t = x_t @ w: makes a layer's input visible in its output."""
    return Cell(
        "linear",
        lambda key, i, h, **kw: {"w": jnp.eye(i, h)},
        lambda p, x, dtype=None: x @ p["w"],
        lambda p, c, xp, dtype=None: (xp, xp),
        lambda p, batch: jnp.zeros((*batch, p["w"].shape[1])),
        lambda c: c,
    )


def test_dropout_between_layers_follows_its_definition():
    cell, rate = _linear_cell(), 0.25
    params = init_stacked(jax.random.key(0), cell, H, H, 3)
    xs = 1.0 + jax.random.uniform(jax.random.key(1), (64, T, H))  # nonzero everywhere
    _, plain = stacked_scan(cell, params, xs)
    close(plain, xs)
    # deterministic, or no rate: no dropout (the rng is then ignored)
    close(stacked_scan(cell, params, xs, dropout=rate, deterministic=True)[1], xs)
    _, hs = stacked_scan(cell, params, xs, dropout=rate, rng=jax.random.key(2))
    # two dropouts (after layers 1 and 2, not after the last): each kept unit is
    # scaled by 1/(1-rate) per dropout, dropped ones are zero
    kept = hs != 0
    np.testing.assert_allclose(np.asarray(hs)[kept], np.asarray(xs / (1 - rate) ** 2)[kept],
                               rtol=1e-6)
    assert abs(kept.mean() - (1 - rate) ** 2) < 0.03
    assert abs(float(hs.mean() / xs.mean()) - 1) < 0.05  # the expected value is kept
    # a different rng gives a different mask; the same rng, the same one
    again = stacked_scan(cell, params, xs, dropout=rate, rng=jax.random.key(2))[1]
    other = stacked_scan(cell, params, xs, dropout=rate, rng=jax.random.key(3))[1]
    np.testing.assert_array_equal(np.asarray(again), np.asarray(hs))
    assert (np.asarray(other != 0) != np.asarray(kept)).any()
    with pytest.raises(ValueError, match="needs rng"):
        stacked_scan(cell, params, xs, dropout=rate)


def test_stacked_bad_input_is_one_line():
    params = init_stacked(jax.random.key(0), "gru", IN, H, 2)
    xs = jnp.ones((B, T, IN))
    with pytest.raises(ValueError, match=r"layers \* directions = 2"):
        stacked_scan("gru", params, xs, jnp.zeros((1, B, H)))
    with pytest.raises(ValueError, match="merge_mode"):
        init_stacked(jax.random.key(0), "gru", IN, H, 2, merge_mode="max")
    with pytest.raises(ValueError, match="num_layers"):
        init_stacked(jax.random.key(0), "gru", IN, H, 0)


# ----------------------------------------------------------------------------- Keras


def _random_gru(seed):
    p = init_gru(jax.random.key(seed), IN, H)
    keys = jax.random.split(jax.random.key(100 + seed), len(p))
    return {k: 0.5 * jax.random.normal(kk, v.shape) for kk, (k, v) in zip(keys, p.items(),
                                                                          strict=True)}


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_equals_keras(keras, merge_mode):
    pf, pb = _random_gru(1), _random_gru(2)
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(B, T, IN)).astype(np.float32)
    hf0, hb0 = (0.5 * rng.normal(size=(2, B, H))).astype(np.float32)
    layer = keras.layers.Bidirectional(
        keras.layers.GRU(H, return_sequences=True, return_state=True), merge_mode=merge_mode)
    layer.build((B, T, IN))
    layer.forward_layer.set_weights(to_keras(pf))
    layer.backward_layer.set_weights(to_keras(pb))
    got = layer(jnp.asarray(xs), initial_state=[jnp.asarray(hf0), jnp.asarray(hb0)])
    (cf, cb), hs = bidirectional(gru_scan, pf, pb, xs, (hf0, hb0), merge_mode=merge_mode)
    if merge_mode is None:  # Keras: [out_fwd, out_bwd, h_fwd, h_bwd]
        close(hs[0], got[0])
        close(hs[1], got[1])
        got = got[1:]
    else:
        close(hs, got[0])
    close(cf, got[1])
    close(cb, got[2])
    # the same through stacked_scan, with the directions' states stacked
    if merge_mode is not None:
        layers = [{"fwd": pf, "bwd": pb}]
        h_last, hs2 = stacked_scan("gru", layers, xs, jnp.stack([hf0, hb0]),
                                   merge_mode=merge_mode)
        close(hs2, got[0])
        close(h_last, np.stack([got[1], got[2]]))


@pytest.mark.parametrize("merge_mode", ["concat", "ave"])
def test_bidirectional_with_mask_holes_equals_keras(keras, merge_mode):
    """Keras's Bidirectional(GRU) with a [batch, time] mask that has holes: both
    directions skip the masked steps (the backward one in reverse order)."""
    pf, pb = _random_gru(3), _random_gru(4)
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(B, T, IN)).astype(np.float32)
    mask = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 1]], bool)
    layer = keras.layers.Bidirectional(
        keras.layers.GRU(H, return_sequences=True, return_state=True), merge_mode=merge_mode)
    layer.build((B, T, IN))
    layer.forward_layer.set_weights(to_keras(pf))
    layer.backward_layer.set_weights(to_keras(pb))
    got = layer(jnp.asarray(xs), mask=jnp.asarray(mask))
    # Bidirectional with return_sequences zeroes the outputs at masked steps
    h_last, hs = stacked_scan("gru", [{"fwd": pf, "bwd": pb}], xs, mask=mask,
                              merge_mode=merge_mode, zero_output_for_mask=True)
    close(h_last, np.stack([got[1], got[2]]))
    close(hs, got[0])
    # the other choice (repeat the last output) changes the holes only
    h_rep, hs_rep = stacked_scan("gru", [{"fwd": pf, "bwd": pb}], xs, mask=mask,
                                 merge_mode=merge_mode, zero_output_for_mask=False)
    close(h_rep, h_last)
    close(np.where(mask[..., None], hs_rep, 0), hs)
    assert not np.allclose(hs_rep, hs)
