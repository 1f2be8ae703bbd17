"""Bad input gets one clear line, never a silent NaN or a silent broadcast (issue 19).

The four reported cases first, each against an independent result (the
in-range call, flax.linen's GRUCell), then the checks at every public
boundary: scan, the steps, the stacked and bidirectional layers, the linen
and nnx modules, interop. Every error must be a ValueError / TypeError raised
by gru_jax's own code (not JAX's), on one line, naming the argument.
"""

from __future__ import annotations

import traceback

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gru_jax
from gru_jax import (
    gru_scan,
    gru_step,
    init_gru,
    init_lstm,
    init_mingru,
    init_rnn,
    init_stacked,
    lstm_step,
    mingru_step,
    rnn_step,
    scan,
    stacked_scan,
)
from gru_jax.cells.gru import gru_project, gru_recur
from gru_jax.interop import from_torch, to_flax_gru_cell, to_keras, to_torch

TOL = dict(rtol=1e-5, atol=1e-6)


def close(a, b, **tol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **(tol or TOL))


def one_line(call, match: str, exc=(ValueError, TypeError)) -> str:
    """`call()` raises `exc` from gru_jax's own code, on one line matching `match`."""
    with pytest.raises(exc, match=match) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg, msg
    origin = traceback.extract_tb(e.tb)[-1].filename
    assert "/gru_jax/" in origin and "/tests/" not in origin, (origin, msg)
    return msg


# ---------------------------------------------------------------- the four reported cases

P35 = init_gru(jax.random.key(0), 3, 5)
X46 = jax.random.normal(jax.random.key(1), (4, 6, 3))


@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_past_t_raise_when_concrete_and_clamp_when_traced(reverse):
    # case 1: reverse with a length 7 > T = 6 gave NaN (an out-of-bounds gather)
    for lengths in (jnp.array([7, 6, 2, 1]), np.array([7, 6, 2, 1]), [7, 6, 2, 1]):
        one_line(lambda lengths=lengths: gru_scan(P35, X46, seq_lengths=lengths,
                                                  reverse=reverse),
                 r"seq_lengths must lie in \[0, 6\] .*got 7 at \[0\]")
    # inside jit the values are unknown: clamped to [0, T], so 7 runs as 6
    h, hs = jax.jit(lambda n: gru_scan(P35, X46, seq_lengths=n, reverse=reverse))(
        jnp.array([7, 6, 2, 1]))
    want_h, want_hs = gru_scan(P35, X46, seq_lengths=jnp.array([6, 6, 2, 1]), reverse=reverse)
    assert np.isfinite(hs).all() and np.isfinite(h).all()
    close(h, want_h)
    close(hs, want_hs)


def test_negative_lengths_raise_and_zero_is_a_length():
    # case 2: -1 was taken as 0 silently (torch refuses lengths <= 0; flax takes 0)
    one_line(lambda: gru_scan(P35, X46, seq_lengths=jnp.array([6, 3, 2, -1])),
             r"seq_lengths must lie in \[0, 6\] .*got -1 at \[3\]")
    h0 = jax.random.normal(jax.random.key(2), (4, 5))
    h, hs = gru_scan(P35, X46, h0, seq_lengths=jnp.array([6, 3, 2, 0]), reverse=True)
    close(h[3], h0[3])
    assert float(jnp.abs(hs[3]).max()) == 0.0
    # traced: -1 is clamped to 0
    ht, hst = jax.jit(lambda n: gru_scan(P35, X46, h0, seq_lengths=n, reverse=True))(
        jnp.array([6, 3, 2, -1]))
    close(ht, h)
    close(hst, hs)
    one_line(lambda: gru_scan(P35, X46, seq_lengths=jnp.array([6.0, 3, 2, 1])),
             "seq_lengths must be integers, got dtype float32")
    one_line(lambda: gru_scan(P35, X46, seq_lengths=jnp.array([[6, 3, 2, 1]])),
             r"seq_lengths must have shape \[4\] .*got \[1, 4\]")


PC = init_gru(jax.random.key(0), 10, 20)


