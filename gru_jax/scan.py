"""The time loop: `scan(cell, params, xs, carry0)` runs any cell over a sequence,
with masks, reverse and remat, by one of several implementations (`Impl`).

Implementations (`impl=`; `resolve_impl` turns "auto" into one per backend,
as recurrentgemma's `resolve_scan_type` does):

    reference    the cell's step under `lax.scan`, reverse mode by JAX autodiff;
                 every cell, every option
    fused        the GRU with a hand-written backward (`gru_jax.fused`; a plan
                 per backend); reset_after params only
    associative  minGRU's linear recurrence by `lax.associative_scan`
                 (O(log T) depth); minGRU only
    auto         fused where it applies, else reference

`gru_scan`, `lstm_scan`, `rnn_scan`, `mingru_scan` are `scan` with the cell
fixed. (`gru_jax.scan` is the function; import this module's helpers with
``from gru_jax.scan import ...``.)

Shapes: ``xs`` is [batch, time, features] (or [time, batch, features] with
``time_major=True``); outputs ``hs`` have the same layout with ``hidden``
features. ``seq_lengths`` [batch] marks each sequence's valid prefix: the
returned carry is the state after the last valid step, ``hs`` is zero past
it, and ``reverse=True`` runs over the valid part only, back to front (as
``torch.nn.utils.rnn.pack_padded_sequence`` and flax ``RNN`` do).

``remat`` trades compute for memory on long sequences: the time axis is cut
into chunks (``remat=True``: about sqrt(T) steps; an int: that many), each
chunk runs under ``jax.checkpoint``, so the backward pass stores only the
carries at chunk boundaries plus one chunk's activations at a time. The
input projection then happens per chunk too, so no [time, batch, 3*hidden]
tensor is ever materialised.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from gru_jax.cells import GRU, LSTM, MINGRU, RNN, Cell, get_cell, gru_variant

# run(carry, xs [T, B, I], mask [T, B] bool or None) -> (carry, ys [T, B, H])
Run = Callable


def time_reverse(xs, seq_lengths=None):
    """Reverse the time axis (axis 0) of every leaf; with `seq_lengths` [batch],
    reverse only each sequence's valid prefix and leave the padding in place.
    Its own inverse."""
    if seq_lengths is None:
        return jax.tree_util.tree_map(lambda x: x[::-1], xs)

    def rev(x):
        t = jnp.arange(x.shape[0])[:, None]
        idx = jnp.where(t < seq_lengths[None, :], seq_lengths[None, :] - 1 - t, t)
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


def reference_run(cell: Cell, params, *, dtype=None, unroll: int = 1) -> Run:
    """The plain formulation: input projection hoisted out of the loop, the
    cell's step under `lax.scan`, reverse-mode by JAX autodiff."""

    def step(carry, xp_t):
        return cell.step(params, carry, xp_t, dtype)

    body = masked_body(step)

    def run(carry, xs, mask):
        xp = cell.project(params, xs, dtype)
        return jax.lax.scan(body, carry, (xp, mask), unroll=unroll)

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


def drive(run: Run, xs, carry0, *, time_major=False, reverse=False, seq_lengths=None, remat=False):
    """Layout, masks, reverse and remat around a time-major `run`.

    xs [batch, time, features] (or time-major) -> (carry, hs) in xs's layout.
    """
    xs = jnp.asarray(xs)
    if xs.ndim != 3:
        layout = "[time, batch, features]" if time_major else "[batch, time, features]"
        raise ValueError(f"xs must be {layout}, got shape {xs.shape}")
    if not time_major:
        xs = jnp.swapaxes(xs, 0, 1)
    T, B = xs.shape[:2]
    mask = None
    if seq_lengths is not None:
        seq_lengths = jnp.asarray(seq_lengths)
        if seq_lengths.shape != (B,):
            raise ValueError(f"seq_lengths must be [batch]=({B},), got shape {seq_lengths.shape}")
        mask = jnp.arange(T)[:, None] < seq_lengths[None, :]
    if reverse:
        xs = time_reverse(xs, seq_lengths)
    chunk = remat_chunk(remat, T)
    if chunk is not None:
        run = chunked(run, chunk)
    carry, ys = run(carry0, xs, mask)
    if reverse:
        ys = time_reverse(ys, seq_lengths)
    if not time_major:
        ys = jnp.swapaxes(ys, 0, 1)
    return carry, ys


def associative_run(cell: Cell, params, *, dtype=None, unroll: int = 1) -> Run:
    """minGRU's h_t = a_t h_{t-1} + b_t by `jax.lax.associative_scan` over time
    (`cell.project` gives (a, b)); masked steps get a = 1, b = 0 (hold)."""
    del unroll  # no sequential loop to unroll

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


def _fused_run(cell: Cell, params, *, dtype=None, unroll: int = 1) -> Run:
    from gru_jax.fused import fused_run  # the kernels load only when used

    del cell
    return fused_run(params, dtype=dtype, unroll=unroll)


class Impl(enum.Enum):
    """How `scan` runs the time loop (see the module docstring)."""

    AUTO = "auto"
    REFERENCE = "reference"
    FUSED = "fused"
    ASSOCIATIVE = "associative"


