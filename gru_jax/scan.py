"""`scan(cell, params, xs, carry0)`: any cell over a sequence, by one of several
implementations (`Impl`), with masks, reverse, remat, dropout and any batch shape.

Implementations (`impl=`; `resolve_impl` turns "auto" into one per backend,
as recurrentgemma's `resolve_scan_type` does):

    reference    the cell's step under `lax.scan`, reverse mode by JAX autodiff;
                 every cell, every option
    fused        the GRU and the LSTM with a hand-written backward
                 (`gru_jax.fused`; the GRU with a plan per backend); the GRU's
                 reset_after params, real inputs, no recurrent_dropout,
                 reverse mode only
    associative  minGRU's linear recurrence by `lax.associative_scan`
                 (O(log T) depth); minGRU only
    auto         fused where it applies, else reference; also reference under
                 forward-mode autodiff (jax.jvp, jax.jacfwd), which the fused
                 GRU's custom_vjp cannot take

`gru_scan`, `lstm_scan`, `rnn_scan`, `mingru_scan` are `scan` with the cell
fixed. The loops themselves are in `gru_jax.loop`. (`gru_jax.scan` is the
function; import this module's other names with ``from gru_jax.scan import ...``.)
"""

from __future__ import annotations

import enum
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gru_jax.cells import GRU, LSTM, MINGRU, RNN, Cell, get_cell, gru_variant
from gru_jax.cells.base import carry_dtype as default_carry_dtype
from gru_jax.cells.base import check_params, check_state, is_complex, shape_str, state_dtype
from gru_jax.loop import (
    Layout,
    Run,
    associative_run,
    drive,
    dropout_masks,
    reference_run,
    remat_chunk,
)


def _fused_run(cell: Cell, params, *, dtype=None, unroll: int = 1, rec_mask=None) -> Run:
    from gru_jax.fused import fused_lstm_run, fused_run  # the kernels load only when used

    del rec_mask  # resolve_impl has checked it
    if cell is LSTM:
        return fused_lstm_run(params, dtype=dtype)
    return fused_run(params, dtype=dtype, unroll=unroll)


class Impl(enum.Enum):
    """How `scan` runs the time loop (see the module docstring)."""

    AUTO = "auto"
    REFERENCE = "reference"
    FUSED = "fused"
    ASSOCIATIVE = "associative"


class Needs(NamedTuple):
    """What a call asks of an implementation beyond the cell and its params."""

    complex: bool = False  # complex inputs or carry
    recurrent_dropout: bool = False


def _fused_why_not(cell: Cell, params, needs: Needs) -> str | None:
    if cell is not LSTM and (cell is not GRU or gru_variant(params) != "reset_after"):
        return ("impl='fused' runs the LSTM and the GRU with reset_after params only; "
                "use impl='reference'")
    if needs.complex:
        return "impl='fused' takes real inputs only (its backward is not holomorphic); " \
               "use impl='reference'"
    if needs.recurrent_dropout:
        return "impl='fused' has no recurrent_dropout; use impl='reference'"
    return None


# Impl -> (make_run(cell, params, *, dtype, unroll, rec_mask) -> Run,
#          why_not(cell, params, needs) -> None if it applies, else one line saying why not)
_IMPLS = {
    Impl.REFERENCE: (reference_run, lambda cell, params, needs: None),
    Impl.FUSED: (_fused_run, _fused_why_not),
    Impl.ASSOCIATIVE: (associative_run, lambda cell, params, needs: (
        None if cell is MINGRU
        else "impl='associative' runs minGRU only (a recurrence linear in h)")),
}

# What "auto" tries, in order, per backend. minGRU's associative scan is not
# among them: on CPU its training step takes 1.35x / 1.74x the sequential
# loop's time (B, T, I, H = 64, 256, 8, 128 / 32, 1000, 2, 128; measured
# interleaved), and on GPU/TPU it has not been measured here yet.
AUTO_ORDER = {"cpu": (Impl.FUSED, Impl.REFERENCE)}
_AUTO_DEFAULT = (Impl.FUSED, Impl.REFERENCE)