@pytest.mark.parametrize("h_shape, x_shape, match", [
    ((3, 20), (3, 11), r"gru_step: x must be \[\*batch, 10\] .*got \[3, 11\]"),
    ((3, 21), (3, 10), r"gru_step: h must have shape \[3, 20\] .*got \[3, 21\]"),
    ((5, 20), (3, 10), r"gru_step: h must have shape \[3, 20\] .*got \[5, 20\]"),
    ((3, 1, 1, 20), (3, 10), r"gru_step: h must have shape \[3, 20\] .*got \[3, 1, 1, 20\]"),
    ((1, 20), (3, 10), r"gru_step: h must have shape \[3, 20\] .*got \[1, 20\]"),  # no broadcast
    ((20,), (3, 10), r"gru_step: h must have shape \[3, 20\] .*got \[20\]"),
    ((3, 20), (), r"gru_step: x must be \[\*batch, 10\] .*got \[\]"),
])
def test_gru_step_checks_shapes(h_shape, x_shape, match):
    # case 3: JAX's dot_general error, a (3, 1, 3, 20) result, a silent broadcast
    one_line(lambda: gru_step(PC, jnp.ones(h_shape), jnp.ones(x_shape)), match)


def test_gru_step_any_equal_batch_shape_matches_rows():
    x = jax.random.normal(jax.random.key(3), (2, 3, 10))
    h = jax.random.normal(jax.random.key(4), (2, 3, 20))
    out = gru_step(PC, h, x)
    assert out.shape == (2, 3, 20)
    close(out[1, 2], gru_step(PC, h[1, 2], x[1, 2]))  # unbatched: [hidden], [input]
    one_line(lambda: gru_step(PC, jnp.ones((3, 20), jnp.int32), jnp.ones((3, 10))),
             "gru_step: h must be float or complex, got int32")


def test_checks_add_nothing_to_the_step_program():
    """The checked gru_step traces to exactly the unchecked composition."""
    h, x = jnp.ones((3, 20)), jnp.ones((3, 10))
    checked = jax.make_jaxpr(gru_step)(PC, h, x)
    bare = jax.make_jaxpr(lambda p, h, x: gru_recur(p, h, gru_project(p, x)))(PC, h, x)
    assert str(checked) == str(bare)


@pytest.mark.parametrize("step, init, carry", [
    (lstm_step, init_lstm, lambda s: (jnp.ones(s), jnp.ones(s))),
    (rnn_step, init_rnn, jnp.ones),
    (mingru_step, init_mingru, jnp.ones),
])
def test_every_step_checks_shapes(step, init, carry):
    p = init(jax.random.key(0), 10, 20)
    name = step.__name__
    one_line(lambda: step(p, carry((3, 20)), jnp.ones((3, 11))),
             rf"{name}: x must be \[\*batch, 10\]")
    one_line(lambda: step(p, carry((1, 20)), jnp.ones((3, 10))),
             rf"{name}: .* must have shape \[3, 20\] .*got \[1, 20\]")
    one_line(lambda: step(p, carry((3, 1, 1, 20)), jnp.ones((3, 10))),
             rf"{name}: .* must have shape \[3, 20\]")
    assert jax.tree_util.tree_leaves(step(p, carry((3, 20)), jnp.ones((3, 10))))[0].shape \
        == (3, 20)
    if step is lstm_step:
        one_line(lambda: step(p, jnp.ones((3, 20)), jnp.ones((3, 10))),
                 r"lstm_step: carry must be the pair \(c, h\)")


def _complex_x(shape, seed=5):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return ((jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape)) * 0.5
            ).astype(jnp.complex64)