# Impl -> (make_run(cell, params, *, dtype, unroll) -> Run, why_not(cell, params) -> str | None)
_IMPLS = {
    Impl.REFERENCE: (reference_run, lambda cell, params: None),
    Impl.FUSED: (_fused_run, lambda cell, params: (
        None if cell is GRU and gru_variant(params) == "reset_after"
        else "impl='fused' runs the GRU with reset_after params only; use impl='reference'")),
    Impl.ASSOCIATIVE: (associative_run, lambda cell, params: (
        None if cell is MINGRU
        else "impl='associative' runs minGRU only (a recurrence linear in h)")),
}

# What "auto" tries, in order, per backend. minGRU's associative scan is not
# among them: on CPU it is slower than the sequential loop, and on GPU/TPU it
# has not been measured here yet.
AUTO_ORDER = {"cpu": (Impl.FUSED, Impl.REFERENCE)}
_AUTO_DEFAULT = (Impl.FUSED, Impl.REFERENCE)


def resolve_impl(impl: Impl | str, cell: Cell, params, backend: str | None = None) -> Impl:
    """`impl` as a concrete Impl for `cell` and `params` on `backend`
    (default: jax.default_backend()); "auto" picks the first of AUTO_ORDER that
    supports them. An explicit impl that does not apply raises one line."""
    try:
        impl = Impl(impl)
    except ValueError:
        names = ", ".join(repr(i.value) for i in Impl)
        raise ValueError(f"impl must be one of {names}, got {impl!r}") from None
    if impl is Impl.AUTO:
        order = AUTO_ORDER.get(backend or jax.default_backend(), _AUTO_DEFAULT)
        return next(i for i in order if _IMPLS[i][1](cell, params) is None)
    why_not = _IMPLS[impl][1](cell, params)
    if why_not is not None:
        raise ValueError(why_not)
    return impl


def _batch_of(xs, time_major):
    return jnp.shape(xs)[1 if time_major else 0]


def scan(
    cell: Cell | str,
    params,
    xs,
    carry0=None,
    *,
    time_major=False,
    reverse=False,
    seq_lengths=None,
    unroll=1,
    remat=False,
    dtype=None,
    impl: Impl | str = "auto",
):
    """Run `cell` (a Cell or its name: gru | lstm | rnn | mingru) over a sequence.

    Args:
      params: from the cell's init (e.g. `init_gru`).
      xs: [batch, time, input] ([time, batch, input] if `time_major`).
      carry0: the initial carry (default zeros): [batch, hidden], or the
        pair (c, h) for the LSTM.
      reverse: run back to front (over each valid prefix with `seq_lengths`).
      seq_lengths: [batch] int, valid length of each sequence: the carry
        returned is the state after the last valid step, hs is zero past it.
      unroll: time steps per loop iteration (`lax.scan`'s unroll).
      remat: False, True (chunks of ~sqrt(T) under `jax.checkpoint`) or a chunk length.
      dtype: compute dtype of the matrix products (e.g. jnp.bfloat16,
        float32 accumulation); the state and gate math stay float32.
      impl: an `Impl` or its name (module docstring); "auto" resolves per
        backend (`resolve_impl`): the fused GRU for reset_after params, else
        the reference scan.

    Returns:
      (carry, hs [batch, time, hidden]) in xs's layout.
    """
    cell = get_cell(cell) if isinstance(cell, str) else cell
    make_run = _IMPLS[resolve_impl(impl, cell, params)][0]
    if carry0 is None:
        carry0 = cell.zero_carry(params, (_batch_of(xs, time_major),))
    run = make_run(cell, params, dtype=dtype, unroll=unroll)
    return drive(run, xs, carry0, time_major=time_major, reverse=reverse,
                 seq_lengths=seq_lengths, remat=remat)


def gru_scan(params, xs, h0=None, **options):
    """Run a GRU (params from `init_gru`, either variant):
    xs [batch, time, input] -> (h_last [batch, hidden], hs [batch, time, hidden]).

    `options` as `scan`'s: time_major, reverse, seq_lengths, unroll, remat,
    dtype, impl ("auto": the fused GRU with its hand-written backward for
    reset_after params, the reference scan for reset_before).
    """
    return scan(GRU, params, xs, h0, **options)


def lstm_scan(params, xs, carry0=None, **options):
    """Run an LSTM: xs [batch, time, input] -> ((c, h) each [batch, hidden], hs).
    `options` as `scan`'s."""
    return scan(LSTM, params, xs, carry0, **options)


def rnn_scan(params, xs, h0=None, **options):
    """Run a tanh RNN: xs [batch, time, input] -> (h_last [batch, hidden], hs).
    `options` as `scan`'s."""
    return scan(RNN, params, xs, h0, **options)


def mingru_scan(params, xs, h0=None, **options):
    """Run a minGRU: xs [batch, time, input] -> (h_last [batch, hidden], hs).

    `options` as `scan`'s; impl="associative" solves the linear recurrence
    h_t = a_t h_{t-1} + b_t with `jax.lax.associative_scan` (O(log T) depth)
    instead of the sequential loop.
    """
    return scan(MINGRU, params, xs, h0, **options)

