r"""A GRU time loop with a hand-written backward pass (``jax.custom_vjp``).

JAX's reverse-mode ``lax.scan`` differentiates every small op of every step
and stores several [batch, hidden] residuals per step; on XLA:CPU that costs
about 4x the forward, most of it in memory traffic. Here the forward stores
only the states h_t, and the backward runs over blocks of ``block`` steps,
from the last block to the first. For each block it

1. recomputes every gate pre-activation of the block at once, with two
   large matrix products (``x W_i`` and ``h_{t-1} W_h`` over block*batch rows),
   and from them the per-step factors K_t, z_t below (one vectorised pass);
2. runs a reverse scan that carries only G = dL/dh and does one
   [batch, 3H] x [3H, hidden] product per step;
3. turns the block's G into every weight gradient with large products
   (e.g. dW_h += sum_t h_{t-1}^T dG_t over block*batch rows) and dL/dx.

So the memory is one [time, batch, hidden] array of states (plus
block-sized scratch), and the per-step work is one small product each way.

Equations, reset_after form (cuDNN / PyTorch / Keras default)::

    r = sigmoid(x W_ir + b_ir + b_hr + h W_hr)
    z = sigmoid(x W_iz + b_iz + b_hz + h W_hz)
    a = h W_hn + b_hn;   n = tanh(x W_in + b_in + r * a)
    h' = n + z * (h - n)

Backward, with G = dL/dh' (from the next step and from the output)::

    A = (1 - z)(1 - n^2)
    K = [A a r (1 - r),  (h - n) z (1 - z),  A r]          # [batch, 3H]
    dG_h = [G, G, G] * K      = [dr, dz, dn * r]
    dG_i = [dr, dz, G A]      = [dr, dz, dn]
    dL/dh = G z + dG_h W_h^T,   W_h = [W_hr | W_hz | W_hn]  # [H, 3H]

Masked steps (``mask`` False: the carry is held) fold into K = 0, z = 1, so
the reverse scan has no branches. A block that runs past the start of the
sequence (T not a multiple of ``block``) masks its extra steps the same way.

Per-backend choices (`gru_jax.fused.plan.default_plan`; measured with the
bench's ablation mode): on CPU the three input
products run inside the step (flax's way) and nothing is unrolled: on
XLA:CPU a fresh large buffer costs page faults (~0.3 ms per MB), so writing a
[time, batch, 3H] projection costs more than three small products per step,
and blocks are kept cache-sized (block * batch * hidden ~ 2^18). On GPU the
input products are hoisted, one large product per block, and the per-step
loops are unrolled 4x (kernel-launch bound at small batch).

The gate math (forward gates, the update and the factors K, A, z) is
`gru_jax.cells.gru`'s, shared with the reference step; this module holds
only the loops. Only reset_after is fused; `gru_jax.scan(impl="auto")`
falls back to the reference scan for reset_before params.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gru_jax.cells.gru import gru_update, reset_after_factors, reset_after_gates
from gru_jax.cells.initializers import dot
from gru_jax.fused.plan import Plan, default_plan

_SymbolicZero = jax.custom_derivatives.SymbolicZero


class FusedParams(NamedTuple):
    """The GRU params laid out for the fused loops (reset_after)."""

    w_i: tuple  # (W_ir, W_iz, W_in), each [input, hidden]
    b_i: tuple  # (b_ir + b_hr, b_iz + b_hz, b_in), each [hidden]
    w_h: jax.Array  # [W_hr | W_hz | W_hn], [hidden, 3 hidden]
    b_hn: jax.Array  # [hidden]


class Residuals(NamedTuple):
    """What the forward keeps for the backward."""

    fp: FusedParams
    h0: jax.Array  # [B, H]
    xs: jax.Array  # [T, B, I]
    mask: jax.Array | None  # [T, B] bool
    hc: jax.Array  # [T, B, H], the carry after every step
    gh: jax.Array | None  # [T, B, 3H], h_{t-1} W_h (Plan.save == "gh")


def fuse_params(params) -> FusedParams:
    """Per-gate params -> FusedParams; the hidden biases of r and z fold into b_i."""
    p = params
    w_h = jnp.concatenate([p["w_hr"], p["w_hz"], p["w_hn"]], axis=1)
    return FusedParams((p["w_ir"], p["w_iz"], p["w_in"]),
                       (p["b_ir"] + p["b_hr"], p["b_iz"] + p["b_hz"], p["b_in"]), w_h, p["b_hn"])


def _split3(a):
    H = a.shape[-1] // 3
    return a[..., :H], a[..., H:2 * H], a[..., 2 * H:]


def _flat(a):
    return a.reshape(-1, a.shape[-1])


def _dyn(a, start, size):
    return jax.lax.dynamic_slice_in_dim(a, start, size, axis=0)


def _before(hc, h0, s):
    """The carry before step s: h0 at s = 0, else hc[s - 1]."""
    return jnp.where(s == 0, h0, hc[jnp.maximum(s - 1, 0)])


def input_terms(fp: FusedParams, x, dtype):
    """x [..., I] -> (xr, xz, xn), each [..., H], biases in."""
    return tuple(dot(x, w, dtype) + b for w, b in zip(fp.w_i, fp.b_i, strict=True))


def cell_step(fp: FusedParams, h, xp, m_t, dtype):
    """One forward step: h [B, H], xp input terms -> (h' [B, H], gh = h W_h [B, 3H]);
    h' = h where m_t [B] is False (m_t None: no mask)."""
    gh = dot(h, fp.w_h, dtype)
    _, z, n, _ = reset_after_gates(xp, _split3(gh), fp.b_hn)
    new = gru_update(h, z, n).astype(h.dtype)
    if m_t is not None:
        new = jnp.where(m_t[:, None], new, h)
    return new, gh


def forward_by_step(fp, h0, xs, mask, *, dtype, unroll, save_gh):
    """The input products inside each step (Plan.proj == "step").
    -> (h_last, hc [T, B, H]) or, with save_gh, (h_last, hc, gh [T, B, 3H])."""

    def step(h, inp):
        x_t, m_t = inp
        new, gh = cell_step(fp, h, input_terms(fp, x_t, dtype), m_t, dtype)
        return new, ((new, gh) if save_gh else new)

    h_last, ys = jax.lax.scan(step, h0, (xs, mask), unroll=unroll)
    return (h_last, *ys) if save_gh else (h_last, ys)


def forward_by_block(fp, h0, xs, mask, *, C, dtype, unroll, save_gh):
    """The input products hoisted per block of C steps (Plan.proj == "block").

    Blocks [s, s + C), s = min(k C, T - C): the last block may start early
    and recompute (identically) a few steps. Returns as `forward_by_step`.
    """
    T = xs.shape[0]

    def step(h, inp):
        xp_t, m_t = inp
        new, gh = cell_step(fp, h, xp_t, m_t, dtype)
        return new, ((new, gh) if save_gh else (new,))

    def block(k, bufs):
        s = jnp.minimum(k * C, T - C)
        m = None if mask is None else _dyn(mask, s, C)
        xp = input_terms(fp, _dyn(xs, s, C), dtype)
        _, ys = jax.lax.scan(step, _before(bufs[0], h0, s), (xp, m), unroll=unroll)
        return tuple(jax.lax.dynamic_update_slice_in_dim(b, y, s, axis=0)
                     for b, y in zip(bufs, ys, strict=True))

    bufs = (jnp.zeros((T, *h0.shape), h0.dtype),)
    if save_gh:
        gh_dtype = jnp.float32 if dtype else fp.w_h.dtype
        bufs += (jnp.zeros((T, h0.shape[0], fp.w_h.shape[1]), gh_dtype),)
    bufs = jax.lax.fori_loop(0, -(-T // C), block, bufs)
    return (bufs[0][-1], *bufs)


def forward(plan: Plan, dtype, fp, h0, xs, mask, save_gh=False):
    """The fused forward as `plan` says: -> (h_last, hc[, gh])."""
    kw = dict(dtype=dtype, unroll=plan.unroll, save_gh=save_gh)
    if plan.proj == "step":
        return forward_by_step(fp, h0, xs, mask, **kw)
    return forward_by_block(fp, h0, xs, mask, C=plan.block_len(xs.shape[0], *h0.shape), **kw)


def block_factors(res: Residuals, s, C, live, dtype):
    """Recompute the gates of steps [s, s + C) at once (two large products) ->
    (h_{t-1} [C, B, H], x [C, B, I], kaz [C, B, 5H] = [K_r, K_z, K_n, A, z]);
    where `live` [C, B, 1] is False, K = A = 0 and z = 1 (the carry is held)."""
    fp = res.fp
    H = res.h0.shape[-1]
    hc_b, x_b = _dyn(res.hc, s, C), _dyn(res.xs, s, C)
    hp = jnp.concatenate([_before(res.hc, res.h0, s)[None], hc_b[:-1]], axis=0)
    if res.gh is None:
        gh = dot(_flat(hp), fp.w_h, dtype).reshape(C, -1, 3 * H)
    else:
        gh = _dyn(res.gh, s, C)
    r, z, n, a = reset_after_gates(input_terms(fp, x_b, dtype), _split3(gh), fp.b_hn)
    f32 = jnp.promote_types(res.h0.dtype, jnp.float32)
    kaz = jnp.concatenate(reset_after_factors(hp, r, z, n, a), -1).astype(f32)
    fill = jnp.concatenate([jnp.zeros((4 * H,), f32), jnp.ones((H,), f32)])
    return hp, x_b, jnp.where(live, kaz, fill)


def reverse_steps(kaz, dh, dhc_b, w_h_t, *, dtype, unroll):
    """dL/dh back through a block: one [B, 3H] x [3H, H] product per step.
    -> (dL/dh before the block, G [C, B, H] = dL/dh' of every step)."""
    H = dh.shape[-1]

    def rstep(dh, inp):
        kz_t, dhc_t = inp
        g = dh if dhc_t is None else dh + dhc_t
        gk = jnp.concatenate([g, g, g], axis=-1) * kz_t[:, :3 * H]
        return (g * kz_t[:, 4 * H:] + dot(gk, w_h_t, dtype)).astype(dh.dtype), g

    return jax.lax.scan(rstep, dh, (kaz, dhc_b), reverse=True, unroll=unroll)


def backward_block(res: Residuals, dhc, w_t, C, k, carry, *, dtype, unroll):
    """Block k from the end: the reverse scan, then every weight gradient and
    dL/dx of the block as large products. carry = (dh, dW_i4, db4, dW_h, dxs);
    w_t = (W_h^T [3H, H], [W_ir; W_iz; 0; W_in]^T [4H, I])."""
    dh, d_w_i4, d_b4, d_w_h, d_xs = carry
    T, B, IN = res.xs.shape
    H = res.h0.shape[-1]
    s = jnp.maximum(T - (k + 1) * C, 0)
    valid = jnp.arange(C) < (T - k * C - s)  # steps no later block has done
    live = valid[:, None, None]
    if res.mask is not None:
        live = live & _dyn(res.mask, s, C)[..., None]
    hp, x_b, kaz = block_factors(res, s, C, live, dtype)
    dhc_b = None if dhc is None else jnp.where(valid[:, None, None], _dyn(dhc, s, C), 0.0)
    dh, G = reverse_steps(kaz, dh, dhc_b, w_t[0], dtype=dtype, unroll=unroll)
    D = _flat(jnp.concatenate([G, G, G, G], axis=-1) * kaz[..., :4 * H])  # [dr, dz, dn r, dn]
    d_w_h = d_w_h + dot(_flat(hp).T, D[:, :3 * H], dtype)
    d_w_i4 = d_w_i4 + dot(_flat(x_b).T, D, dtype)
    d_b4 = d_b4 + D.sum(0)
    dx_b = dot(D, w_t[1], dtype).reshape(C, B, IN).astype(d_xs.dtype)
    dx_b = jnp.where(valid[:, None, None], dx_b, _dyn(d_xs, s, C))
    d_xs = jax.lax.dynamic_update_slice_in_dim(d_xs, dx_b, s, axis=0)
    return dh, d_w_i4, d_b4, d_w_h, d_xs


def backward(plan: Plan, dtype, res: Residuals, cts):
    """The custom VJP: blocks from the last to the first (see the module docstring)."""
    dh_last, dhc = cts
    fp, h0, xs = res.fp, res.h0, res.xs
    T, B, IN = xs.shape
    H = h0.shape[-1]
    C = plan.block_len(T, B, H)
    dh = jnp.zeros_like(h0) if isinstance(dh_last, _SymbolicZero) else dh_last
    dhc = None if isinstance(dhc, _SymbolicZero) else dhc
    f32 = jnp.promote_types(h0.dtype, jnp.float32)
    # dL/dx = [dr, dz, dn r, dn] [W_ir; W_iz; 0; W_in]^T, one product per block
    w_i = fp.w_i
    w4_t = jnp.concatenate([w_i[0].T, w_i[1].T, jnp.zeros_like(w_i[2].T), w_i[2].T], 0)
    block = functools.partial(backward_block, res, dhc, (fp.w_h.T, w4_t), C, dtype=dtype,
                              unroll=plan.unroll)
    init = (dh.astype(h0.dtype), jnp.zeros((IN, 4 * H), f32), jnp.zeros((4 * H,), f32),
            jnp.zeros(fp.w_h.shape, f32), jnp.zeros(xs.shape, xs.dtype))
    dh0, d_w_i4, d_b4, d_w_h, d_xs = jax.lax.fori_loop(0, -(-T // C), block, init)
    gate = lambda v, j: v[..., j * H:(j + 1) * H]  # noqa: E731  [r, z, n r, n] columns
    cast = lambda g, like: g.astype(like.dtype)  # noqa: E731
    d_fp = FusedParams(
        tuple(cast(gate(d_w_i4, j), w) for j, w in zip((0, 1, 3), w_i, strict=True)),
        tuple(cast(gate(d_b4, j), b) for j, b in zip((0, 1, 3), fp.b_i, strict=True)),
        cast(d_w_h, fp.w_h), cast(gate(d_b4, 2), fp.b_hn))
    return d_fp, cast(dh0, h0), d_xs, None


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def fused_core(plan: Plan, dtype, fp: FusedParams, h0, xs, mask):
    """(fp, h0 [B, H], xs [T, B, I], mask [T, B] or None) -> (h_last [B, H],
    hc [T, B, H]), hc the carry after every step (held where mask is False);
    reverse mode by `backward`. `plan` and the compute `dtype` are static."""
    return forward(plan, dtype, fp, h0, xs, mask)


def _core_fwd(plan, dtype, fp, h0, xs, mask):
    args = jax.tree_util.tree_map(
        lambda a: a.value, (fp, h0, xs, mask),
        is_leaf=lambda a: isinstance(a, jax.custom_derivatives.CustomVJPPrimal))
    if plan.save == "gh":
        h_last, hc, gh = forward(plan, dtype, *args, save_gh=True)
    else:
        (h_last, hc), gh = forward(plan, dtype, *args), None
    return (h_last, hc), Residuals(*args, hc, gh)


fused_core.defvjp(_core_fwd, backward, symbolic_zeros=True)


def fused_run(params, *, dtype=None, unroll: int = 1, plan: Plan | None = None):
    """A `gru_jax.scan` run (carry, xs [T, B, I], mask [T, B] or None) ->
    (h_last [B, H], hs [T, B, H]) using the hand-written backward.

    `plan` defaults to `default_plan()` for the current backend (with
    `unroll` if it is not 1).
    """
    if plan is None:
        plan = default_plan()
        if unroll != 1:
            plan = dataclasses.replace(plan, unroll=unroll)
    dtype = None if dtype is None else jnp.dtype(dtype)
    fp = fuse_params(params)

    def run(h0, xs, mask):
        h_last, hc = fused_core(plan, dtype, fp, h0, xs.astype(fp.w_h.dtype), mask)
        ys = hc if mask is None else jnp.where(mask[..., None], hc, 0.0)
        return h_last, ys

    return run
