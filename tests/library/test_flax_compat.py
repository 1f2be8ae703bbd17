"""Flax conventions: `gru_jax.GRUCell` as a drop-in for `flax.linen.GRUCell` in
`nn.RNN`, the nnx cell in `nnx.RNN`, flax's initializer hooks, per-array nnx
params (optax masks), and the stacked/bidirectional/time_major layer modules.

Flax's own recurrent test cases (tests/linen/linen_recurrent_test.py,
tests/nnx/nn/recurrent_test.py, google/flax) are ported with their shapes and
semantics, run on our cells, and compared against flax's GRUCell with the same
weights (mapped by `gru_jax.interop`).
"""

from __future__ import annotations

import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import gru_jax
from gru_jax import gru_scan, stacked_scan
from gru_jax.interop import from_flax_gru_cell, to_flax_gru_cell

TOL = dict(rtol=1e-5, atol=1e-5)


def close(a, b, **tol):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **(tol or TOL))


# ----------------------------------------------------------------------------- a flax user


class UserModel(nn.Module):
    """A flax user's model, written against flax.linen.GRUCell: only `cell_cls` changes."""

    cell_cls: type

    @nn.compact
    def __call__(self, xs):
        hs = nn.RNN(self.cell_cls(features=8), name="rnn")(xs)
        return nn.Dense(2, name="head")(hs[:, -1])


def test_flax_user_code_runs_unchanged_with_our_cell():
    xs = jax.random.normal(jax.random.key(0), (3, 5, 4))
    theirs = UserModel(nn.GRUCell)
    mine = UserModel(gru_jax.GRUCell)
    v_theirs = theirs.init(jax.random.key(1), xs)
    v_mine = mine.init(jax.random.key(1), xs)
    # the same tree (the cell is auto-named GRUCell_0 in both), but the cell's
    # params, which are our flat dict
    assert set(v_mine["params"]) == set(v_theirs["params"]) == {"GRUCell_0", "head"}
    assert set(v_mine["params"]["GRUCell_0"]) == {"gru"}
    # flax's params mapped to ours give flax's outputs; and ours mapped to flax's
    mapped = {"params": {"head": v_theirs["params"]["head"],
                         "GRUCell_0": {"gru": from_flax_gru_cell(v_theirs["params"]["GRUCell_0"])}}}
    close(mine.apply(mapped, xs), theirs.apply(v_theirs, xs))
    back = {"params": {"head": v_mine["params"]["head"],
                       "GRUCell_0": to_flax_gru_cell(v_mine["params"]["GRUCell_0"]["gru"])}}
    close(theirs.apply(back, xs), mine.apply(v_mine, xs))


def test_import_gru_jax_reaches_nnx():
    code = "import gru_jax; print(gru_jax.nnx.GRUCell.__name__, gru_jax.nnx.GRU.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"JAX_PLATFORMS": "cpu", "PATH": "", "PYTHONPATH": "."}, check=True)
    assert out.stdout.split() == ["GRUCell", "GRU"]


def test_features_and_hidden_size():
    x = jnp.ones((2, 3))
    for cell in (gru_jax.GRUCell(4), gru_jax.GRUCell(hidden_size=4), gru_jax.GRUCell(features=4)):
        carry = cell.initialize_carry(jax.random.key(0), x.shape)
        (h, y), _ = cell.init_with_output(jax.random.key(1), carry, x)
        assert h.shape == (2, 4)
    with pytest.raises(ValueError, match="hidden_size=4 and features=5 differ"):
        gru_jax.GRUCell(hidden_size=4, features=5).initialize_carry(jax.random.key(0), x.shape)
    with pytest.raises(ValueError, match="needs hidden_size"):
        gru_jax.GRUCell().initialize_carry(jax.random.key(0), x.shape)
    assert gru_jax.GRU(features=4).init(jax.random.key(0), jnp.ones((2, 5, 3)))["params"][
        "gru"]["w_hn"].shape == (4, 4)


# ----------------------------------------------------------------------------- flax's linen cases


