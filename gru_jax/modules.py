"""Flax linen wrappers over the pure cells and scans (the nnx ones: `gru_jax.nnx`).

Each module holds one param entry, our flat params dict (named after the
cell: ``{"params": {"gru": {"w_ir": ..., ...}}}``), so the params of a
module can go straight to `gru_scan`, `gru_jax.interop`, or back.

    GRU        xs [batch, time, input] -> (h_last [batch, hidden], hs [batch, time, hidden])
    Recurrent  the same for any cell by name (gru | lstm | rnn | mingru)
    GRUCell    one step, (carry, x) -> (carry, y), for `flax.linen.RNN`
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gru_jax.cells import get_cell, gru_step, init_gru
from gru_jax.scan import SCANS, gru_scan

_CHRONO_CELLS = ("gru", "lstm")


def _init_kwargs(cell: str, chrono_t_max) -> dict:
    if chrono_t_max is None:
        return {}
    if cell not in _CHRONO_CELLS:
        raise ValueError(f"chrono_t_max applies to {_CHRONO_CELLS} only, not cell={cell!r}")
    return {"chrono_t_max": chrono_t_max}


class GRU(nn.Module):
    """A GRU layer over `gru_scan`: xs [batch, time, input] -> (h_last, hs).

    Attributes mirror `init_gru` (variant, chrono_t_max, input_init,
    param_dtype) and `gru_scan` (dtype: compute dtype of the matrix products,
    remat, unroll, impl).
    """

    hidden_size: int
    variant: str = "reset_after"
    chrono_t_max: float | None = None
    input_init: str = "lecun_normal"
    dtype: Any = None
    param_dtype: Any = jnp.float32
    remat: bool | int = False
    unroll: int = 1
    impl: str = "auto"

    @nn.compact
    def __call__(self, xs, h0=None, seq_lengths=None, reverse=False):
        """xs [batch, time, input], h0 [batch, hidden] or None, seq_lengths [batch]
        -> (h_last [batch, hidden], hs [batch, time, hidden])."""
        params = self.param("gru", lambda key: init_gru(
            key, xs.shape[-1], self.hidden_size, variant=self.variant,
            chrono_t_max=self.chrono_t_max, input_init=self.input_init,
            param_dtype=self.param_dtype))
        return gru_scan(params, xs, h0, seq_lengths=seq_lengths, reverse=reverse,
                        unroll=self.unroll, remat=self.remat, dtype=self.dtype, impl=self.impl)


class Recurrent(nn.Module):
    """Any cell by name over its scan: xs [batch, time, input] -> (carry, hs).

    The carry is [batch, hidden], or the pair (c, h) for the LSTM. Cell
    options beyond these (e.g. the GRU's variant) take their defaults; use
    `GRU` for those.
    """

    hidden_size: int
    cell: str = "gru"
    chrono_t_max: float | None = None
    input_init: str = "lecun_normal"
    dtype: Any = None
    param_dtype: Any = jnp.float32
    remat: bool | int = False
    unroll: int = 1

    @nn.compact
    def __call__(self, xs, carry0=None, seq_lengths=None, reverse=False):
        """xs [batch, time, input] -> (carry, hs [batch, time, hidden])."""
        cell = get_cell(self.cell)
        kw = _init_kwargs(self.cell, self.chrono_t_max)
        params = self.param(self.cell, lambda key: cell.init(
            key, xs.shape[-1], self.hidden_size, input_init=self.input_init,
            param_dtype=self.param_dtype, **kw))
        return SCANS[self.cell](params, xs, carry0, seq_lengths=seq_lengths, reverse=reverse,
                                unroll=self.unroll, remat=self.remat, dtype=self.dtype)


class GRUCell(nn.RNNCellBase):
    """One GRU step for `flax.linen.RNN` (or your own loop):
    (h [..., hidden], x [..., input]) -> (h', h'), both [..., hidden].

    Same params as `GRU` (one entry ``gru``), so either module's params run
    in the other. Under `nn.RNN` the input products run inside each step;
    `GRU` hoists them out of the loop and is the faster choice for whole
    sequences.
    """

    hidden_size: int
    variant: str = "reset_after"
    chrono_t_max: float | None = None
    input_init: str = "lecun_normal"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry, x):
        params = self.param("gru", lambda key: init_gru(
            key, x.shape[-1], self.hidden_size, variant=self.variant,
            chrono_t_max=self.chrono_t_max, input_init=self.input_init,
            param_dtype=self.param_dtype))
        h = gru_step(params, carry, x, dtype=self.dtype)
        return h, h

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]):
        """Zeros [*batch, hidden] for inputs of shape [*batch, input] (rng unused)."""
        del rng
        dtype = jnp.promote_types(self.param_dtype, jnp.float32)  # as the scans' carry
        return jnp.zeros((*input_shape[:-1], self.hidden_size), dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1


__all__ = ["GRU", "GRUCell", "Recurrent"]