def resolve_impl(impl: Impl | str, cell: Cell, params, backend: str | None = None,
                 needs: Needs | None = None) -> Impl:
    """`impl` as a concrete Impl for `cell`, `params` and `needs` on `backend`
    (default: jax.default_backend()); "auto" picks the first of AUTO_ORDER that
    applies. An explicit impl that does not apply raises one line."""
    try:
        impl = Impl(impl)
    except ValueError:
        names = ", ".join(repr(i.value) for i in Impl)
        raise ValueError(f"impl must be one of {names}, got {impl!r}") from None
    needs = needs or Needs()
    if impl is Impl.AUTO:
        order = AUTO_ORDER.get(backend or jax.default_backend(), _AUTO_DEFAULT)
        return next(i for i in order if _IMPLS[i][1](cell, params, needs) is None)
    why_not = _IMPLS[impl][1](cell, params, needs)
    if why_not is not None:
        raise ValueError(why_not)
    return impl


def _check_xs(cell: Cell, params, xs):
    xs = jnp.asarray(xs)
    if not (jnp.issubdtype(xs.dtype, jnp.number)):
        raise TypeError(f"xs must be a float, complex or int array, got {xs.dtype}")
    want = cell.input_size(params) if cell.input_size is not None else xs.shape[-1]
    if xs.ndim >= 1 and xs.shape[-1] != want:
        raise ValueError(f"xs has {xs.shape[-1]} features (last axis of shape "
                         f"{list(xs.shape)}); these {cell.name} params take {want}")
    return xs


def _check_options(time_major, reverse, zero_output_for_mask, unroll) -> None:
    for name, v in (("time_major", time_major), ("reverse", reverse),
                    ("zero_output_for_mask", zero_output_for_mask)):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {v!r}")
    try:
        ok = isinstance(unroll, (bool, np.bool_)) or operator.index(unroll) >= 1
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"unroll must be a positive int (or a bool, as lax.scan's), "
                         f"got {unroll!r}")


def _initial_carry(cell: Cell, params, carry0, layout: Layout, xs, carry_dtype):
    """carry0 (or zeros) flattened to [B, ...], in carry_dtype; the default dtype
    is float32 (float64 for float64 params), complex for complex inputs or params
    (a given real carry0 too: a real state would drop the imaginary part)."""
    zeros = cell.zero_carry(params, (1,))
    if carry_dtype is not None:
        carry_dtype = jnp.dtype(carry_dtype)
        if not jnp.issubdtype(carry_dtype, jnp.inexact):
            raise TypeError(f"carry_dtype must be a float or complex dtype, got {carry_dtype}")
        if not jnp.issubdtype(carry_dtype, jnp.complexfloating) and is_complex(xs, params):
            raise TypeError(f"carry_dtype={carry_dtype} is real but the inputs or params are "
                            "complex; pass a complex carry_dtype (or None)")
    if carry0 is None:
        dt = carry_dtype or state_dtype(default_carry_dtype(params), xs, params)
        return jax.tree_util.tree_map(
            lambda z: jnp.zeros((layout.batch, *z.shape[1:]), dt), zeros)
    trailing = [z.shape[1:] for z in jax.tree_util.tree_leaves(zeros)]
    leaves, _ = jax.tree_util.tree_flatten(carry0)
    tree = jax.tree_util.tree_structure(zeros)
    if len(leaves) != len(trailing) or (len(trailing) > 1 and not isinstance(
            carry0, (tuple, list))):
        want = "one array" if len(trailing) == 1 else f"a tuple of {len(trailing)} arrays"
        raise ValueError(f"carry0 of the {cell.name} must be {want}, each "
                         f"[*batch, hidden], got {type(carry0).__name__} with {len(leaves)} "
                         "array(s)")
    flat = []
    for c, t in zip(leaves, trailing, strict=True):
        c = layout.flat(c, "carry0", t)
        if carry_dtype is None:
            check_state("carry0", c, c.shape)  # its dtype: float or complex
        flat.append(c.astype(carry_dtype or state_dtype(c.dtype, xs, params)))
    return tree.unflatten(flat)  # the cell's own structure (a list (c, h) as a tuple)


def _concrete(a):
    """`a` as a numpy array, or None when it is traced (inside jit, vmap, grad)."""
    try:
        return np.asarray(a)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def check_lengths(seq_lengths, T: int):
    """seq_lengths must be integers; when they are concrete (numpy, lists,
    concrete jax arrays) each must lie in [0, T], else one ValueError naming
    the first that does not. Traced lengths are not known until run time:
    the time loop clamps them to [0, T] (`gru_jax.loop.time_reverse`), so
    out-of-range values never gather outside the sequence. Returns them as an array."""
    if not isinstance(seq_lengths, (jax.Array, np.ndarray)):  # a list, a tuple, an int
        seq_lengths = np.asarray(seq_lengths)
    dt = jnp.result_type(seq_lengths)
    if not jnp.issubdtype(dt, jnp.integer) or dt == jnp.bool_:
        raise TypeError(f"seq_lengths must be integers, got dtype {dt}")
    values = _concrete(seq_lengths)
    if values is not None and values.size:
        bad = np.flatnonzero((values.ravel() < 0) | (values.ravel() > T))
        if bad.size:
            i = np.unravel_index(bad[0], values.shape)
            at = ", ".join(map(str, i))
            raise ValueError(f"seq_lengths must lie in [0, {T}] (the number of time steps), "
                             f"got {values[i]} at [{at}]")
    return seq_lengths


