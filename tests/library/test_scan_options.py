"""`scan`'s options against independent sources: batch shapes against flax.linen.RNN
and the flattened batch; the carry dtype against flax's float16 GRU; complex
inputs against flax's GRUCell; forward-mode autodiff against finite
differences; dropout against a numpy loop with the same per-sequence masks,
and the masks' statistics; length 0 as flax returns it."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gru_jax import (
    gru_scan,
    init_gru,
    init_lstm,
    init_mingru,
    init_rnn,
    lstm_scan,
    mingru_scan,
    scan,
)
from gru_jax.interop import to_flax_gru_cell
from gru_jax.loop import dropout_masks

TOL = dict(rtol=1e-5, atol=1e-5)
IN, H = 3, 4


def close(a, b, **tol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **(tol or TOL))


def _params(seed=0, dtype=jnp.float32, **kw):
    p = init_gru(jax.random.key(seed), IN, H, param_dtype=dtype, **kw)
    return {k: v + jnp.asarray(0.1, dtype) for k, v in p.items()}  # non-zero biases


def _flax_rnn(params, xs, dtype=None, param_dtype=jnp.float32, initial_carry=None):
    cell = nn.GRUCell(features=H, dtype=dtype, param_dtype=param_dtype)
    return nn.RNN(cell, return_carry=True).apply(
        {"params": {"cell": to_flax_gru_cell(params)}}, xs, initial_carry=initial_carry)


# ------------------------------------------------------------------ input shapes


def test_leading_batch_dims_match_flax_rnn_and_flat_batch():
    p = _params()
    xs = jax.random.normal(jax.random.key(1), (2, 3, 5, IN))  # [*batch=(2, 3), time, features]
    h, hs = gru_scan(p, xs)
    fh, fhs = _flax_rnn(p, xs)
    close(h, fh)
    close(hs, fhs)
    h_flat, hs_flat = gru_scan(p, xs.reshape(6, 5, IN))
    close(hs, hs_flat.reshape(2, 3, 5, H))
    # time-major with the same batch shape, seq_lengths and mask [*batch]
    lengths = jnp.array([[5, 2, 1], [3, 4, 0]])
    h_tm, hs_tm = gru_scan(p, jnp.moveaxis(xs, 2, 0), time_major=True, seq_lengths=lengths)
    h_bm, hs_bm = gru_scan(p, xs, seq_lengths=lengths)
    close(h_tm, h_bm)
    close(jnp.moveaxis(hs_tm, 0, 2), hs_bm)


def test_unbatched_sequence_is_a_batch_of_one():
    """torch.nn.GRU takes an unbatched [time, features]; so does gru_scan, h0 [hidden]."""
    p = _params()
    xs = jax.random.normal(jax.random.key(2), (6, IN))
    h0 = jax.random.normal(jax.random.key(3), (H,))
    h, hs = gru_scan(p, xs, h0, seq_lengths=4)
    hb, hsb = gru_scan(p, xs[None], h0[None], seq_lengths=jnp.array([4]))
    assert h.shape == (H,) and hs.shape == (6, H)
    close(h, hb[0])
    close(hs, hsb[0])
    c, hs_l = lstm_scan(init_lstm(jax.random.key(0), IN, H), xs)
    assert c[0].shape == (H,) and hs_l.shape == (6, H)


@pytest.mark.parametrize("cell, init", [("gru", init_gru), ("lstm", init_lstm),
                                        ("mingru", init_mingru)])
def test_wrong_feature_size_names_the_expected_size(cell, init):
    p = init(jax.random.key(0), IN, H)
    with pytest.raises(ValueError, match=f"xs has 5 features .*these {cell} params take {IN}"):
        scan(cell, p, jnp.ones((2, 7, 5)))


def test_bad_carry_shape_is_one_line():
    with pytest.raises(ValueError, match=r"carry0 must have shape \[2, 4\]"):
        gru_scan(_params(), jnp.ones((2, 7, IN)), jnp.ones((3, H)))


def test_length_zero_returns_h0_and_empty_outputs_as_flax():
    p = _params()
    h0 = jax.random.normal(jax.random.key(4), (2, H))
    xs = jnp.ones((2, 0, IN))
    h, hs = gru_scan(p, xs, h0)
    close(h, h0)
    assert hs.shape == (2, 0, H)
    fh, fhs = nn.RNN(nn.GRUCell(features=H), return_carry=True).apply(
        {"params": {"cell": to_flax_gru_cell(p)}}, xs, initial_carry=h0)
    close(h, fh)
    assert fhs.shape == hs.shape
    c, hs = lstm_scan(init_lstm(jax.random.key(0), IN, H), jnp.ones((0, 2, IN)), time_major=True)
    assert hs.shape == (0, 2, H) and float(jnp.abs(c[0]).sum()) == 0.0


# ------------------------------------------------------------------ dtypes


def test_float16_carry_matches_flax_float16_gru():
    """flax returns float16 for float16 params and inputs; carry_dtype=float16 does too."""
    p16 = _params(dtype=jnp.float16)
    xs = jax.random.normal(jax.random.key(5), (2, 6, IN), jnp.float16)
    fh, fhs = _flax_rnn(p16, xs, dtype=jnp.float16, param_dtype=jnp.float16)
    assert fh.dtype == jnp.float16
    for impl in ("reference", "fused"):
        h, hs = gru_scan(p16, xs, carry_dtype=jnp.float16, impl=impl)
        assert h.dtype == hs.dtype == jnp.float16
        close(hs.astype(np.float32), fhs.astype(np.float32), rtol=2e-2, atol=2e-3)
    h32, _ = gru_scan(p16, xs)  # float32 by default, the same numbers to float16 rounding
    assert h32.dtype == jnp.float32
    close(h32, fh.astype(np.float32), rtol=2e-2, atol=2e-3)


def test_complex_inputs_carry_complex_as_flax():
    p = _params()
    k1, k2 = jax.random.split(jax.random.key(6))
    xs = (jax.random.normal(k1, (2, 5, IN)) + 1j * jax.random.normal(k2, (2, 5, IN))) * 0.5
    xs = xs.astype(jnp.complex64)
    # flax carries complex64 given a complex initial carry; ours defaults to it
    fh, fhs = _flax_rnn(p, xs, initial_carry=jnp.zeros((2, H), jnp.complex64))
    h, hs = gru_scan(p, xs)  # auto: the reference scan (fused is real-only)
    assert h.dtype == fh.dtype == jnp.complex64
    close(h, fh)
    close(hs, fhs)
    with pytest.raises(ValueError, match="real inputs only"):
        gru_scan(p, xs, impl="fused")


# ------------------------------------------------------------------ forward-mode autodiff


def _central_diff(f, x, v, eps=1e-6):
    return (f(x + eps * v) - f(x - eps * v)) / (2 * eps)


def test_jvp_and_jacfwd_with_default_impl_match_finite_differences():
    with jax.enable_x64(True):
        p = _params(dtype=jnp.float64)
        xs = jax.random.normal(jax.random.key(7), (2, 5, IN), jnp.float64)
        v = jax.random.normal(jax.random.key(8), xs.shape, jnp.float64)

        def f(xs):
            h, hs = gru_scan(p, xs, seq_lengths=jnp.array([5, 3]))
            return jnp.concatenate([h.ravel(), hs.ravel()])

        _, tangent = jax.jvp(f, (xs,), (v,))
        close(tangent, _central_diff(f, xs, v), rtol=1e-7, atol=1e-9)
        jac = jax.jit(jax.jacfwd(lambda w: gru_scan({**p, "w_hz": w}, xs)[0]))(p["w_hz"])
        dw = jax.random.normal(jax.random.key(9), p["w_hz"].shape, jnp.float64)
        want = _central_diff(lambda w: gru_scan({**p, "w_hz": w}, xs)[0], p["w_hz"], dw)
        close(jnp.tensordot(jac, dw, axes=2), want, rtol=1e-7, atol=1e-9)
        # and reverse mode (the fused backward) still agrees with forward mode
        g = jax.grad(lambda xs: jnp.vdot(f(xs), f(xs)))(xs)
        _, d = jax.jvp(lambda xs: jnp.vdot(f(xs), f(xs)), (xs,), (v,))
        close(jnp.vdot(g, v), d, rtol=1e-9)


def test_jvp_through_explicit_fused_says_what_to_pass():
    p = _params()
    xs = jnp.ones((2, 4, IN))
    with pytest.raises(ValueError, match="pass impl='auto' or 'reference'"):
        jax.jvp(lambda x: gru_scan(p, x, impl="fused")[0], (xs,), (xs,))


# ------------------------------------------------------------------ dropout


def _np_gru_dropped(p, xs, h0, m_in, m_rec):
    """numpy float64 loop (reset_after) with Keras's dropout: inputs x * m_in,
    the state h * m_rec in every recurrent product, the update on h itself."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h, out = np.asarray(h0, np.float64), []
    for x in np.asarray(xs, np.float64):
        x, hd = x * m_in, h * m_rec
        r = sig(x @ p["w_ir"] + p["b_ir"] + hd @ p["w_hr"] + p["b_hr"])
        z = sig(x @ p["w_iz"] + p["b_iz"] + hd @ p["w_hz"] + p["b_hz"])
        n = np.tanh(x @ p["w_in"] + p["b_in"] + r * (hd @ p["w_hn"] + p["b_hn"]))
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out)


