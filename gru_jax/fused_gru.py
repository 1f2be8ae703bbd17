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

Per-backend choices (``default_plan``; measured with ``python scripts/bench.py
--mode=ablation``, results in bench_results/): on CPU the three input
products run inside the step (flax's way) and nothing is unrolled: on
XLA:CPU a fresh large buffer costs page faults (~0.3 ms per MB), so writing a
[time, batch, 3H] projection costs more than three small products per step,
and blocks are kept cache-sized (block * batch * hidden ~ 2^18). On GPU the
input products are hoisted, one large product per block, and the per-step
loops are unrolled 4x (kernel-launch bound at small batch).

Only reset_after is fused; ``gru_scan(impl="auto")`` falls back to the
reference scan for reset_before params.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from gru_jax.cells._init import dot

_SymbolicZero = jax.custom_derivatives.SymbolicZero


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the fused GRU runs.

    proj: "step" computes the input terms x_t W_i inside each step (three
      small products); "block" hoists them, one large product per block.
    block: time steps per block (backward; and forward when proj="block");
      None picks it from block_elems (block * batch * hidden): the backward's
      block scratch is ~5 x block_elems floats, and on CPU it is fastest
      when it stays cache-sized (2^18: 64 steps at B=32, H=128).
    unroll: `lax.scan` unroll of the per-step loops.
    save: what the forward stores for the backward: "h" the states only
      (the backward recomputes h_{t-1} W_h per block, one large product);
      "gh" also h_{t-1} W_h of every step ([T, B, 3H] more memory, no recompute).
    """

    proj: str = "step"
    block: int | None = None
    unroll: int = 1
    save: str = "h"
    block_elems: int = 1 << 18

    def __post_init__(self):
        if self.proj not in ("step", "block"):
            raise ValueError(f"proj must be 'step' or 'block', got {self.proj!r}")
        if self.block is not None and not (isinstance(self.block, int) and self.block > 0):
            raise ValueError(f"block must be None or a positive int, got {self.block!r}")
        if self.save not in ("h", "gh"):
            raise ValueError(f"save must be 'h' or 'gh', got {self.save!r}")

    def block_len(self, T: int, B: int, H: int) -> int:
        """Steps per block: `block`, or (None) the most steps with
        block * batch * hidden <= block_elems, between 4 and 1024; at most T."""
        C = self.block or max(4, min(1024, self.block_elems // max(1, B * H)))
        return max(1, min(C, T))


def default_plan(backend: str | None = None) -> Plan:
    """The plan measured fastest on `backend` (default: jax.default_backend()).

    CPU: input products inside the step, backward blocks of ~2^18 elements.
    GPU/TPU: input products hoisted per block (fewer kernel launches per
    step), blocks of ~2^24 elements, loops unrolled 4x (kernel-launch bound at
    small batch). Measured with `python scripts/bench.py --mode=ablation`.
    """
    backend = backend or jax.default_backend()
    if backend == "cpu":
        return Plan(proj="step")
    return Plan(proj="block", block_elems=1 << 24, unroll=4)


def fuse_params(params):
    """Per-gate params -> (w_i (W_ir, W_iz, W_in) each [I, H], b_i (3 x [H]),
    W_h [H, 3H], b_hn [H]); the hidden biases of r and z fold into b_i."""
    p = params
    w_i = (p["w_ir"], p["w_iz"], p["w_in"])
    b_i = (p["b_ir"] + p["b_hr"], p["b_iz"] + p["b_hz"], p["b_in"])
    w_h = jnp.concatenate([p["w_hr"], p["w_hz"], p["w_hn"]], axis=1)
    return w_i, b_i, w_h, p["b_hn"]


def _split3(a):
    H = a.shape[-1] // 3
    return a[..., :H], a[..., H:2 * H], a[..., 2 * H:]


def _flat(a):
    return a.reshape(-1, a.shape[-1])


def _dyn(a, start, size):
    return jax.lax.dynamic_slice_in_dim(a, start, size, axis=0)


@functools.cache
def _core(plan: Plan, dtype, masked: bool):
    """custom_vjp fn (w_i, b_i, w_h, b_hn, h0, xs, mask) -> (h_last [B, H],
    hc [T, B, H]), hc the carry after every step (held where mask is False)."""
    dtype = None if dtype is None else jnp.dtype(dtype)
    unroll = plan.unroll

    def mm(a, b):
        return dot(a, b, dtype)

    def inputs(x, w_i, b_i):  # x [..., IN] -> three [..., H]
        return tuple(mm(x, w) + b for w, b in zip(w_i, b_i, strict=True))

    def cell(h, gi, gh, b_hn):
        ir, iz, in_ = gi
        hr, hz, hn = _split3(gh)
        r = jax.nn.sigmoid(ir + hr)
        z = jax.nn.sigmoid(iz + hz)
        n = jnp.tanh(in_ + r * (hn + b_hn))
        return (n + z * (h - n)).astype(h.dtype)

    def hold(m_t, new, old):
        return jnp.where(m_t[:, None], new, old) if masked else new

    def forward(w_i, b_i, w_h, b_hn, h0, xs, mask, save_gh=False):
        """-> (h_last, hc [T, B, H]) or, with save_gh, (h_last, hc, gh [T, B, 3H])."""
        T = xs.shape[0]

        def out(new, gh):
            return (new, gh) if save_gh else new

        if plan.proj == "step":
            def step(h, inp):
                x_t, m_t = inp
                gh = mm(h, w_h)
                new = hold(m_t, cell(h, inputs(x_t, w_i, b_i), gh, b_hn), h)
                return new, out(new, gh)

            h_last, ys = jax.lax.scan(step, h0, (xs, mask), unroll=unroll)
            return (h_last, *ys) if save_gh else (h_last, ys)

        # proj == "block": blocks [s, s + C), s = min(k C, T - C); the last
        # block may start early and recompute (identically) a few steps.
        C = plan.block_len(T, *h0.shape)
        n_blocks = -(-T // C)

        def step(h, inp):
            gi_t, m_t = inp
            gh = mm(h, w_h)
            new = hold(m_t, cell(h, gi_t, gh, b_hn), h)
            return new, out(new, gh)

        def block(k, bufs):
            hc = bufs[0]
            s = jnp.minimum(k * C, T - C)
            h = jnp.where(s == 0, h0, hc[jnp.maximum(s - 1, 0)])
            gi = inputs(_dyn(xs, s, C), w_i, b_i)
            m = None if mask is None else _dyn(mask, s, C)
            _, ys = jax.lax.scan(step, h, (gi, m), unroll=unroll)
            ys = ys if save_gh else (ys,)
            return tuple(jax.lax.dynamic_update_slice_in_dim(b, y, s, axis=0)
                         for b, y in zip(bufs, ys, strict=True))

        bufs = (jnp.zeros((T, *h0.shape), h0.dtype),)
        if save_gh:
            gh_dtype = jnp.float32 if dtype else w_h.dtype
            bufs += (jnp.zeros((T, h0.shape[0], w_h.shape[1]), gh_dtype),)
        bufs = jax.lax.fori_loop(0, n_blocks, block, bufs)
        return (bufs[0][-1], *bufs)

    @jax.custom_vjp
    def core(w_i, b_i, w_h, b_hn, h0, xs, mask):
        return forward(w_i, b_i, w_h, b_hn, h0, xs, mask)

    def core_fwd(w_i, b_i, w_h, b_hn, h0, xs, mask):
        args = jax.tree_util.tree_map(
            lambda a: a.value, (w_i, b_i, w_h, b_hn, h0, xs, mask),
            is_leaf=lambda a: isinstance(a, jax.custom_derivatives.CustomVJPPrimal))
        if plan.save == "gh":
            h_last, hc, gh = forward(*args, save_gh=True)
        else:
            (h_last, hc), gh = forward(*args), None
        return (h_last, hc), (*args, hc, gh)

    def core_bwd(res, cts):
        w_i, b_i, w_h, b_hn, h0, xs, mask, hc, gh_saved = res
        dh_last, dhc = cts
        T, B, IN = xs.shape
        H = h0.shape[-1]
        C = plan.block_len(T, B, H)
        n_blocks = -(-T // C)
        has_dhc = not isinstance(dhc, _SymbolicZero)
        dh = jnp.zeros_like(h0) if isinstance(dh_last, _SymbolicZero) else dh_last
        dh = dh.astype(h0.dtype)
        f32 = jnp.promote_types(h0.dtype, jnp.float32)
        w_h_t = w_h.T
        # dL/dx = [dr, dz, dn r, dn] [W_ir; W_iz; 0; W_in]^T, one product per block
        w4_t = jnp.concatenate([w_i[0].T, w_i[1].T, jnp.zeros_like(w_i[2].T), w_i[2].T], 0)
        # Where a step is not live (masked, or done by a later block): K = A = 0, z = 1.
        fill = jnp.concatenate([jnp.zeros((4 * H,), f32), jnp.ones((H,), f32)])

        def rstep(dh, inp):
            kz_t, dhc_t = inp  # kz_t = [K (3H), A, z]
            g = dh if dhc_t is None else dh + dhc_t
            gk = jnp.concatenate([g, g, g], axis=-1) * kz_t[:, :3 * H]
            return (g * kz_t[:, 4 * H:] + mm(gk, w_h_t)).astype(dh.dtype), g

        def block(k, carry):
            dh, d_w_i4, d_b4, d_w_h, d_xs = carry
            s = jnp.maximum(T - (k + 1) * C, 0)
            valid = jnp.arange(C) < (T - k * C - s)  # steps no later block has done
            live = valid[:, None, None]
            if masked:
                live = live & _dyn(mask, s, C)[..., None]
            hc_b = _dyn(hc, s, C)
            x_b = _dyn(xs, s, C)
            h_start = jnp.where(s == 0, h0, hc[jnp.maximum(s - 1, 0)])
            hp = jnp.concatenate([h_start[None], hc_b[:-1]], axis=0)  # h_{t-1}, [C, B, H]
            ir, iz, in_ = inputs(x_b, w_i, b_i)
            if gh_saved is None:  # recompute h_{t-1} W_h for the whole block at once
                hr, hz, hn = _split3(mm(_flat(hp), w_h).reshape(C, B, 3 * H))
            else:
                hr, hz, hn = _split3(_dyn(gh_saved, s, C))
            r = jax.nn.sigmoid(ir + hr)
            z = jax.nn.sigmoid(iz + hz)
            a = hn + b_hn
            n = jnp.tanh(in_ + r * a)
            A = (1.0 - z) * (1.0 - n * n)
            kaz = jnp.concatenate(
                [A * a * r * (1.0 - r), (hp - n) * z * (1.0 - z), A * r, A, z], -1)
            kaz = jnp.where(live, kaz.astype(f32), fill)  # [C, B, 5H]
            dhc_b = jnp.where(valid[:, None, None], _dyn(dhc, s, C), 0.0) if has_dhc else None
            dh, G = jax.lax.scan(rstep, dh, (kaz, dhc_b), reverse=True, unroll=unroll)
            # D = [dr, dz, dn r, dn], [C * B, 4H]
            D = _flat(jnp.concatenate([G, G, G, G], axis=-1) * kaz[..., :4 * H])
            d_w_h = d_w_h + mm(_flat(hp).T, D[:, :3 * H])
            d_w_i4 = d_w_i4 + mm(_flat(x_b).T, D)
            d_b4 = d_b4 + D.sum(0)
            dx_b = mm(D, w4_t).reshape(C, B, IN).astype(d_xs.dtype)
            dx_b = jnp.where(valid[:, None, None], dx_b, _dyn(d_xs, s, C))
            d_xs = jax.lax.dynamic_update_slice_in_dim(d_xs, dx_b, s, axis=0)
            return dh, d_w_i4, d_b4, d_w_h, d_xs

        init = (
            dh,
            jnp.zeros((IN, 4 * H), f32),
            jnp.zeros((4 * H,), f32),
            jnp.zeros(w_h.shape, f32),
            jnp.zeros(xs.shape, xs.dtype),
        )
        dh0, d_w_i4, d_b4, d_w_h, d_xs = jax.lax.fori_loop(0, n_blocks, block, init)
        gate = lambda v, j: v[..., j * H:(j + 1) * H]  # noqa: E731  [r, z, n r, n] columns
        cast = lambda g, like: g.astype(like.dtype)  # noqa: E731
        return (
            tuple(cast(gate(d_w_i4, j), w) for j, w in zip((0, 1, 3), w_i, strict=True)),
            tuple(cast(gate(d_b4, j), b) for j, b in zip((0, 1, 3), b_i, strict=True)),
            cast(d_w_h, w_h),
            cast(gate(d_b4, 2), b_hn),
            cast(dh0, h0),
            d_xs,
            None,
        )

    core.defvjp(core_fwd, core_bwd, symbolic_zeros=True)
    return core


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
    w_i, b_i, w_h, b_hn = fuse_params(params)

    def run(h0, xs, mask):
        masked = mask is not None
        xs = xs.astype(w_h.dtype)
        h_last, hc = _core(plan, dtype, masked)(w_i, b_i, w_h, b_hn, h0, xs, mask)
        ys = jnp.where(mask[..., None], hc, 0.0) if masked else hc
        return h_last, ys

    return run
