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

With ``Plan.factors == "step"`` (CPU, hidden <= 128) step 1 moves inside the
reverse scan: each step recomputes its own gates (h_{t-1} W_h, x_t W_i: two
more small products) and writes dr, dz, dn r, dn as four arrays; step 3 is
unchanged. On XLA:CPU the block-wide elementwise pass of step 1 is one large
concatenate fusion that is split over the cores (on a busy machine each part
waits for a core) and recomputes the gates once per piece; the per-step form
is a few small single-threaded ops (`reverse_recompute`).

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
and blocks are kept cache-sized (block * batch * hidden ~ 2^18); at large
steps the forward stores h W_h for the backward (`Plan.save`). On GPU the
input products are hoisted, one large product per block, and the per-step
loops are unrolled 4x (kernel-launch bound at small batch).

Members: every loop runs K GRUs at once (params with a leading member axis,
arrays member-major [K, T, B, ...]; each product one dot_general with the member
as its batch dimension, a plain product at K = 1). `fused_run` is K = 1, and a
`jax.vmap` over runs (of the loss, of its gradient, or inside `jax.grad`) folds
the vmapped axis into K (`gru_jax.fused.members`), so an ensemble is one loop
instead of per-op batching. How the K members then run (`Plan.members`): one
loop of batched products ("batch"), or one member after another in the same
program ("apart", `one_by_one`); whether a vmap pays at all per backend and
size: `gru_jax.fused.plan.packing_pays`.

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
from gru_jax.fused.members import members_vmap
from gru_jax.fused.plan import Plan, default_plan

_SymbolicZero = jax.custom_derivatives.SymbolicZero


class FusedParams(NamedTuple):
    """The GRU params of K members laid out for the fused loops (reset_after)."""

    w_i: tuple  # (W_ir, W_iz, W_in), each [K, input, hidden]
    b_i: tuple  # (b_ir + b_hr, b_iz + b_hz, b_in), each [K, hidden]
    w_h: jax.Array  # [W_hr | W_hz | W_hn], [K, hidden, 3 hidden]
    b_hn: jax.Array  # [K, hidden]


class Residuals(NamedTuple):
    """What the forward keeps for the backward (member-major: member axis first)."""

    fp: FusedParams
    h0: jax.Array  # [K, B, H]
    xs: jax.Array  # [K, T, B, I]
    mask: jax.Array | None  # [K, T, B] bool
    hc: jax.Array  # [K, T, B, H], the carry after every step
    gh: jax.Array | None  # [K, T, B, 3H], h_{t-1} W_h (Plan.save == "gh")


def fuse_params(params) -> FusedParams:
    """Per-gate params of one GRU ([in, out] kernels) or of K stacked ([K, in, out])
    -> FusedParams (member axis first); the hidden biases of r and z fold into b_i."""
    p = params if params["w_hr"].ndim == 3 else jax.tree_util.tree_map(lambda a: a[None], params)
    w_h = jnp.concatenate([p["w_hr"], p["w_hz"], p["w_hn"]], axis=-1)
    return FusedParams((p["w_ir"], p["w_iz"], p["w_in"]),
                       (p["b_ir"] + p["b_hr"], p["b_iz"] + p["b_hz"], p["b_in"]), w_h, p["b_hn"])


def _bias(b, like):
    """A per-member bias [K, H] shaped to broadcast over `like` [K, ..., H]."""
    return b.reshape(b.shape[0], *(1,) * (like.ndim - 2), b.shape[-1])


def _split3(a):
    H = a.shape[-1] // 3
    return a[..., :H], a[..., H:2 * H], a[..., 2 * H:]


def _split4(a, axis=-1):
    H = a.shape[axis] // 4
    return tuple(jax.lax.slice_in_dim(a, j * H, (j + 1) * H, axis=axis) for j in range(4))


def _dyn(a, start, size):
    """Steps [start, start + size) of a member-major [K, T, ...] array."""
    return jax.lax.dynamic_slice_in_dim(a, start, size, axis=1)


def _at(a, t):
    """Step t of a member-major [K, T, ...] array -> [K, ...]."""
    return jax.lax.dynamic_index_in_dim(a, t, axis=1, keepdims=False)