def test_dropout_uses_one_mask_per_sequence_at_every_step():
    p = _params()
    B, T = 3, 6
    xs = jax.random.normal(jax.random.key(10), (B, T, IN))
    h0 = jax.random.normal(jax.random.key(11), (B, H))
    rng = jax.random.key(12)
    m_in, m_rec = dropout_masks(rng, B, IN, H, 0.3, 0.4)
    assert m_in.shape == (B, IN) and m_rec.shape == (B, H)
    for impl in ("auto", "reference"):
        h, hs = gru_scan(p, xs, h0, dropout=0.3, recurrent_dropout=0.4, rng=rng, impl=impl)
        for b in range(B):
            close(hs[b], _np_gru_dropped(p, xs[b], h0[b], np.asarray(m_in[b]),
                                         np.asarray(m_rec[b])))
    # input dropout alone keeps the fused path: the same numbers as the reference
    a = gru_scan(p, xs, h0, dropout=0.3, rng=rng, impl="fused")[1]
    close(a, gru_scan(p, xs, h0, dropout=0.3, rng=rng, impl="reference")[1])
    with pytest.raises(ValueError, match="no recurrent_dropout"):
        gru_scan(p, xs, h0, recurrent_dropout=0.4, rng=rng, impl="fused")


def test_lstm_and_rnn_recurrent_dropout_follow_the_same_protocol():
    """The tanh RNN and the LSTM drop the state where it enters the recurrent
    product, with one mask per sequence, as the GRU does (numpy loops)."""
    B, T = 2, 5
    xs = jax.random.normal(jax.random.key(20), (B, T, IN))
    rng = jax.random.key(21)
    m_in, m_rec = (np.asarray(m, np.float64) for m in dropout_masks(rng, B, IN, H, 0.25, 0.5))
    pr = {k: np.asarray(v, np.float64) for k, v in init_rnn(jax.random.key(1), IN, H).items()}
    _, hs = scan("rnn", init_rnn(jax.random.key(1), IN, H), xs, dropout=0.25,
                 recurrent_dropout=0.5, rng=rng)
    pl = {k: np.asarray(v, np.float64) for k, v in init_lstm(jax.random.key(2), IN, H).items()}
    _, hs_l = lstm_scan(init_lstm(jax.random.key(2), IN, H), xs, dropout=0.25,
                        recurrent_dropout=0.5, rng=rng)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    for b in range(B):
        h, c, hl = np.zeros(H), np.zeros(H), np.zeros(H)
        for t in range(T):
            x = np.asarray(xs[b, t], np.float64) * m_in[b]
            h = np.tanh(x @ pr["w_i"] + (h * m_rec[b]) @ pr["w_h"] + pr["b"])
            close(hs[b, t], h)
            pre = {g: x @ pl[f"w_i{g}"] + (hl * m_rec[b]) @ pl[f"w_h{g}"] + pl[f"b_{g}"]
                   for g in "ifgo"}
            c = sig(pre["f"]) * c + sig(pre["i"]) * np.tanh(pre["g"])
            hl = sig(pre["o"]) * np.tanh(c)
            close(hs_l[b, t], hl)