def test_gru_cell_like_flax_test_gru():
    """flax linen_recurrent_test / linen_test `test_gru`: carry [2, 4] from a [2, 3]
    input, y == carry, params per gate; numbers equal flax's GRUCell's."""
    key1, key2 = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key1, (2, 3))
    cell = gru_jax.GRUCell(features=4)
    carry0 = cell.initialize_carry(jax.random.key(0), x.shape)
    assert carry0.shape == (2, 4)
    (carry, y), variables = cell.init_with_output(key2, carry0, x)
    assert carry.shape == (2, 4)
    close(y, carry)
    shapes = jax.tree.map(np.shape, variables["params"]["gru"])
    assert shapes == {**{f"w_i{g}": (3, 4) for g in "rzn"}, **{f"w_h{g}": (4, 4) for g in "rzn"},
                      **{f"b_{s}{g}": (4,) for s in "ih" for g in "rzn"}}
    flax_cell = nn.GRUCell(features=4)
    flax_vars = flax_cell.init(key2, carry0, x)
    ours = {"params": {"gru": from_flax_gru_cell(flax_vars)}}
    h0 = jax.random.normal(jax.random.key(5), (2, 4))
    close(cell.apply(ours, h0, x)[0], flax_cell.apply(flax_vars, h0, x)[0])


@pytest.mark.parametrize("batch_dims", [(10,), (2, 3)])
def test_rnn_basic_forward_and_batch_dims(batch_dims):
    """flax test_rnn_basic_forward / test_rnn_multiple_batch_dims with our cell."""
    seq_len, channels_in, channels_out = 6, 5, 7
    rnn = nn.RNN(gru_jax.GRUCell(channels_out), return_carry=True)
    xs = jax.random.normal(jax.random.key(0), (*batch_dims, seq_len, channels_in))
    variables = rnn.init(jax.random.key(0), xs)
    carry, ys = rnn.apply(variables, xs)
    assert ys.shape == (*batch_dims, seq_len, channels_out)
    for name, v in variables["params"]["cell"]["gru"].items():
        assert v.shape[-1] == channels_out and v.shape[0] in (channels_in, channels_out), name
    # any leading batch dims: the same numbers as gru_scan on the flattened batch
    p = variables["params"]["cell"]["gru"]
    h_last, hs = gru_scan(p, xs.reshape(-1, seq_len, channels_in))
    close(ys.reshape(-1, seq_len, channels_out), hs)
    close(carry.reshape(-1, channels_out), h_last)


def test_rnn_unroll_time_major_and_cell_loop():
    """flax test_rnn_unroll / test_rnn_time_major / test_numerical_equivalence."""
    B, T, IN, H = 3, 4, 5, 6
    xs = jax.random.normal(jax.random.key(1), (B, T, IN))
    rnn = nn.RNN(gru_jax.GRUCell(H), return_carry=True)
    (carry, ys), variables = rnn.init_with_output(jax.random.key(0), xs)
    cell_params = variables["params"]["cell"]
    cell_carry = rnn.cell.initialize_carry(jax.random.key(0), xs[:, 0].shape)
    for i in range(T):
        cell_carry, y = rnn.cell.apply({"params": cell_params}, cell_carry, xs[:, i])
        close(y, ys[:, i])
    close(cell_carry, carry)
    unrolled = nn.RNN(gru_jax.GRUCell(H), unroll=2).apply(variables, xs)
    close(unrolled, ys)
    tm_carry, tm = nn.RNN(gru_jax.GRUCell(H), time_major=True, return_carry=True).apply(
        variables, xs.swapaxes(0, 1))
    assert not np.allclose(tm_carry, 0) and tm_carry.shape == (B, H)
    close(tm.swapaxes(0, 1), ys)


def test_rnn_mask_reverse_keep_order_against_flax_cell():
    """flax test_numerical_equivalence_with_mask / test_reverse /
    test_reverse_but_keep_order: our cell and flax's GRUCell with the same
    weights give the same outputs and carries under nn.RNN."""
    B, T, IN, H = 3, 4, 5, 6
    xs = jax.random.normal(jax.random.key(2), (B, T, IN))
    seq_lengths = jnp.array([4, 1, 3])
    flax_rnn = nn.RNN(nn.GRUCell(H))
    flax_vars = flax_rnn.init(jax.random.key(0), xs)
    ours = {"params": {"cell": {"gru": from_flax_gru_cell(flax_vars)}}}
    for kw in ({}, {"seq_lengths": seq_lengths}, {"reverse": True},
               {"reverse": True, "keep_order": True},
               {"reverse": True, "keep_order": True, "seq_lengths": seq_lengths}):
        got = nn.RNN(gru_jax.GRUCell(H), return_carry=True).apply(ours, xs, **kw)
        want = nn.RNN(nn.GRUCell(H), return_carry=True).apply(flax_vars, xs, **kw)
        close(got[0], want[0])
        close(got[1], want[1])
    # and nn.RNN(seq_lengths) = gru_scan(seq_lengths): the carry after each valid prefix
    carry, _ = nn.RNN(gru_jax.GRUCell(H), return_carry=True).apply(ours, xs,
                                                                   seq_lengths=seq_lengths)
    close(carry, gru_scan(ours["params"]["cell"]["gru"], xs, seq_lengths=seq_lengths)[0])


