"""Flax linen wrappers over the pure cells and scans (the nnx ones: `gru_jax.nnx`).

Each module holds one param entry named after the cell (``{"params": {"gru":
...}}``) whose value is what the pure functions take: one cell's flat dict
(`init_gru`'s) for a single unidirectional layer, `init_stacked`'s list of
layers with ``num_layers > 1`` or ``bidirectional=True``. So a module's params
go straight to `gru_scan` / `stacked_scan`, `gru_jax.interop`, or back.

    GRU        xs [batch, time, input] -> (h_last [batch, hidden], hs [batch, time, hidden])
    Recurrent  the same for any cell by name (gru | lstm | rnn | mingru)
    GRUCell    one step, (carry, x) -> (carry, y), for `flax.linen.RNN`

Stacked layers return the carry as torch's h_n, [layers * directions, batch,
hidden], and outputs [batch, time, D * hidden] (merge_mode "concat") or
[batch, time, hidden]. Flax's names work too: ``features=`` for
``hidden_size``, ``kernel_init``, ``recurrent_kernel_init``, ``bias_init``
(`init_cell`), ``carry_init`` on the cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gru_jax.cells import CHRONO_CELLS as _CHRONO_CELLS
from gru_jax.cells import GRU as _GRU_CELL
from gru_jax.cells import gru_step
from gru_jax.cells.base import check_step
from gru_jax.stacked import (
    carry_dtype_of,
    check_layer_input,
    gru_cell_with,
    init_cell,
    init_layer,
    layer_scan,
)

Initializer = Callable[..., jax.Array]


def hidden_of(module) -> int:
    """`hidden_size`, or flax's name for it, `features` (one of them, or both equal)."""
    h, f = module.hidden_size, module.features
    if h is None and f is None:
        raise ValueError(f"{type(module).__name__} needs hidden_size (or flax's features)")
    if h is not None and f is not None and h != f:
        raise ValueError(f"{type(module).__name__}: hidden_size={h} and features={f} differ; "
                         "pass one of them")
    return h if h is not None else f


def init_options(module, cell: str) -> dict:
    """The init keyword arguments a layer or cell module's attributes set."""
    kw = dict(input_init=module.input_init, param_dtype=module.param_dtype,
              kernel_init=module.kernel_init, recurrent_kernel_init=module.recurrent_kernel_init,
              bias_init=module.bias_init)
    if module.chrono_t_max is not None:
        if cell not in _CHRONO_CELLS:
            raise ValueError(f"chrono_t_max applies to {_CHRONO_CELLS} only, not cell={cell!r}")
        kw["chrono_t_max"] = module.chrono_t_max
    if cell == "gru":
        kw["variant"] = getattr(module, "variant", "reset_after")
    return kw


class _Layer(nn.Module):
    """What GRU and Recurrent share: init options, stacking, dropout, scan options."""

    hidden_size: int | None = None
    chrono_t_max: float | None = None
    input_init: str = "lecun_normal"
    kernel_init: Initializer | None = None
    recurrent_kernel_init: Initializer | None = None
    bias_init: Initializer | None = None
    num_layers: int = 1
    bidirectional: bool = False
    merge_mode: str = "concat"
    dropout: float = 0.0
    input_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    deterministic: bool | None = None
    time_major: bool = False
    zero_output_for_mask: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    carry_dtype: Any = None
    remat: bool | int = False
    unroll: int = 1
    impl: str = "auto"
    features: int | None = None

    def _run(self, name: str, cell, xs, carry0, seq_lengths, mask, reverse, deterministic):
        if self.has_variable("params", name):  # ours before flax's multi-line shape error
            check_layer_input(cell, self.get_variable("params", name), xs, self.merge_mode)
        params = self.param(name, lambda key: init_layer(
            cell, key, xs.shape[-1], hidden_of(self), num_layers=self.num_layers,
            bidirectional=self.bidirectional, merge_mode=self.merge_mode,
            **init_options(self, name)))
        drop = (self.dropout > 0 and self.num_layers > 1) or self.input_dropout > 0 \
            or self.recurrent_dropout > 0
        deterministic = nn.merge_param("deterministic", self.deterministic,
                                       deterministic) if drop else True
        rng = None if deterministic else self.make_rng("dropout")
        return layer_scan(cell, params, xs, carry0, reverse=reverse, merge_mode=self.merge_mode,
                          dropout=self.dropout, input_dropout=self.input_dropout,
                          recurrent_dropout=self.recurrent_dropout, deterministic=deterministic,
                          rng=rng, seq_lengths=seq_lengths, mask=mask,
                          zero_output_for_mask=self.zero_output_for_mask,
                          time_major=self.time_major, carry_dtype=self.carry_dtype,
                          unroll=self.unroll, remat=self.remat, dtype=self.dtype,
                          impl=self.impl)