def _per_sequence(layout: Layout, T: int, seq_lengths, mask):
    """seq_lengths [*batch] -> [B]; mask [*batch, T] ([T, *batch] if time_major) -> [B, T]
    ([T, B]); each checked, one line if it does not fit."""
    if seq_lengths is not None:
        seq_lengths = check_lengths(seq_lengths, T)
        seq_lengths = layout.flat(seq_lengths, "seq_lengths")
    if mask is not None:
        mask = jnp.asarray(mask)
        want = (T, *layout.batch_shape) if layout.time_major else (*layout.batch_shape, T)
        if mask.shape != want:
            raise ValueError(f"mask must have shape {shape_str(want)} (as xs without features), "
                             f"got {shape_str(mask.shape)}")
        if not (mask.dtype == jnp.bool_ or jnp.issubdtype(mask.dtype, jnp.integer)):
            raise TypeError(f"mask must be bool (True: run the step), got dtype {mask.dtype}")
        mask = layout.flat_seq(mask)
    return seq_lengths, mask


def _dropout(cell, xs_flat, layout, carry, *, dropout, recurrent_dropout,
             deterministic, rng):
    """-> (xs with the input mask applied, recurrent mask [B, H] or None)."""
    for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
    if deterministic or not (dropout or recurrent_dropout):
        return xs_flat, None
    if rng is None:
        raise ValueError("dropout needs rng=a jax.random key (or deterministic=True)")
    hidden = cell.hidden_of(carry).shape[-1]
    in_mask, rec_mask = dropout_masks(rng, layout.batch, xs_flat.shape[-1], hidden,
                                      dropout, recurrent_dropout)
    if in_mask is not None:  # the same mask at every step: [B, I] on [B, T, I] or [T, B, I]
        m = in_mask[None] if layout.time_major else in_mask[:, None]
        xs_flat = (xs_flat * m).astype(xs_flat.dtype)
    return xs_flat, rec_mask


