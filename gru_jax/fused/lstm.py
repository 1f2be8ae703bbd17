r"""An LSTM time loop with a hand-written backward pass (``jax.custom_vjp``).

The same idea as the fused GRU (`gru_jax.fused.gru`), in its simplest form:
JAX's reverse-mode ``lax.scan`` stores every small residual of every step and
differentiates each op; here the forward keeps only the carries (c_t, h_t), and
the backward is one reverse loop that recomputes each step's gates from
(x_t, h_{t-1}) with the forward's two small products, carries only (dL/dc, dL/dh)
and does one [batch, 4H] x [4H, hidden] product per step. The weight gradients
and dL/dx are then a few large products over all T * batch rows. On the 2-core
CPU (loaded) its train step ran 1.32-1.50x the reference scan's speed and
1.07-1.15x flax.linen's OptimizedLSTMCell at batch 32, T = 640, hidden 16-128
and at (64, 256, 8, 128), in under half the reference's memory
(`python scripts/bench.py --mode=lstm`, bench_results/cpu_lstm.md).

Equations (`gru_jax.cells.lstm`; gates stacked [i | f | g | o])::

    a = x W_i + h W_h + b;  i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
    c' = f c + i g;   h' = o tanh(c')

Backward, with (dc, dh) = dL/d(c', h') from the next step plus the output's::

    dC = dc + dh o (1 - tanh(c')^2)
    dA = [dC g i (1 - i),  dC c f (1 - f),  dC i (1 - g^2),  dh tanh(c') o (1 - o)]
    dL/dc = dC f;   dL/dh = dA W_h^T

A masked step (mask False) holds the carry: dA = 0 and (dc, dh) pass through.
Under `jax.vmap` the loops are batched op by op (a member axis on every product).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gru_jax.cells.initializers import dot

_SymbolicZero = jax.custom_derivatives.SymbolicZero
GATES = "ifgo"


def fuse_lstm_params(params) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-gate LSTM params -> (W_i [input, 4H], W_h [H, 4H], b [4H]), gates i, f, g, o."""
    cat = lambda name: jnp.concatenate([params[name.format(g)] for g in GATES], -1)  # noqa: E731
    return cat("w_i{}"), cat("w_h{}"), cat("b_{}")


def _gates(a):
    i, f, g, o = jnp.split(a, 4, axis=-1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _held(m, new, old):
    return new if m is None else jnp.where(m, new, old)


def _forward(dtype, w, c0, h0, xs, mask):
    w_i, w_h, b = w

    def step(carry, inp):
        c, h = carry
        x, m = inp
        i, f, g, o = _gates(dot(x, w_i, dtype) + b + dot(h, w_h, dtype))
        c_new = (f * c + i * g).astype(c.dtype)
        h_new = (o * jnp.tanh(c_new)).astype(h.dtype)
        c, h = _held(m, c_new, c), _held(m, h_new, h)
        return (c, h), (c, h)

    m = None if mask is None else mask[..., None]
    (c, h), (cs, hs) = jax.lax.scan(step, (c0, h0), (xs, m))
    return (c, h, hs), cs


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def lstm_core(dtype, w, c0, h0, xs, mask):
    """(fused params `w`, c0, h0 [B, H], xs [T, B, I], mask [T, B] or None) ->
    (c_last, h_last [B, H], hs [T, B, H]), hs the h after every step (held where
    mask is False); reverse mode by `_backward`. `dtype`: the products' compute
    dtype (None: the operands')."""
    return _forward(dtype, w, c0, h0, xs, mask)[0]


def _core_fwd(dtype, *args):
    w, c0, h0, xs, mask = jax.tree_util.tree_map(  # symbolic_zeros wraps each primal
        lambda a: a.value, args,
        is_leaf=lambda a: isinstance(a, jax.custom_derivatives.CustomVJPPrimal))
    (c, h, hs), cs = _forward(dtype, w, c0, h0, xs, mask)
    return (c, h, hs), (w, c0, h0, xs, mask, cs, hs)


def _backward(dtype, res, cts):
    (w_i, w_h, b), c0, h0, xs, mask, cs, hs = res
    dc_last, dh_last, dhs = (jnp.zeros_like(like) if isinstance(ct, _SymbolicZero) else ct
                             for ct, like in zip(cts, (c0, h0, hs), strict=True))
    T, B, IN = xs.shape
    H = h0.shape[-1]
    f32 = jnp.promote_types(h0.dtype, jnp.float32)
    hp = jnp.concatenate([h0[None], hs[:-1]])  # h_{t-1}
    cp = jnp.concatenate([c0[None], cs[:-1]])
    w_hT = w_h.T

    def rstep(carry, inp):
        dc, dh = carry
        x, h_prev, c_prev, c, dy, m = inp
        i, f, g, o = _gates(dot(x, w_i, dtype) + b + dot(h_prev, w_h, dtype))
        dh = (dh + dy).astype(f32)
        tc = jnp.tanh(c.astype(f32))
        dC = dc + dh * o * (1 - tc * tc)
        dA = jnp.concatenate([dC * g * i * (1 - i), dC * c_prev * f * (1 - f),
                              dC * i * (1 - g * g), dh * tc * o * (1 - o)], -1)
        if m is not None:
            dA = jnp.where(m, dA, 0.0)
        dc_prev, dh_prev = _held(m, dC * f, dc), _held(m, dot(dA, w_hT, dtype), dh)
        return (dc_prev, dh_prev), dA

    m = None if mask is None else mask[..., None]
    (dc0, dh0), dA = jax.lax.scan(rstep, (dc_last.astype(f32), dh_last.astype(f32)),
                                  (xs, hp, cp, cs, dhs, m), reverse=True)
    dA = dA.reshape(T * B, 4 * H)
    d_w_h = dot(hp.reshape(T * B, H).T, dA, dtype)
    d_w_i = dot(xs.reshape(T * B, IN).T, dA, dtype)
    d_xs = dot(dA, w_i.T, dtype).reshape(xs.shape)
    cast = lambda g, like: g.astype(like.dtype)  # noqa: E731
    return ((cast(d_w_i, w_i), cast(d_w_h, w_h), cast(dA.sum(0), b)),
            cast(dc0, c0), cast(dh0, h0), cast(d_xs, xs), None)


lstm_core.defvjp(_core_fwd, _backward, symbolic_zeros=True)


def fused_lstm_run(params, *, dtype=None):
    """A `gru_jax.scan` run ((c0, h0), xs [T, B, I], mask [T, B] or None) ->
    ((c_last, h_last) [B, H] each, hs [T, B, H]) using the hand-written backward."""
    dtype = None if dtype is None else jnp.dtype(dtype)
    w = fuse_lstm_params(params)

    def run(carry, xs, mask):
        c0, h0 = carry
        c, h, hs = lstm_core(dtype, w, c0, h0, xs.astype(w[1].dtype), mask)
        ys = hs if mask is None else jnp.where(mask[..., None], hs, 0.0)
        return (c, h), ys

    return run
