"""Flax nnx wrappers over the pure cells and scans (the linen ones: `gru_jax.modules`).

Each module holds one `nnx.Param` whose value is our flat params dict
(``module.params.get_value()`` is what `gru_scan` and `gru_jax.interop` take).

    >>> from flax import nnx
    >>> import jax.numpy as jnp, gru_jax.nnx
    >>> layer = gru_jax.nnx.GRU(2, 8, rngs=nnx.Rngs(0))
    >>> h_last, hs = layer(jnp.ones((4, 10, 2)))
    >>> hs.shape
    (4, 10, 8)
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx

from gru_jax.cells import get_cell, init_gru
from gru_jax.scan import SCANS, gru_scan


def _value(v: nnx.Variable):
    # flax >= 0.12 deprecates .value for non-array values in favour of get_value()
    return v.get_value() if hasattr(v, "get_value") else v.value


class GRU(nnx.Module):
    """A GRU layer over `gru_scan`: xs [batch, time, input] -> (h_last, hs).

    Arguments mirror `init_gru` (variant, chrono_t_max, input_init,
    param_dtype) and `gru_scan` (dtype, remat, unroll, impl).
    """

    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs,
                 variant: str = "reset_after", chrono_t_max: float | None = None,
                 input_init: str = "lecun_normal", dtype: Any = None,
                 param_dtype: Any = jnp.float32, remat: bool | int = False, unroll: int = 1,
                 impl: str = "auto"):
        self.params = nnx.Param(init_gru(
            rngs.params(), input_size, hidden_size, variant=variant,
            chrono_t_max=chrono_t_max, input_init=input_init, param_dtype=param_dtype))
        self.dtype, self.remat, self.unroll, self.impl = dtype, remat, unroll, impl

    def __call__(self, xs, h0=None, *, seq_lengths=None, reverse=False):
        """xs [batch, time, input], h0 [batch, hidden] or None, seq_lengths [batch]
        -> (h_last [batch, hidden], hs [batch, time, hidden])."""
        return gru_scan(_value(self.params), xs, h0, seq_lengths=seq_lengths, reverse=reverse,
                        unroll=self.unroll, remat=self.remat, dtype=self.dtype, impl=self.impl)


class Recurrent(nnx.Module):
    """Any cell by name (gru | lstm | rnn | mingru) over its scan:
    xs [batch, time, input] -> (carry, hs [batch, time, hidden])."""

    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs, cell: str = "gru",
                 input_init: str = "lecun_normal", dtype: Any = None,
                 param_dtype: Any = jnp.float32, remat: bool | int = False, unroll: int = 1):
        self.params = nnx.Param(get_cell(cell).init(
            rngs.params(), input_size, hidden_size, input_init=input_init,
            param_dtype=param_dtype))
        self.cell, self.dtype, self.remat, self.unroll = cell, dtype, remat, unroll

    def __call__(self, xs, carry0=None, *, seq_lengths=None, reverse=False):
        return SCANS[self.cell](_value(self.params), xs, carry0, seq_lengths=seq_lengths,
                                reverse=reverse, unroll=self.unroll, remat=self.remat,
                                dtype=self.dtype)


__all__ = ["GRU", "Recurrent"]