def test_flax_bidirectional_with_our_cells():
    """flax BidirectionalTest: shapes of nn.Bidirectional over our cells; the
    forward half is gru_scan, the backward half gru_scan(reverse=True)."""
    B, T, IN, H = 3, 4, 5, 6
    xs = jax.random.normal(jax.random.key(3), (B, T, IN))
    bi = nn.Bidirectional(nn.RNN(gru_jax.GRUCell(H)), nn.RNN(gru_jax.GRUCell(H)),
                          return_carry=True)
    ((cf, cb), ys), variables = bi.init_with_output(jax.random.key(0), xs)
    assert ys.shape == (B, T, 2 * H) and cf.shape == cb.shape == (B, H)
    pf = variables["params"]["forward_rnn"]["cell"]["gru"]
    pb = variables["params"]["backward_rnn"]["cell"]["gru"]
    (hf, hb), hs = gru_jax.bidirectional(gru_scan, pf, pb, xs)
    close(ys, hs)
    close(cf, hf)
    close(cb, hb)
    summed = nn.Bidirectional(nn.RNN(gru_jax.GRUCell(H)), nn.RNN(gru_jax.GRUCell(H)),
                              merge_fn=lambda a, b: a + b).apply(variables, xs)
    close(summed, gru_jax.bidirectional(gru_scan, pf, pb, xs, merge_mode="sum")[1])


def test_initializer_hooks_and_carry_init():
    """flax's kernel_init, recurrent_kernel_init, bias_init, carry_init."""
    ones, const = nn.initializers.ones, nn.initializers.constant
    cell = gru_jax.GRUCell(features=4, kernel_init=const(0.3), recurrent_kernel_init=const(-0.2),
                           bias_init=const(0.1), carry_init=ones)
    x = jnp.ones((2, 3))
    carry = cell.initialize_carry(jax.random.key(0), x.shape)
    close(carry, np.ones((2, 4)))
    p = cell.init(jax.random.key(0), carry, x)["params"]["gru"]
    for k, v in p.items():
        want = {"w_i": 0.3, "w_h": -0.2, "b_i": 0.1, "b_h": 0.1}[k[:3]]
        close(v, np.full(v.shape, want))
    # flax's GRUCell with the same hooks computes the same step (its r, z biases
    # are b_i + b_h of ours: fold b_h into flax's 'bias_init' by using 0.2 there)
    flax_cell = nn.GRUCell(features=4, kernel_init=const(0.3), recurrent_kernel_init=const(-0.2),
                           bias_init=const(0.1))
    fv = flax_cell.init(jax.random.key(0), carry, x)
    close(cell.apply({"params": {"gru": p}}, carry, x)[0],
          flax_cell.apply({"params": to_flax_gru_cell(from_flax_gru_cell(fv)) | {
              "ir": {"kernel": fv["params"]["ir"]["kernel"], "bias": jnp.full(4, 0.2)},
              "iz": {"kernel": fv["params"]["iz"]["kernel"], "bias": jnp.full(4, 0.2)}}},
              carry, x)[0])
    # the hooks reach the layer modules too, and refuse to fight chrono
    layer = gru_jax.GRU(4, bias_init=const(0.5))
    lp = layer.init(jax.random.key(0), jnp.ones((2, 5, 3)))["params"]["gru"]
    close(lp["b_hn"], np.full(4, 0.5))
    with pytest.raises(ValueError, match="bias_init or chrono_t_max"):
        gru_jax.GRU(4, bias_init=const(0.5), chrono_t_max=10.0).init(
            jax.random.key(0), jnp.ones((2, 5, 3)))


# ----------------------------------------------------------------------------- flax's nnx cases