def test_complex_input_through_the_cells_stays_complex_as_flax():
    # case 4: a float32 carry from initialize_carry and complex64 x lost the imaginary part
    x = _complex_x((2, 3))
    cell = gru_jax.GRUCell(features=5)
    carry = cell.initialize_carry(jax.random.key(0), x.shape)
    assert carry.dtype == jnp.float32
    v = cell.init(jax.random.key(1), carry, x)
    new, y = cell.apply(v, carry, x)
    assert new.dtype == y.dtype == jnp.complex64
    flax_cell = nn.GRUCell(features=5)
    want, _ = flax_cell.apply({"params": to_flax_gru_cell(v["params"]["gru"])}, carry, x)
    assert want.dtype == jnp.complex64 and float(jnp.abs(want.imag).max()) > 1e-3
    close(new, want)
    # nnx: the same numbers with the same params
    ncell = gru_jax.nnx.GRUCell(3, 5, rngs=nnx.Rngs(0))
    ncell.set_params(v["params"]["gru"])
    nnew, _ = ncell(ncell.initialize_carry(x.shape), x)
    assert nnew.dtype == jnp.complex64
    close(nnew, want)
    # and every pure step
    for step, init in ((gru_step, init_gru), (rnn_step, init_rnn), (mingru_step, init_mingru)):
        assert step(init(jax.random.key(0), 3, 5), jnp.zeros((2, 5)), x).dtype == jnp.complex64
    c, h = lstm_step(init_lstm(jax.random.key(0), 3, 5), (jnp.zeros((2, 5)),) * 2, x)
    assert c.dtype == h.dtype == jnp.complex64


def test_complex_xs_with_a_real_carry0_stays_complex_in_every_cell():
    xs = _complex_x((2, 4, 3))
    for cell, init in (("gru", init_gru), ("lstm", init_lstm), ("rnn", init_rnn),
                       ("mingru", init_mingru)):
        p = init(jax.random.key(0), 3, 5)
        zeros = jnp.zeros((2, 5))
        c0 = (zeros, zeros) if cell == "lstm" else zeros
        got = scan(cell, p, xs, c0)
        want = scan(cell, p, xs)  # default carry: complex64 zeros
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want),
                        strict=True):
            assert a.dtype == jnp.complex64
            close(a, b)
    one_line(lambda: gru_scan(P35, xs, carry_dtype=jnp.float32),
             "carry_dtype=float32 is real but the inputs or params are complex")


# ---------------------------------------------------------------- scan boundary


@pytest.mark.parametrize("call, match", [
    (lambda: gru_scan([P35], X46), "params must be a dict of gru arrays, got list .*stacked_scan"),
    (lambda: gru_scan({k: v for k, v in P35.items() if k != "w_hz"}, X46),
     r"gru params: missing \['w_hz'\]"),
    (lambda: gru_scan({**P35, "w_hz": jnp.ones((5, 6))}, X46),
     r"gru params\['w_hz'\] has shape \[5, 6\], expected \[5, 5\]"),
    (lambda: gru_scan({**P35, "b_hn": jnp.ones(5, int)}, X46), "must be float or complex"),
    (lambda: scan("lstm", init_lstm(jax.random.key(0), 3, 5), X46, jnp.zeros((4, 5))),
     "carry0 of the lstm must be a tuple of 2 arrays"),
    (lambda: gru_scan(P35, X46, jnp.zeros((4, 5), jnp.int32)),
     "carry0 must be float or complex, got int32"),
    (lambda: gru_scan(P35, X46, jnp.zeros((1, 5))), r"carry0 must have shape \[4, 5\]"),
    (lambda: gru_scan(P35, X46, mask=jnp.ones((4, 6), jnp.float32)), "mask must be bool"),
    (lambda: gru_scan(P35, X46, mask=jnp.ones((1, 6), bool)), r"mask must have shape \[4, 6\]"),
    (lambda: gru_scan(P35, X46, unroll=0), "unroll must be a positive int"),
    (lambda: gru_scan(P35, X46, reverse="yes"), "reverse must be a bool"),
    (lambda: gru_scan(P35, X46, time_major=1), "time_major must be a bool"),
    (lambda: gru_scan(P35, X46 > 0), "xs must be a float, complex or int array, got bool"),
    (lambda: gru_scan(P35, X46, carry_dtype=jnp.int32), "carry_dtype must be a float"),
    (lambda: scan("mingru", P35, X46), "params lack 'w_z': not mingru params"),
])
def test_scan_refuses_bad_input_in_one_line(call, match):
    one_line(call, match)


# ---------------------------------------------------------------- layers, modules, interop