def _before(hc, h0, s):
    """The carry before step s: h0 at s = 0, else hc[:, s - 1]."""
    return jnp.where(s == 0, h0, _at(hc, jnp.maximum(s - 1, 0)))


def scan_members(step, carry, xs, length: int, *, reverse=False, unroll=1):
    """`lax.scan` over axis 1 of member-major arrays: xs leaves [K, T, ...] (None
    allowed), step(carry, x_t) -> (carry, y_t) -> (carry, ys [K, T, ...]).

    Why not lax.scan: it scans axis 0, so K members would be laid out [T, K, ...]
    while every block product wants each member's rows together ([K, T B, ...]
    for one dot_general with K as its batch dimension); XLA:CPU then copied
    each block through a transpose (the packed backward ran 6x slower).
    Reading step t in place and writing outputs by dynamic_update_slice costs
    nothing extra per step."""
    x0 = jax.tree_util.tree_map(lambda a: _at(a, 0), xs)
    y_like = jax.eval_shape(step, carry, x0)[1]
    ys = jax.tree_util.tree_map(
        lambda y: jnp.zeros((y.shape[0], length, *y.shape[1:]), y.dtype), y_like)

    def body(i, c):
        carry, ys = c
        t = length - 1 - i if reverse else i
        carry, y = step(carry, jax.tree_util.tree_map(lambda a: _at(a, t), xs))
        ys = jax.tree_util.tree_map(
            lambda b, v: jax.lax.dynamic_update_index_in_dim(b, v, t, axis=1), ys, y)
        return carry, ys

    return jax.lax.fori_loop(0, length, body, (carry, ys), unroll=unroll)