def _nnx_flax_to_ours(cell: nnx.GRUCell) -> dict:
    """Our params from flax.nnx.GRUCell: dense_i [I, 3H] + bias, dense_h [H, 3H], no
    hidden bias (nnx's n = tanh(x W_in + b_in + r * h W_hn))."""
    wi = np.split(np.asarray(cell.dense_i.kernel[...]), 3, axis=1)
    bi = np.split(np.asarray(cell.dense_i.bias[...]), 3)
    wh = np.split(np.asarray(cell.dense_h.kernel[...]), 3, axis=1)
    H = wh[0].shape[0]
    p = {}
    for j, g in enumerate("rzn"):
        p[f"w_i{g}"], p[f"b_i{g}"], p[f"w_h{g}"] = wi[j], bi[j], wh[j]
        p[f"b_h{g}"] = np.zeros(H, np.float32)
    return p


def test_nnx_rnn_with_our_cell_against_flax_nnx_cell():
    """flax nnx test_rnn_with_gru_cell (shape (2, 5, 4)), and the numbers of
    flax.nnx.GRUCell with the same weights under nnx.RNN, incl. reverse,
    keep_order, seq_lengths, time_major and unroll."""
    cell = gru_jax.nnx.GRUCell(3, 4, rngs=nnx.Rngs(1))
    theirs = nnx.GRUCell(in_features=3, hidden_features=4, rngs=nnx.Rngs(1))
    cell.set_params(_nnx_flax_to_ours(theirs))
    x = jax.random.normal(jax.random.key(0), (2, 5, 3))
    carry = cell.initialize_carry((2, 3), nnx.Rngs(0))
    out = nnx.RNN(cell)(x, initial_carry=carry)
    assert out.shape == (2, 5, 4)
    close(out, nnx.RNN(theirs)(x, initial_carry=carry))
    lengths = jnp.array([3, 5])
    for kw in ({"reverse": True}, {"reverse": True, "keep_order": True}, {"unroll": 2}):
        close(nnx.RNN(cell, **kw)(x), nnx.RNN(theirs, **kw)(x))
    c1, o1 = nnx.RNN(cell, return_carry=True)(x, seq_lengths=lengths)
    c2, o2 = nnx.RNN(theirs, return_carry=True)(x, seq_lengths=lengths)
    close(c1, c2)
    close(o1, o2)
    tm = nnx.RNN(cell, time_major=True)(x.swapaxes(0, 1))
    assert tm.shape == (5, 2, 4)
    close(tm.swapaxes(0, 1), out)
    for batch in (1, 2, 5):  # test_rnn_with_variable_batch_size
        assert nnx.RNN(cell)(jnp.ones((batch, 5, 3))).shape == (batch, 5, 4)


def test_nnx_cell_equals_linen_cell_and_carry_init():
    """flax nnx test_*_equivalence_with_flax_linen and test_*_initialize_carry."""
    cell = gru_jax.nnx.GRUCell(3, 4, rngs=nnx.Rngs(0), carry_init=nnx.initializers.ones)
    carry = cell.initialize_carry((1, 3), nnx.Rngs(0))
    close(carry, np.ones((1, 4)))
    x = jax.random.normal(jax.random.key(42), (1, 3))
    linen_cell = nn.GRUCell(features=4)
    variables = linen_cell.init(jax.random.key(1), carry, x)
    cell.set_params(from_flax_gru_cell(variables))
    h, y = cell(carry, x)
    close(h, linen_cell.apply(variables, carry, x)[0])
    close(y, h)
    with pytest.raises(ValueError, match="needs rngs"):
        cell.initialize_carry((1, 3))
    # no carry_init: zeros, no rngs needed
    plain = gru_jax.nnx.GRUCell(3, 4, rngs=nnx.Rngs(0))
    close(plain.initialize_carry((2, 7, 3)), np.zeros((2, 7, 4)))


