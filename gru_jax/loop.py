"""The time loop under `gru_jax.scan`: runs, masks, reverse, remat, layouts, dropout.

A *run* is the time loop of one implementation on time-major arrays::

    run(carry, xs [T, B, I], mask [T, B] bool or None) -> (carry, ys [T, B, H])

where mask False holds the carry and gives ys = 0. `drive` puts masks,
reverse and remat around a run; `Layout` maps any leading batch shape (or
none) onto the [T, B, ...] a run takes, and back.

``remat`` trades compute for memory on long sequences: the time axis is cut
into chunks (``remat=True``: about sqrt(T) steps; an int: that many), each
chunk runs under ``jax.checkpoint``, so the backward pass stores only the
carries at chunk boundaries plus one chunk's activations at a time. The
input projection then happens per chunk too, so no [time, batch, 3*hidden]
tensor is ever materialised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gru_jax.cells import Cell

Run = Callable  # (carry, xs [T, B, I], mask [T, B] or None) -> (carry, ys [T, B, H])


def time_reverse(xs, seq_lengths=None):
    """Reverse the time axis (axis 0) of every leaf; with `seq_lengths` [batch],
    reverse only each sequence's valid prefix and leave the padding in place.
    Its own inverse.

    Lengths outside [0, T] are clamped to it (a length past T reverses the
    whole sequence, a negative one nothing): every gather index stays in
    [0, T). `gru_jax.scan` refuses such lengths when they are concrete; this
    clamp is what keeps traced ones (inside jit) from reading out of bounds.
    """
    if seq_lengths is None:
        return jax.tree_util.tree_map(lambda x: x[::-1], xs)

    def rev(x):
        t = jnp.arange(x.shape[0])[:, None]
        lengths = jnp.clip(seq_lengths, 0, x.shape[0])[None, :]
        idx = jnp.where(t < lengths, lengths - 1 - t, t)
        idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2))
        return jnp.take_along_axis(x, jnp.broadcast_to(idx, idx.shape[:2] + x.shape[2:]), axis=0)

    return jax.tree_util.tree_map(rev, xs)


def masked_body(step):
    """Wrap step(carry, xp_t) -> (carry, y) so that where mask_t is False the
    carry is held and the output is zero."""

    def body(carry, inp):
        xp_t, m_t = inp
        new, y = step(carry, xp_t)
        if m_t is None:
            return new, y
        new = jax.tree_util.tree_map(lambda n, o: jnp.where(m_t[:, None], n, o), new, carry)
        return new, jnp.where(m_t[:, None], y, jnp.zeros_like(y))

    return body


def reference_run(cell: Cell, params, *, dtype=None, unroll: int = 1, rec_mask=None) -> Run:
    """The plain formulation: input projection hoisted out of the loop, the
    cell's step under `lax.scan`, reverse mode by JAX autodiff. `rec_mask`
    [B, H]: recurrent dropout, the same mask at every step."""

    def step(carry, xp_t):
        if rec_mask is None:
            return cell.step(params, carry, xp_t, dtype)
        return cell.step(params, carry, xp_t, dtype, rec_mask)

    body = masked_body(step)

    def run(carry, xs, mask):
        xp = cell.project(params, xs, dtype)
        return jax.lax.scan(body, carry, (xp, mask), unroll=unroll)

    return run


def associative_run(cell: Cell, params, *, dtype=None, unroll: int = 1, rec_mask=None) -> Run:
    """minGRU's h_t = a_t h_{t-1} + b_t by `jax.lax.associative_scan` over time
    (`cell.project` gives (a, b)); masked steps get a = 1, b = 0 (hold)."""
    del unroll  # no sequential loop to unroll
    if rec_mask is not None:
        raise ValueError("recurrent_dropout: minGRU has no recurrent product; use dropout")

    def run(h0, xs, mask):
        a, b = cell.project(params, xs, dtype)
        if mask is not None:
            a = jnp.where(mask[..., None], a, 1.0)
            b = jnp.where(mask[..., None], b, 0.0)
        b = b.at[0].add(a[0] * h0)

        def combine(earlier, later):  # compose h -> a h + b maps
            return earlier[0] * later[0], later[0] * earlier[1] + later[1]

        _, hs = jax.lax.associative_scan(combine, (a, b), axis=0)
        hs = hs.astype(h0.dtype)
        ys = hs if mask is None else jnp.where(mask[..., None], hs, 0.0)
        return hs[-1], ys

    return run


def chunked(run: Run, chunk: int) -> Run:
    """`run` over chunks of `chunk` steps, each under `jax.checkpoint`."""

    def run_chunked(carry, xs, mask):
        T, B = xs.shape[:2]
        n = -(-T // chunk)
        pad = n * chunk - T
        if mask is None:
            mask = jnp.ones((T, B), bool)
        xs = jnp.pad(xs, ((0, pad), (0, 0), (0, 0)))
        mask = jnp.pad(mask, ((0, pad), (0, 0)))  # padded steps hold the carry
        xs = xs.reshape(n, chunk, *xs.shape[1:])
        mask = mask.reshape(n, chunk, B)

        @jax.checkpoint
        def one_chunk(carry, inp):
            return run(carry, *inp)

        carry, ys = jax.lax.scan(one_chunk, carry, (xs, mask))
        ys = ys.reshape(n * chunk, *ys.shape[2:])[:T]
        return carry, ys

    return run_chunked


def remat_chunk(remat, T: int) -> int | None:
    """Chunk length for `remat` (False/None: no remat; True: ceil(sqrt(T)); int: itself)."""
    if remat is None or remat is False:
        return None
    if remat is True:
        return max(1, math.isqrt(T - 1) + 1 if T > 1 else 1)
    if isinstance(remat, int) and remat > 0:
        return remat
    raise ValueError(f"remat must be a bool or a positive int, got {remat!r}")


def hold_outputs(ys, mask, y0):
    """ys [T, B, H], zero where mask [T, B] is False -> there, the last output
    before (y0 [B, H] before the first valid step): Keras's
    zero_output_for_mask=False, since a masked step holds the carry."""
    t = jnp.arange(ys.shape[0])[:, None]
    last = jax.lax.cummax(jnp.where(mask, t, -1), axis=0)
    held = jnp.take_along_axis(ys, jnp.maximum(last, 0)[..., None], axis=0)
    return jnp.where((last >= 0)[..., None], held, y0[None].astype(ys.dtype))


def drive(run: Run, xs, carry0, *, time_major=False, reverse=False, seq_lengths=None,
          mask=None, zero_output_for_mask=True, y0=None, remat=False):
    """Masks, reverse and remat around a time-major `run`.

    xs [batch, time, features] (or time-major) -> (carry, hs) in xs's layout.
    `seq_lengths` [batch] and `mask` ([batch, time], or [time, batch] if
    time_major) combine: a step runs where both allow it (a length past T
    counts as T, a negative one as 0: safe for traced lengths). Reverse flips each
    valid prefix (with seq_lengths) or the whole time axis, the mask with it.
    zero_output_for_mask=False puts the last output (y0 before any) at masked steps.
    """
    xs = jnp.asarray(xs)
    if not time_major:
        xs = jnp.swapaxes(xs, 0, 1)
    T, B = xs.shape[:2]
    valid = None
    if seq_lengths is not None:
        seq_lengths = jnp.asarray(seq_lengths)
        if seq_lengths.shape != (B,):
            raise ValueError(f"seq_lengths must be [batch]=({B},), got shape {seq_lengths.shape}")
        valid = jnp.arange(T)[:, None] < seq_lengths[None, :]
    if mask is not None:
        mask = jnp.asarray(mask, bool)
        mask = mask if time_major else mask.T
        if mask.shape != (T, B):
            want = (T, B) if time_major else (B, T)
            raise ValueError(f"mask must be [batch, time]={want}, got shape {jnp.shape(mask)}")
        valid = mask if valid is None else valid & mask
    if reverse:
        xs, valid = time_reverse((xs, valid), seq_lengths)
    chunk = remat_chunk(remat, T)
    carry, ys = (run if chunk is None else chunked(run, chunk))(carry0, xs, valid)
    if valid is not None and not zero_output_for_mask:
        ys = hold_outputs(ys, valid, jnp.zeros(ys.shape[1:], ys.dtype) if y0 is None else y0)
    if reverse:
        ys = time_reverse(ys, seq_lengths)
    return carry, (ys if time_major else jnp.swapaxes(ys, 0, 1))


class Layout(NamedTuple):
    """Where time, batch and features sit in xs: [*batch, T, I] (or
    [T, *batch, I] if time_major); batch_shape () for an unbatched [T, I]."""

    batch_shape: tuple
    time_major: bool

    @staticmethod
    def of(xs, time_major: bool) -> Layout:
        if jnp.ndim(xs) < 2:
            raise ValueError(f"xs must be [..., time, features], got shape {jnp.shape(xs)}")
        shape = jnp.shape(xs)
        return Layout(tuple(shape[1:-1] if time_major else shape[:-2]), time_major)

    @property
    def batch(self) -> int:
        return math.prod(self.batch_shape)

    def flat_seq(self, a):
        """[*batch, T, ...] (or [T, *batch, ...]) -> [B, T, ...] (or [T, B, ...])."""
        a = jnp.asarray(a)
        if self.time_major:
            return a.reshape(a.shape[0], self.batch, *a.shape[1 + len(self.batch_shape):])
        return a.reshape(self.batch, *a.shape[len(self.batch_shape):])

    def unflat_seq(self, a):
        if self.time_major:
            return a.reshape(a.shape[0], *self.batch_shape, *a.shape[2:])
        return a.reshape(*self.batch_shape, *a.shape[1:])

    def flat(self, tree, what: str, trailing: tuple = ()):
        """Leaves [*batch, *trailing] -> [B, *trailing]; any other shape raises one line."""

        def one(a):
            a = jnp.asarray(a)
            if a.shape != (*self.batch_shape, *trailing):
                want = "[" + ", ".join(map(str, (*self.batch_shape, *trailing))) + "]"
                raise ValueError(f"{what} must have shape {want} (batch shape then "
                                 f"{list(trailing) or 'nothing'}), got {list(a.shape)}")
            return a.reshape(self.batch, *trailing)

        return jax.tree_util.tree_map(one, tree)

    def unflat(self, tree):
        return jax.tree_util.tree_map(lambda a: a.reshape(*self.batch_shape, *a.shape[1:]), tree)


def dropout_masks(rng, batch: int, input_size: int, hidden_size: int, dropout: float,
                  recurrent_dropout: float):
    """Per-sequence dropout masks, scaled by 1 / keep (inverted dropout):
    (input mask [B, I] or None, recurrent mask [B, H] or None). The same
    mask serves every time step (variational dropout, Gal & Ghahramani 2016)."""
    k_in, k_rec = jax.random.split(rng)

    def keep(key, shape, rate):
        if not rate:
            return None
        return jax.random.bernoulli(key, 1.0 - rate, shape) / (1.0 - rate)

    return (keep(k_in, (batch, input_size), dropout),
            keep(k_rec, (batch, hidden_size), recurrent_dropout))