def test_deterministic_is_identity_and_rng_is_required():
    p = _params()
    xs = jax.random.normal(jax.random.key(13), (2, 5, IN))
    want = gru_scan(p, xs)[1]
    got = gru_scan(p, xs, dropout=0.5, recurrent_dropout=0.5, deterministic=True)[1]
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    with pytest.raises(ValueError, match="dropout needs rng"):
        gru_scan(p, xs, dropout=0.5)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        gru_scan(p, xs, dropout=1.0, rng=jax.random.key(0))
    with pytest.raises(ValueError, match="minGRU has no recurrent product"):
        mingru_scan(init_mingru(jax.random.key(0), IN, H), xs, recurrent_dropout=0.2,
                    rng=jax.random.key(0))


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_masks_preserve_the_expected_value(rate):
    """Inverted dropout: E[mask] = 1 and P(kept) = 1 - rate; over 2 x 10^5 entries
    the sample mean's standard error is sqrt(rate / (1 - rate) / n), ~0.0016 at
    rate 0.5, so 5 standard errors is a test that fails for a wrong scale."""
    m_in, m_rec = dropout_masks(jax.random.key(14), 1000, 100, 100, rate, rate)
    for m in (np.asarray(m_in, np.float64), np.asarray(m_rec, np.float64)):
        n = m.size
        se = np.sqrt(rate / (1 - rate) / n)
        assert abs(m.mean() - 1.0) < 5 * se
        assert abs((m > 0).mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
        assert set(np.unique(m)) == {0.0, 1.0 / (1 - rate)}
    assert not np.array_equal(np.asarray(m_in), np.asarray(m_rec))  # independent masks