def test_stacked_and_bidirectional_name_the_layer():
    params = init_stacked(jax.random.key(0), "gru", 3, 5, 2, bidirectional=True)
    one_line(lambda: stacked_scan("gru", params, X46, merge_mode="sum"),
             r"params\[1\]\['fwd'\] takes 10 input features, but layer 0's output .* has 5")
    one_line(lambda: stacked_scan("gru", params, jnp.ones((4, 6, 4))),
             r"params\[0\]\['fwd'\] takes 3 input features, but xs has 4")
    lopsided = [params[0], {**params[1], "bwd": init_gru(jax.random.key(1), 10, 6)}]
    one_line(lambda: stacked_scan("gru", lopsided, X46),
             r"params\[1\]: the two directions differ in hidden size \(5 and 6\)")
    one_line(lambda: stacked_scan("gru", params, X46, seq_lengths=jnp.array([7, 1, 1, 1])),
             r"seq_lengths must lie in \[0, 6\]")
    one_line(lambda: gru_jax.bidirectional(gru_scan, P35, P35, X46, jnp.zeros((2, 4, 5))),
             r"carry0 must be None or the pair \(carry_fwd, carry_bwd\), got ArrayImpl")


def test_modules_check_their_inputs():
    cell = gru_jax.GRUCell(features=5)
    v = cell.init(jax.random.key(0), jnp.zeros((2, 5)), jnp.ones((2, 3)))
    one_line(lambda: cell.apply(v, jnp.zeros((1, 5)), jnp.ones((2, 3))),
             r"GRUCell: carry must have shape \[2, 5\] .*got \[1, 5\]")
    one_line(lambda: cell.apply(v, jnp.zeros((2, 5)), jnp.ones((2, 4))),
             r"GRUCell: x must be \[\*batch, 3\]")
    layer = gru_jax.GRU(features=5)
    lv = layer.init(jax.random.key(0), X46)
    one_line(lambda: layer.apply(lv, X46, seq_lengths=jnp.array([6, 6, 6, 9])),
             r"seq_lengths must lie in \[0, 6\]")
    ncell = gru_jax.nnx.GRUCell(3, 5, rngs=nnx.Rngs(0))
    one_line(lambda: ncell(jnp.zeros((2, 5, 1)), jnp.ones((2, 3))),
             r"GRUCell: carry must have shape \[2, 5\]")
    bad = {**ncell.get_params(), "w_hr": jnp.ones((5, 4))}
    one_line(lambda: ncell.set_params(bad),
             r"set_params: params\['w_hr'\] has shape \[5, 4\], this module holds \[5, 5\]")
    one_line(lambda: ncell.set_params({k: v for k, v in bad.items() if k != "b_hn"}),
             r"set_params: .*missing \[\"\['b_hn'\]\"\]")
    nlayer = gru_jax.nnx.GRU(3, 5, rngs=nnx.Rngs(0))
    one_line(lambda: nlayer(X46, jnp.zeros((4, 6))), r"carry0 must have shape \[4, 5\]")


def test_interop_names_the_tensor():
    one_line(lambda: to_torch({**P35, "w_hz": np.zeros((5, 4))}),
             r"gru params\['w_hz'\] has shape \[5, 4\], expected \[5, 5\]")
    one_line(lambda: to_keras({**P35, "b_iz": np.zeros(4)}), r"params\['b_iz'\] has shape \[4\]")
    sd = to_torch(init_stacked(jax.random.key(0), "gru", 3, 5, 2))
    sd = {k: np.asarray(v) for k, v in sd.items()}
    one_line(lambda: from_torch({**sd, "weight_ih_l1": np.zeros((15, 3), np.float32)}),
             r"weight_ih_l1: expected shape \(15, 5\) \(layer 1 reads 1 direction\(s\) x "
             r"hidden 5\), got \(15, 3\)")
    one_line(lambda: from_torch({**sd, "weight_hh_l1": np.zeros((12, 4), np.float32),
                                 "weight_ih_l1": np.zeros((12, 5), np.float32),
                                 "bias_ih_l1": np.zeros(12), "bias_hh_l1": np.zeros(12)}),
             r"weight_hh_l1: expected shape \(15, 5\)")