def scan(cell: Cell | str, params, xs, carry0=None, *, time_major=False, reverse=False,
         seq_lengths=None, mask=None, zero_output_for_mask=True, unroll=1, remat=False,
         dtype=None, carry_dtype=None, dropout=0.0, recurrent_dropout=0.0,
         deterministic=False, rng=None, impl: Impl | str = "auto"):
    """Run `cell` (a Cell or its name: gru | lstm | rnn | mingru) over a sequence.

    Args:
      params: from the cell's init (e.g. `init_gru`).
      xs: [*batch, time, input] (any number of batch axes, none for one
        sequence [time, input]); [time, *batch, input] if `time_major`.
      carry0: the initial carry (default zeros): [*batch, hidden], or the
        pair (c, h) for the LSTM.
      reverse: run back to front (over each valid prefix with `seq_lengths`);
        the outputs stay aligned with xs.
      seq_lengths: [*batch] int, valid length of each sequence, 0 <= length
        <= time: the carry returned is the state after the last valid step,
        hs is zero past it (with zero_output_for_mask=False it holds the last
        output there, as at masked steps). Concrete lengths (numpy, lists, jax arrays
        outside jit) outside that range raise; traced ones (inside jit,
        where the values are unknown) are clamped to [0, time].
      mask: [*batch, time] bool ([time, *batch] if time_major), Keras's mask:
        where False the step is skipped (the carry is held); holes allowed.
      zero_output_for_mask: outputs at masked steps are zero (True), or the
        last output before them (False: Keras's RNN default; the initial
        carry's hidden part before any valid step).
      unroll: time steps per loop iteration (`lax.scan`'s unroll).
      remat: False, True (chunks of ~sqrt(T) under `jax.checkpoint`) or a chunk length.
      dtype: compute dtype of the matrix products (e.g. jnp.bfloat16,
        float32 accumulation).
      carry_dtype: dtype of the state (default float32, float64 for float64
        params, complex64 for complex inputs; jnp.float16 / bfloat16 keep a
        low-precision state, as flax does for float16 params and inputs).
      dropout: rate of input dropout; recurrent_dropout: rate of dropout on
        the state where it enters the recurrent products (not the carry).
        One mask per sequence, the same at every step (variational dropout,
        Gal & Ghahramani 2016; Keras's semantics, one mask for all gates),
        scaled by 1 / (1 - rate). Need `rng` unless `deterministic`.
      deterministic: no dropout (evaluation).
      rng: a `jax.random` key for the dropout masks.
      impl: an `Impl` or its name (module docstring). "auto" resolves per
        backend (`resolve_impl`): the fused GRU for reset_after params, real
        inputs and no recurrent_dropout (masks, dropout and carry_dtype it
        runs itself), else the reference scan; under jax.jvp / jax.jacfwd
        the reference scan as well.

    Returns:
      (carry, hs [*batch, time, hidden]) in xs's layout. A sequence of
      length 0 returns carry0 (zeros by default) and an empty hs.

    Raises:
      ValueError / TypeError, one line naming the argument, what it got and
      what it must be: params that are not `cell`'s, xs without [time,
      features] or with the wrong feature size, a carry0, seq_lengths or
      mask whose shape is not xs's batch shape (no broadcasting), integer
      carries, float lengths or masks, a real carry_dtype with complex
      inputs, an impl that does not apply. The checks read shapes and dtypes
      (trace time, nothing in the compiled loop), and the values of concrete
      seq_lengths.
    """
    cell = get_cell(cell) if isinstance(cell, str) else cell
    check_params(cell, params)
    _check_options(time_major, reverse, zero_output_for_mask, unroll)
    xs = _check_xs(cell, params, xs)
    layout = Layout.of(xs, time_major)
    T = xs.shape[0 if time_major else -2]
    carry = _initial_carry(cell, params, carry0, layout, xs, carry_dtype)
    seq_lengths, mask = _per_sequence(layout, T, seq_lengths, mask)
    remat_chunk(remat, max(T, 1))  # checked here too: a length-0 sequence runs no loop
    xs_flat, rec_mask = _dropout(cell, layout.flat_seq(xs), layout, carry,
                                 dropout=dropout, recurrent_dropout=recurrent_dropout,
                                 deterministic=deterministic, rng=rng)
    needs = Needs(is_complex(xs, carry, params), rec_mask is not None)
    chosen = resolve_impl(impl, cell, params, needs=needs)
    if T == 0:
        hidden = cell.hidden_of(carry)
        hs = jnp.zeros((0, *hidden.shape) if time_major else (hidden.shape[0], 0, hidden.shape[1]),
                       hidden.dtype)
        return layout.unflat(carry), layout.unflat_seq(hs)

    def go(which):
        run = _IMPLS[which][0](cell, params, dtype=dtype, unroll=unroll, rec_mask=rec_mask)
        return drive(run, xs_flat, carry, time_major=time_major, reverse=reverse,
                     seq_lengths=seq_lengths, mask=mask, remat=remat,
                     zero_output_for_mask=zero_output_for_mask, y0=cell.hidden_of(carry))

    try:
        carry, hs = go(chosen)
    except TypeError as e:  # forward-mode autodiff reached the fused custom_vjp
        if chosen is not Impl.FUSED or "forward-mode" not in str(e):
            raise
        if Impl(impl) is not Impl.AUTO:
            raise ValueError("impl='fused' has a reverse-mode derivative only; for jax.jvp, "
                             "jax.jacfwd or jax.linearize pass impl='auto' or 'reference'"
                             ) from None
        carry, hs = go(Impl.REFERENCE)
    return layout.unflat(carry), layout.unflat_seq(hs)


def gru_scan(params, xs, h0=None, **options):
    """Run a GRU (params from `init_gru`, either variant):
    xs [batch, time, input] -> (h_last [batch, hidden], hs [batch, time, hidden]).

    `options` as `scan`'s (time_major, reverse, seq_lengths, mask,
    zero_output_for_mask, unroll, remat, dtype, carry_dtype, dropout,
    recurrent_dropout, deterministic, rng, impl). impl="auto" runs the fused
    GRU (hand-written backward) for reset_after params and the reference scan
    for reset_before, complex inputs, recurrent_dropout and forward-mode autodiff.
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
    instead of the sequential loop. minGRU has no recurrent product, so no
    recurrent_dropout.
    """
    return scan(MINGRU, params, xs, h0, **options)