def test_nnx_params_are_separate_and_optax_masks_biases():
    """One nnx.Param per array, so adamw's mask can spare the biases."""
    layer = gru_jax.nnx.GRU(3, 4, rngs=nnx.Rngs(0))
    params = nnx.state(layer, nnx.Param)
    names = {str(path[-1]) for path, _ in nnx.to_flat_state(params)}
    assert names == set(gru_jax.init_gru(jax.random.key(0), 3, 4))
    biases_random = jax.tree.map(lambda v: v + 0.5, layer.get_params())
    layer.set_params(biases_random)
    before = layer.get_params()

    def not_bias(tree):  # paths end (..., DictKey(name), GetAttrKey("value"))
        return jax.tree_util.tree_map_with_path(
            lambda path, _: not any(str(getattr(k, "key", "")).startswith("b_") for k in path),
            tree)

    lr, wd = 0.1, 0.5
    opt = nnx.Optimizer(layer, optax.adamw(lr, weight_decay=wd, mask=not_bias), wrt=nnx.Param)
    zero = jax.tree.map(jnp.zeros_like, nnx.state(layer, nnx.Param))
    opt.update(layer, zero)  # no gradient: only the (masked) weight decay moves params
    after = layer.get_params()
    for k in before:
        want = before[k] if k.startswith("b_") else before[k] * (1 - lr * wd)
        close(after[k], want, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- layer modules


def test_linen_and_nnx_stacked_layers_equal_stacked_scan():
    B, T, IN, H = 2, 5, 3, 4
    xs = jax.random.normal(jax.random.key(0), (T, B, IN))  # time-major
    h0 = jax.random.normal(jax.random.key(1), (4, B, H))
    layer = gru_jax.GRU(H, num_layers=2, bidirectional=True, merge_mode="ave", time_major=True)
    variables = layer.init(jax.random.key(2), xs)
    p = variables["params"]["gru"]
    assert len(p) == 2 and sorted(p[1]) == ["bwd", "fwd"] and p[1]["fwd"]["w_ir"].shape == (H, H)
    got = layer.apply(variables, xs, h0)
    want = stacked_scan("gru", p, xs, h0, merge_mode="ave", time_major=True)
    close(got[0], want[0])
    close(got[1], want[1])
    assert got[1].shape == (T, B, H)

    nlayer = gru_jax.nnx.GRU(IN, H, num_layers=2, bidirectional=True, merge_mode="ave",
                             time_major=True, rngs=nnx.Rngs(0))
    nlayer.set_params(p)
    got = nlayer(xs, h0)
    close(got[0], want[0])
    close(got[1], want[1])
    lstm = gru_jax.nnx.Recurrent(IN, H, cell="lstm", num_layers=3, rngs=nnx.Rngs(0))
    (c, h), hs = lstm(xs.swapaxes(0, 1))
    assert c.shape == h.shape == (3, B, H) and hs.shape == (B, T, H)


def test_layer_dropout_needs_rng_and_is_off_when_deterministic():
    B, T, IN, H = 2, 5, 3, 4
    xs = jax.random.normal(jax.random.key(0), (B, T, IN))
    layer = gru_jax.GRU(H, num_layers=2, dropout=0.5)
    variables = layer.init(jax.random.key(1), xs, deterministic=True)
    p = variables["params"]["gru"]
    plain = stacked_scan("gru", p, xs)[1]
    close(layer.apply(variables, xs, deterministic=True)[1], plain)
    with pytest.raises(Exception, match="dropout"):  # flax: no "dropout" rng given
        layer.apply(variables, xs, deterministic=False)
    rng = jax.random.key(7)
    dropped = layer.apply(variables, xs, deterministic=False, rngs={"dropout": rng})[1]
    assert not np.allclose(dropped, plain)
    # the mask is stacked_scan's with the module's "dropout" key
    key = nn.apply(lambda m: m.make_rng("dropout"), layer)(variables, rngs={"dropout": rng})
    close(dropped, stacked_scan("gru", p, xs, dropout=0.5, rng=key)[1])

    nlayer = gru_jax.nnx.GRU(IN, H, num_layers=2, dropout=0.5, rngs=nnx.Rngs(0, dropout=1))
    nlayer.set_params(p)
    a, b = nlayer(xs)[1], nlayer(xs)[1]
    assert not np.allclose(a, plain) and not np.allclose(a, b)  # a fresh mask per call
    nlayer.eval()
    close(nlayer(xs)[1], plain)


def test_low_precision_carry_like_flax():
    """flax returns float16 outputs for float16 params and inputs (nnx
    test_rnn_with_different_dtypes): so do our cells with carry_dtype=float16;
    the default carry stays float32."""
    f16 = jnp.float16
    x = jax.random.normal(jax.random.key(0), (2, 5, 3)).astype(f16)
    cell = gru_jax.GRUCell(features=4, dtype=f16, param_dtype=f16, carry_dtype=f16)
    variables = nn.RNN(cell).init(jax.random.key(1), x)
    assert variables["params"]["cell"]["gru"]["w_ir"].dtype == f16
    ys = nn.RNN(cell).apply(variables, x)
    assert ys.dtype == f16 and ys.shape == (2, 5, 4)
    theirs = nn.RNN(nn.GRUCell(features=4, dtype=f16, param_dtype=f16)).apply(
        {"params": {"cell": to_flax_gru_cell(variables["params"]["cell"]["gru"])}}, x)
    assert theirs.dtype == f16
    close(ys.astype(jnp.float32), theirs.astype(jnp.float32), rtol=0, atol=1e-2)
    wide = nn.RNN(gru_jax.GRUCell(features=4, dtype=f16, param_dtype=f16)).apply(variables, x)
    assert wide.dtype == jnp.float32
    close(wide, ys.astype(jnp.float32), rtol=0, atol=1e-2)

    ncell = gru_jax.nnx.GRUCell(3, 4, dtype=f16, param_dtype=f16, carry_dtype=f16,
                                rngs=nnx.Rngs(8))
    out = nnx.RNN(ncell)(x, initial_carry=ncell.initialize_carry((2, 3)))
    assert out.dtype == f16 and out.shape == (2, 5, 4)


def test_gate_fn_and_activation_fn_like_flax():
    """flax's gate_fn / activation_fn hooks (nnx test_*_with_custom_activations):
    the cell, the layer (reference scan) and the nnx cell equal flax's GRUCell
    with the same hooks and weights."""
    gate, act = jax.nn.hard_sigmoid, jax.nn.elu
    xs = jax.random.normal(jax.random.key(0), (2, 5, 3))
    flax_rnn = nn.RNN(nn.GRUCell(features=4, gate_fn=gate, activation_fn=act))
    flax_vars = flax_rnn.init(jax.random.key(1), xs)
    want = flax_rnn.apply(flax_vars, xs)
    p = from_flax_gru_cell(flax_vars)
    cell = gru_jax.GRUCell(features=4, gate_fn=gate, activation_fn=act)
    close(nn.RNN(cell).apply({"params": {"cell": {"gru": p}}}, xs), want)
    # the default hooks differ from these: the numbers do depend on them
    assert not np.allclose(nn.RNN(gru_jax.GRUCell(4)).apply({"params": {"cell": {"gru": p}}}, xs),
                           want, atol=1e-3)
    layer = gru_jax.GRU(4, gate_fn=gate, activation_fn=act)
    h_last, hs = layer.apply({"params": {"gru": p}}, xs)
    close(hs, want)
    close(h_last, want[:, -1])
    ncell = gru_jax.nnx.GRUCell(3, 4, gate_fn=gate, activation_fn=act, rngs=nnx.Rngs(0))
    ncell.set_params(p)
    close(nnx.RNN(ncell)(xs), want)


def test_layer_modules_pass_the_scan_options():
    """mask (holes), zero_output_for_mask, carry_dtype, Keras's input and recurrent
    dropout reach gru_jax.scan from the linen and nnx layers (the scan itself is
    checked against Keras in test_scan_options.py)."""
    xs = jax.random.normal(jax.random.key(0), (2, 5, 3))
    mask = jnp.array([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1]], bool)
    layer = gru_jax.GRU(4, zero_output_for_mask=False, carry_dtype=jnp.float16)
    variables = layer.init(jax.random.key(1), xs)
    p = variables["params"]["gru"]
    got = layer.apply(variables, xs, mask=mask)
    want = gru_jax.scan("gru", p, xs, mask=mask, zero_output_for_mask=False,
                        carry_dtype=jnp.float16)
    assert got[1].dtype == jnp.float16
    close(got[0], want[0])
    close(got[1], want[1])

    drop = gru_jax.GRU(4, input_dropout=0.3, recurrent_dropout=0.4)
    close(drop.apply(variables, xs, deterministic=True)[1], gru_jax.gru_scan(p, xs)[1])
    rng = jax.random.key(3)
    key = nn.apply(lambda m: m.make_rng("dropout"), drop)(variables, rngs={"dropout": rng})
    close(drop.apply(variables, xs, deterministic=False, rngs={"dropout": rng})[1],
          gru_jax.scan("gru", p, xs, dropout=0.3, recurrent_dropout=0.4, rng=key)[1])

    nlayer = gru_jax.nnx.GRU(3, 4, input_dropout=0.3, recurrent_dropout=0.4,
                             rngs=nnx.Rngs(0, dropout=1))
    nlayer.set_params(p)
    a, b = nlayer(xs, mask=mask)[1], nlayer(xs, mask=mask)[1]
    assert not np.allclose(a, b)  # a fresh pair of masks per call
    nlayer.eval()
    close(nlayer(xs, mask=mask)[1], gru_jax.scan("gru", p, xs, mask=mask)[1])