def _matmul(a, b, dtype):
    """a @ b in the compute `dtype`, float32 accumulation (`dtype=None`: no casts)."""
    if dtype is None:
        return a @ b
    return jnp.matmul(a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def _einsum(spec, a, b, dtype):
    """einsum with inputs cast to the compute `dtype` and float32 accumulation
    (`dtype=None`: the promoted dtype, no casts)."""
    if dtype is None:
        return jnp.einsum(spec, a, b)
    return jnp.einsum(spec, a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def mdot(a, w, dtype):
    """Each member's rows times its matrix: a [K, ..., I], w [K, I, O] -> [K, ..., O].
    One member: a plain product (XLA:CPU runs a size-1 batch dimension slower);
    K members: one dot_general with the member as its batch dimension."""
    if w.shape[0] == 1:
        return _matmul(a, w[0], dtype)
    return _einsum("k...i,kio->k...o", a, w, dtype)


def mgram(a, d, dtype):
    """Per member, the sum over steps and batch of a^T d: a [K, C, B, I],
    d [K, C, B, O] -> [K, I, O]."""
    if a.shape[0] == 1:
        return _matmul(a.reshape(-1, a.shape[-1]).T, d.reshape(-1, d.shape[-1]), dtype)[None]
    return _einsum("kcbi,kcbo->kio", a, d, dtype)


def input_terms(fp: FusedParams, x, dtype):
    """x [K, ..., B, I] -> (xr, xz, xn), each [K, ..., B, H], biases in."""
    return tuple(_bias(b, x) + mdot(x, w, dtype) for w, b in zip(fp.w_i, fp.b_i, strict=True))


def cell_step(fp: FusedParams, h, xp, m_t, dtype):
    """One forward step: h [K, B, H], xp input terms -> (h' [K, B, H], gh = h W_h
    [K, B, 3H]); h' = h where m_t [K, B] is False (m_t None: no mask)."""
    gh = mdot(h, fp.w_h, dtype)
    _, z, n, _ = reset_after_gates(xp, _split3(gh), _bias(fp.b_hn, h))
    new = gru_update(h, z, n).astype(h.dtype)
    if m_t is not None:
        new = jnp.where(m_t[..., None], new, h)
    return new, gh


def forward_by_step(fp, h0, xs, mask, *, dtype, unroll, save_gh):
    """The input products inside each step (Plan.proj == "step").
    -> (h_last, hc [K, T, B, H]) or, with save_gh, (h_last, hc, gh [K, T, B, 3H])."""

    # K > 1 members: one [K, I, 3H] input product per step instead of three (the
    # vmapped train step ran 1.2-1.4x faster at hidden 16; one member: no change)
    joined = fp.w_h.shape[0] > 1
    w_i3 = jnp.concatenate(fp.w_i, axis=-1)
    b_i3 = jnp.concatenate(fp.b_i, axis=-1)

    def step(h, inp):
        x_t, m_t = inp
        if joined:
            xp = _split3(_bias(b_i3, x_t) + mdot(x_t, w_i3, dtype))
        else:
            xp = input_terms(fp, x_t, dtype)
        new, gh = cell_step(fp, h, xp, m_t, dtype)
        return new, ((new, gh) if save_gh else new)

    h_last, ys = scan_members(step, h0, (xs, mask), xs.shape[1], unroll=unroll)
    return (h_last, *ys) if save_gh else (h_last, ys)


def forward_by_block(fp, h0, xs, mask, *, C, dtype, unroll, save_gh):
    """The input products hoisted per block of C steps (Plan.proj == "block").

    Blocks [s, s + C), s = min(k C, T - C): the last block may start early
    and recompute (identically) a few steps. Returns as `forward_by_step`.
    """
    T = xs.shape[1]

    def step(h, inp):
        xp_t, m_t = inp
        new, gh = cell_step(fp, h, xp_t, m_t, dtype)
        return new, ((new, gh) if save_gh else (new,))

    def block(k, bufs):
        s = jnp.minimum(k * C, T - C)
        m = None if mask is None else _dyn(mask, s, C)
        xp = input_terms(fp, _dyn(xs, s, C), dtype)
        _, ys = scan_members(step, _before(bufs[0], h0, s), (xp, m), C, unroll=unroll)
        return tuple(jax.lax.dynamic_update_slice_in_dim(b, y, s, axis=1)
                     for b, y in zip(bufs, ys, strict=True))

    K, B, H = h0.shape
    bufs = (jnp.zeros((K, T, B, H), h0.dtype),)
    if save_gh:
        gh_dtype = jnp.float32 if dtype else fp.w_h.dtype
        bufs += (jnp.zeros((K, T, B, 3 * H), gh_dtype),)
    bufs = jax.lax.fori_loop(0, -(-T // C), block, bufs)
    return (bufs[0][:, -1], *bufs)


def _forward_batch(plan: Plan, dtype, save_gh, fp, h0, xs, mask):
    kw = dict(dtype=dtype, unroll=plan.unroll, save_gh=save_gh)
    if plan.proj == "step":
        return forward_by_step(fp, h0, xs, mask, **kw)
    K, T, B, _ = xs.shape
    return forward_by_block(fp, h0, xs, mask, C=plan.block_len(T, K * B, h0.shape[-1]), **kw)


UNROLLED_MEMBERS = 16  # one_by_one: a Python loop up to this many members, lax.map above


def one_by_one(fn, *args):
    """fn (member-major arguments and outputs, None leaves allowed) run on one member
    at a time inside the one program -> its outputs, members concatenated.

    Up to UNROLLED_MEMBERS members: one call per member in program order, each
    member's inputs held by an optimization barrier until the previous member's
    outputs exist, so XLA runs them one after another as separate programs would
    (vmap of 8 members at hidden 128, batch 32, against 8 programs, load ~3:
    lax.map 0.81x, this loop without barriers 0.92x, with them 0.95x). Above it,
    `lax.map`, whose compile time does not grow with the members."""
    K = jax.tree_util.tree_leaves(args)[0].shape[0]
    if K > UNROLLED_MEMBERS:
        def one(member):
            out = fn(*jax.tree_util.tree_map(lambda a: a[None], member))
            return jax.tree_util.tree_map(lambda y: y[0], out)

        return jax.lax.map(one, args)
    outs = []
    for k in range(K):
        member = jax.tree_util.tree_map(lambda a, k=k: a[k:k + 1], args)
        if outs:
            member, _ = jax.lax.optimization_barrier((member, outs[-1]))
        outs.append(fn(*member))
    return jax.tree_util.tree_map(lambda *ys: jnp.concatenate(ys, 0), *outs)


def _forward(plan: Plan, dtype, save_gh, fp, h0, xs, mask):
    """K members as `plan.member_path` says: "batch" one loop for all, "apart" one
    member after another (`one_by_one`) inside the one program."""
    K, _, B, _ = xs.shape
    run = functools.partial(_forward_batch, plan, dtype, save_gh)
    if plan.member_path(K, B, h0.shape[-1]) == "apart":
        return one_by_one(run, fp, h0, xs, mask)
    return run(fp, h0, xs, mask)


def forward(plan: Plan, dtype, fp, h0, xs, mask, save_gh=False):
    """The fused forward as `plan` says: -> (h_last, hc[, gh]). Under jax.vmap the
    vmapped axis joins the member axis (`members_vmap`): one loop for all."""
    run = members_vmap(functools.partial(_forward, plan, dtype, save_gh))
    return run(fp, h0, xs, mask)


def block_factors(res: Residuals, s, C, live, dtype):
    """Recompute the gates of steps [s, s + C) at once (two large products) ->
    (h_{t-1} [K, C, B, H], x [K, C, B, I], kaz [K, C, B, 5H] = [K_r, K_z, K_n, A, z]);
    where `live` [K, C, B, 1] is False, K = A = 0 and z = 1 (the carry is held)."""
    fp = res.fp
    H = res.h0.shape[-1]
    hc_b, x_b = _dyn(res.hc, s, C), _dyn(res.xs, s, C)
    hp = jnp.concatenate([_before(res.hc, res.h0, s)[:, None], hc_b[:, :-1]], axis=1)
    gh = mdot(hp, fp.w_h, dtype) if res.gh is None else _dyn(res.gh, s, C)
    r, z, n, a = reset_after_gates(input_terms(fp, x_b, dtype), _split3(gh), _bias(fp.b_hn, hp))
    f32 = jnp.promote_types(res.h0.dtype, jnp.float32)
    kaz = jnp.concatenate(reset_after_factors(hp, r, z, n, a), -1).astype(f32)
    fill = jnp.concatenate([jnp.zeros((4 * H,), f32), jnp.ones((H,), f32)])
    return hp, x_b, jnp.where(live, kaz, fill)


def reverse_steps(kaz, dh, dhc_b, w_h_t, *, dtype, unroll):
    """dL/dh back through a block: one [B, 3H] x [3H, H] product per member and step.
    -> (dL/dh before the block, G [K, C, B, H] = dL/dh' of every step)."""
    H = dh.shape[-1]

    def rstep(dh, inp):
        kz_t, dhc_t = inp
        g = dh if dhc_t is None else dh + dhc_t
        gk = jnp.concatenate([g, g, g], axis=-1) * kz_t[..., :3 * H]
        return (g * kz_t[..., 4 * H:] + mdot(gk, w_h_t, dtype)).astype(dh.dtype), g

    return scan_members(rstep, dh, (kaz, dhc_b), kaz.shape[1], reverse=True, unroll=unroll)


def reverse_recompute(fp: FusedParams, hp, x_b, gh_b, live, dh, dhc_b, *, dtype, unroll):
    """dL/dh back through a block, the gates recomputed inside each step
    (Plan.factors == "step"): hp [K, C, B, H] = h_{t-1}, x_b [K, C, B, I], gh_b
    [K, C, B, 3H] = h_{t-1} W_h stored by the forward or None (recomputed here),
    live [K or 1, C, B or 1, 1] (False: the carry is held). -> (dL/dh before the
    block, D = (dr, dz, dn r, dn), each [K, C, B, H], of every step).

    Why: `block_factors`' block-wide arrays are large elementwise fusions that
    XLA:CPU splits over threads and, as one concatenate, recomputes the gates in
    once per piece; per step the same math is a few small ops on one thread, which
    at small hidden sizes and on a busy machine runs faster (members packed or
    not). The four gradients stay separate arrays (three products for dL/dh
    instead of one) for the same concatenate reason."""
    f32 = jnp.promote_types(dh.dtype, jnp.float32)
    w_i3 = jnp.concatenate(fp.w_i, axis=-1)  # [K, I, 3H]: one input product per step
    b_i3 = jnp.concatenate(fp.b_i, axis=-1)
    w_h_t = tuple(jnp.swapaxes(w, 1, 2) for w in _split3(fp.w_h))  # W_hr^T, W_hz^T, W_hn^T

    def rstep(dh, inp):
        hp_t, x_t, gh_t, live_t, dhc_t = inp
        gx = _bias(b_i3, x_t) + mdot(x_t, w_i3, dtype)
        gh = mdot(hp_t, fp.w_h, dtype) if gh_t is None else gh_t
        r, z, n, a = reset_after_gates(_split3(gx), _split3(gh), _bias(fp.b_hn, hp_t))
        k_r, k_z, k_n, A, z = reset_after_factors(hp_t, r, z, n, a)
        g = dh if dhc_t is None else dh + dhc_t
        on = live_t.astype(f32)
        D = tuple((g * f).astype(f32) * on for f in (k_r, k_z, k_n, A))
        new = g * jnp.where(live_t, z, 1.0)
        for d, w in zip(D[:3], w_h_t, strict=True):
            new = new + mdot(d, w, dtype)
        return new.astype(dh.dtype), D

    return scan_members(rstep, dh, (hp, x_b, gh_b, live, dhc_b), hp.shape[1], reverse=True,
                        unroll=unroll)


def backward_block(res: Residuals, dhc, w_t, C, k, carry, *, dtype, unroll, factors="block"):
    """Block k from the end: the reverse scan, then every weight gradient and
    dL/dx of the block as large products. carry = (dh, dW_i4, db4, dW_h, dxs);
    w_t = (W_h^T [K, 3H, H], [W_ir; W_iz; 0; W_in]^T [K, 4H, I])."""
    dh, d_w_i4, d_b4, d_w_h, d_xs = carry
    T = res.xs.shape[1]
    H = res.h0.shape[-1]
    s = jnp.maximum(T - (k + 1) * C, 0)
    valid = (jnp.arange(C) < (T - k * C - s))[None, :, None, None]  # no later block did them
    live = valid
    if res.mask is not None:
        live = live & _dyn(res.mask, s, C)[..., None]
    dhc_b = None if dhc is None else jnp.where(valid, _dyn(dhc, s, C), 0.0)
    if factors == "step":
        x_b = _dyn(res.xs, s, C)
        hp = jnp.concatenate([_before(res.hc, res.h0, s)[:, None], _dyn(res.hc, s, C)[:, :-1]],
                             axis=1)
        gh_b = None if res.gh is None else _dyn(res.gh, s, C)
        dh, Dp = reverse_recompute(res.fp, hp, x_b, gh_b, live, dh, dhc_b, dtype=dtype,
                                   unroll=unroll)
        d_w_h = d_w_h + jnp.concatenate([mgram(hp, d, dtype) for d in Dp[:3]], -1)
        d_w_i4 = d_w_i4 + jnp.concatenate([mgram(x_b, d, dtype) for d in Dp], -1)
        d_b4 = d_b4 + jnp.concatenate([d.sum((1, 2)) for d in Dp], -1)
        w4_t = _split4(w_t[1], axis=1)  # [K, H, I] each: W_ir^T, W_iz^T, 0, W_in^T
        dx_b = sum(mdot(d, w, dtype) for j, (d, w) in enumerate(zip(Dp, w4_t, strict=True))
                   if j != 2).astype(d_xs.dtype)
    else:
        hp, x_b, kaz = block_factors(res, s, C, live, dtype)
        dh, G = reverse_steps(kaz, dh, dhc_b, w_t[0], dtype=dtype, unroll=unroll)
        D = jnp.concatenate([G, G, G, G], axis=-1) * kaz[..., :4 * H]  # [dr, dz, dn r, dn]
        d_w_h = d_w_h + mgram(hp, D[..., :3 * H], dtype)
        d_w_i4 = d_w_i4 + mgram(x_b, D, dtype)
        d_b4 = d_b4 + D.sum((1, 2))
        dx_b = mdot(D, w_t[1], dtype).astype(d_xs.dtype)
    dx_b = jnp.where(valid, dx_b, _dyn(d_xs, s, C))
    d_xs = jax.lax.dynamic_update_slice_in_dim(d_xs, dx_b, s, axis=1)
    return dh, d_w_i4, d_b4, d_w_h, d_xs


def _backward(plan: Plan, dtype, res: Residuals, dh, dhc):
    K, _, B, _ = res.xs.shape
    run = functools.partial(_backward_batch, plan, dtype)
    if plan.member_path(K, B, res.h0.shape[-1]) == "apart":
        return one_by_one(run, res, dh, dhc)
    return run(res, dh, dhc)


def _backward_batch(plan: Plan, dtype, res: Residuals, dh, dhc):
    fp, h0, xs = res.fp, res.h0, res.xs
    K, T, B, IN = xs.shape
    H = h0.shape[-1]
    factors = plan.factors_for(K, B, H)
    C = plan.block_len(T, K * B, H, factors)
    f32 = jnp.promote_types(h0.dtype, jnp.float32)
    # dL/dx = [dr, dz, dn r, dn] [W_ir; W_iz; 0; W_in]^T, one product per block
    w4 = jnp.concatenate([fp.w_i[0], fp.w_i[1], jnp.zeros_like(fp.w_i[2]), fp.w_i[2]], -1)
    block = functools.partial(backward_block, res, dhc, (jnp.swapaxes(fp.w_h, 1, 2),
                                                         jnp.swapaxes(w4, 1, 2)),
                              C, dtype=dtype, unroll=plan.unroll,
                              factors=factors)
    init = (dh.astype(h0.dtype), jnp.zeros((K, IN, 4 * H), f32), jnp.zeros((K, 4 * H), f32),
            jnp.zeros(fp.w_h.shape, f32), jnp.zeros(xs.shape, xs.dtype))
    dh0, d_w_i4, d_b4, d_w_h, d_xs = jax.lax.fori_loop(0, -(-T // C), block, init)
    gate = lambda v, j: v[..., j * H:(j + 1) * H]  # noqa: E731  [r, z, n r, n] columns
    cast = lambda g, like: g.astype(like.dtype).reshape(like.shape)  # noqa: E731
    d_fp = FusedParams(
        tuple(cast(gate(d_w_i4, j), w) for j, w in zip((0, 1, 3), fp.w_i, strict=True)),
        tuple(cast(gate(d_b4, j), b) for j, b in zip((0, 1, 3), fp.b_i, strict=True)),
        cast(d_w_h, fp.w_h), cast(gate(d_b4, 2), fp.b_hn))
    return d_fp, cast(dh0, h0), d_xs


def backward(plan: Plan, dtype, res: Residuals, cts):
    """The custom VJP: blocks from the last to the first (see the module docstring)."""
    dh_last, dhc = cts
    dh = jnp.zeros_like(res.h0) if isinstance(dh_last, _SymbolicZero) else dh_last
    dhc = None if isinstance(dhc, _SymbolicZero) else dhc
    run = members_vmap(functools.partial(_backward, plan, dtype))
    return (*run(res, dh, dhc), None)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def fused_core(plan: Plan, dtype, fp: FusedParams, h0, xs, mask):
    """K GRUs at once: (fp, h0 [K, B, H], xs [K, T, B, I], mask [K, T, B] or None) ->
    (h_last [K, B, H], hc [K, T, B, H]), hc the carry after every step (held where
    mask is False); reverse mode by `backward`. `plan` and the compute `dtype` are
    static. Under jax.vmap (of this, of its gradient, or of a loss around it) the
    vmapped axis folds into K."""
    return forward(plan, dtype, fp, h0, xs, mask)


def _core_fwd(plan, dtype, fp, h0, xs, mask):
    args = jax.tree_util.tree_map(
        lambda a: a.value, (fp, h0, xs, mask),
        is_leaf=lambda a: isinstance(a, jax.custom_derivatives.CustomVJPPrimal))
    K, T, B, _ = args[2].shape
    if plan.saves_gh(T, K * B, args[1].shape[-1]):
        h_last, hc, gh = forward(plan, dtype, *args, save_gh=True)
    else:
        (h_last, hc), gh = forward(plan, dtype, *args), None
    return (h_last, hc), Residuals(*args, hc, gh)


fused_core.defvjp(_core_fwd, backward, symbolic_zeros=True)


def fused_run(params, *, dtype=None, unroll: int = 1, plan: Plan | None = None):
    """A `gru_jax.scan` run (carry, xs [T, B, I], mask [T, B] or None) ->
    (h_last [B, H], hs [T, B, H]) using the hand-written backward: one GRU, a
    member axis of 1 for `fused_core` (so `jax.vmap` over runs packs them).

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
        m = None if mask is None else mask[None]
        h_last, hc = fused_core(plan, dtype, fp, h0[None], xs.astype(fp.w_h.dtype)[None], m)
        ys = hc[0] if mask is None else jnp.where(mask[..., None], hc[0], 0.0)
        return h_last[0], ys

    return run
