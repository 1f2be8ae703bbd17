r"""A GRU time loop with a hand-written backward pass (``jax.custom_vjp``).

JAX's reverse-mode ``lax.scan`` differentiates every small op of every step;
on XLA:CPU that costs about 4x the forward. Here the backward is one reverse
scan that carries only dL/dh and does one [batch, 3H] x [3H, hidden] product
per step; every weight gradient is then a single large matrix product over
all time steps at once (e.g. dW_h = sum_t h_{t-1}^T dG_t as one
[hidden, T*batch] x [T*batch, 3H] product).

Forward, reset_after form, gates fused in one [hidden, 3*hidden] product::

    g_i = x W_i + b_i                 (all steps at once, hoisted)
    g_h = h W_h                       (per step)
    r = sigmoid(g_i^r + g_h^r); z = sigmoid(g_i^z + g_h^z)
    a = g_h^n + b_hn;  n = tanh(g_i^n + r * a)
    h' = n + z * (h - n)

Backward, given G = dL/dh' (from later steps and from the output)::

    dn = G (1 - z) (1 - n^2);  dz = G (h - n) z (1 - z);  dr = dn a r (1 - r)
    dG_i = [dr, dz, dn];   dG_h = [dr, dz, dn * r]
    dL/dh = G z + dG_h W_h^T

Only reset_after is fused; ``gru_scan(impl="auto")`` falls back to the
reference scan for reset_before params.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gru_jax.cells._init import dot


def fuse_params(params):
    """Per-gate params -> (W_i [I, 3H], b_i [3H], W_h [H, 3H], b_hn [H]); the
    hidden biases of r and z fold into b_i."""
    p = params
    w_i = jnp.concatenate([p["w_ir"], p["w_iz"], p["w_in"]], axis=1)
    w_h = jnp.concatenate([p["w_hr"], p["w_hz"], p["w_hn"]], axis=1)
    b_i = jnp.concatenate([p["b_ir"] + p["b_hr"], p["b_iz"] + p["b_hz"], p["b_in"]])
    return w_i, b_i, w_h, p["b_hn"]


def _split3(a):
    H = a.shape[-1] // 3
    return a[..., :H], a[..., H:2 * H], a[..., 2 * H:]


@functools.lru_cache(maxsize=None)
def _core(dtype, unroll: int, masked: bool):
    """custom_vjp fn (w_i, b_i, w_h, b_hn, h0, xs, mask) -> hc [T, B, H], the
    carry after every step (held where mask is False)."""
    dtype = None if dtype is None else jnp.dtype(dtype)

    def forward(w_i, b_i, w_h, b_hn, h0, xs, mask, save):
        gi = dot(xs, w_i, dtype) + b_i  # [T, B, 3H]

        def step(h, inp):
            gi_t, m_t = inp
            ir, iz, in_ = _split3(gi_t)
            hr, hz, hn = _split3(dot(h, w_h, dtype))
            r = jax.nn.sigmoid(ir + hr)
            z = jax.nn.sigmoid(iz + hz)
            a = hn + b_hn
            n = jnp.tanh(in_ + r * a)
            new = (n + z * (h - n)).astype(h.dtype)
            if masked:
                new = jnp.where(m_t[:, None], new, h)
            return new, ((new, r, z, n, a) if save else new)

        _, out = jax.lax.scan(step, h0, (gi, mask), unroll=unroll)
        return out

    @jax.custom_vjp
    def core(w_i, b_i, w_h, b_hn, h0, xs, mask):
        return forward(w_i, b_i, w_h, b_hn, h0, xs, mask, save=False)

    def core_fwd(w_i, b_i, w_h, b_hn, h0, xs, mask):
        hc, r, z, n, a = forward(w_i, b_i, w_h, b_hn, h0, xs, mask, save=True)
        return hc, (w_i, w_h, b_hn, h0, xs, mask, hc, r, z, n, a)

    def core_bwd(res, dhc):
        w_i, w_h, b_hn, h0, xs, mask, hc, r, z, n, a = res
        h_prev = jnp.concatenate([h0[None], hc[:-1]], axis=0)  # [T, B, H]
        w_h_t = w_h.T

        def step(dh, inp):
            dhc_t, hp, r_t, z_t, n_t, a_t, m_t = inp
            g = dh + dhc_t
            g_new = jnp.where(m_t[:, None], g, 0.0) if masked else g
            dn = g_new * (1.0 - z_t) * (1.0 - n_t * n_t)
            dz = g_new * (hp - n_t) * z_t * (1.0 - z_t)
            dr = dn * a_t * r_t * (1.0 - r_t)
            dgh = jnp.concatenate([dr, dz, dn * r_t], axis=-1)
            dh_prev = g_new * z_t + dot(dgh, w_h_t, dtype)
            if masked:
                dh_prev = dh_prev + jnp.where(m_t[:, None], 0.0, g)
            return dh_prev.astype(dh.dtype), jnp.concatenate([dr, dz, dn], axis=-1)

        dh0, dgi = jax.lax.scan(
            step, jnp.zeros_like(h0), (dhc, h_prev, r, z, n, a, mask), reverse=True, unroll=unroll
        )
        dgh = dgi.at[..., 2 * h0.shape[-1]:].multiply(r)  # the n part of dG_h is dn * r
        T, B, I = xs.shape
        flat = lambda t: t.reshape(T * B, t.shape[-1])  # noqa: E731
        d_w_h = dot(flat(h_prev).T, flat(dgh), dtype).astype(w_h.dtype)
        d_w_i = dot(flat(xs).T, flat(dgi), dtype).astype(w_i.dtype)
        d_b_i = dgi.sum((0, 1)).astype(w_i.dtype)
        d_b_hn = _split3(dgh)[2].sum((0, 1)).astype(b_hn.dtype)
        d_xs = dot(dgi, w_i.T, dtype).astype(xs.dtype)
        d_mask = None if mask is None else jnp.zeros_like(mask)
        return d_w_i, d_b_i, d_w_h, d_b_hn, dh0.astype(h0.dtype), d_xs, d_mask

    core.defvjp(core_fwd, core_bwd)
    return core


def fused_run(params, *, dtype=None, unroll: int = 1):
    """A `gru_jax.scan` run (carry, xs [T, B, I], mask) -> (h_last, hs [T, B, H])
    using the hand-written backward."""
    w_i, b_i, w_h, b_hn = fuse_params(params)

    def run(h0, xs, mask):
        masked = mask is not None
        hc = _core(dtype, unroll, masked)(w_i, b_i, w_h, b_hn, h0, xs.astype(w_i.dtype), mask)
        ys = jnp.where(mask[..., None], hc, 0.0) if masked else hc
        return hc[-1], ys

    return run