class GRU(_Layer):
    """GRU layer(s) over `gru_jax.scan` / `stacked_scan`: xs [*batch, time, input]
    ([time, *batch, input] if `time_major`) -> (carry, outputs).

    Attributes mirror `init_gru` (variant, chrono_t_max, input_init,
    param_dtype; flax's kernel_init, recurrent_kernel_init, bias_init), the
    stack (num_layers, bidirectional, merge_mode; torch's `dropout` between
    layers), Keras's per-layer `input_dropout` (its ``dropout``) and
    `recurrent_dropout` (all drawing the ``"dropout"`` rng unless
    deterministic), and the scan (time_major, zero_output_for_mask for
    `mask`, carry_dtype, dtype: compute dtype of the matrix products, remat,
    unroll, impl). flax's `gate_fn` / `activation_fn` replace sigmoid / tanh;
    any other than those runs the reference scan (the fused backward is
    written for sigmoid and tanh).
    """

    variant: str = "reset_after"
    gate_fn: Callable = jax.nn.sigmoid
    activation_fn: Callable = jnp.tanh

    @nn.compact
    def __call__(self, xs, h0=None, seq_lengths=None, reverse=False, deterministic=None,
                 mask=None):
        """xs [*batch, time, input], h0 [*batch, hidden] ([layers * directions,
        *batch, hidden] when stacked) or None, seq_lengths [*batch], mask
        [*batch, time] bool (Keras's: False steps hold the carry) -> (carry, outputs)."""
        cell = gru_cell_with(self.gate_fn, self.activation_fn)
        return self._run("gru", cell, xs, h0, seq_lengths, mask, reverse, deterministic)


class Recurrent(_Layer):
    """Any cell by name over its scan: xs [*batch, time, input] -> (carry, hs).

    The carry is [*batch, hidden], or the pair (c, h) for the LSTM (each
    [layers * directions, *batch, hidden] when stacked). Options as `GRU`'s;
    the GRU's variant and activations take their defaults here (use `GRU`).
    """

    cell: str = "gru"

    @nn.compact
    def __call__(self, xs, carry0=None, seq_lengths=None, reverse=False, deterministic=None,
                 mask=None):
        """xs [*batch, time, input] -> (carry, hs [*batch, time, hidden])."""
        return self._run(self.cell, self.cell, xs, carry0, seq_lengths, mask, reverse,
                         deterministic)


class GRUCell(nn.RNNCellBase):
    """One GRU step for `flax.linen.RNN` (or your own loop):
    (h [..., hidden], x [..., input]) -> (h', h'), both [..., hidden].

    A drop-in for ``flax.linen.GRUCell(features=...)``: flax's `features`,
    `kernel_init`, `recurrent_kernel_init`, `bias_init` and `carry_init` are
    accepted, and `gate_fn` / `activation_fn` (default sigmoid / tanh);
    `gru_jax.interop.from_flax_gru_cell` maps flax's params to ours.
    Same params as `GRU` (one entry ``gru``), so either module's params run in
    the other. Under `nn.RNN` the input products run inside each step; `GRU`
    hoists them out of the loop and is the faster choice for whole sequences.
    """

    hidden_size: int | None = None
    variant: str = "reset_after"
    chrono_t_max: float | None = None
    input_init: str = "lecun_normal"
    kernel_init: Initializer | None = None
    recurrent_kernel_init: Initializer | None = None
    bias_init: Initializer | None = None
    carry_init: Initializer = nn.initializers.zeros_init()
    gate_fn: Callable = jax.nn.sigmoid
    activation_fn: Callable = jnp.tanh
    dtype: Any = None
    param_dtype: Any = jnp.float32
    carry_dtype: Any = None
    features: int | None = None

    @nn.compact
    def __call__(self, carry, x):
        """carry [*batch, hidden], x [*batch, input] (the same batch shape) -> (h', h');
        h' complex when x is (flax's GRUCell too)."""
        if jnp.ndim(x) < 1:
            raise ValueError(f"GRUCell: x must be [*batch, input], got shape {list(jnp.shape(x))}")
        if self.has_variable("params", "gru"):  # ours before flax's multi-line shape error
            check_step("GRUCell", _GRU_CELL, self.get_variable("params", "gru"), carry, x,
                       "carry")
        params = self.param("gru", lambda key: init_cell(
            "gru", key, x.shape[-1], hidden_of(self), **init_options(self, "gru")))
        check_step("GRUCell", _GRU_CELL, params, carry, x, "carry")
        h = gru_step(params, carry, x, dtype=self.dtype, gate_fn=self.gate_fn,
                     activation_fn=self.activation_fn)
        return h, h

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]):
        """`carry_init(rng, [*batch, hidden], dtype)` for inputs [*batch, input]
        (zeros by default). The step keeps the carry's dtype: `carry_dtype`, by
        default float32 or wider (the scans' carry); jnp.float16 or bfloat16
        gives flax's low-precision state (gates still computed in float32)."""
        return self.carry_init(rng, (*input_shape[:-1], hidden_of(self)),
                               carry_dtype_of(self.param_dtype, self.carry_dtype))

    @property
    def num_feature_axes(self) -> int:
        return 1


__all__ = ["GRU", "GRUCell", "Recurrent"]
