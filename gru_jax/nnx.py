"""Flax nnx wrappers over the pure cells and scans (the linen ones: `gru_jax.modules`).

Every array is its own `nnx.Param`, laid out as the pure functions' params
(``module.params["w_ir"]``, or ``module.params[layer]["fwd"]["w_ir"]`` when
stacked), so optax masks and nnx filters see kernels and biases apart (e.g.
no weight decay on biases). ``module.get_params()`` returns the plain pytree
that `gru_scan`, `stacked_scan` and `gru_jax.interop` take; ``set_params``
puts one back.

    >>> from flax import nnx
    >>> import jax.numpy as jnp, gru_jax
    >>> layer = gru_jax.nnx.GRU(2, 8, rngs=nnx.Rngs(0))
    >>> h_last, hs = layer(jnp.ones((4, 10, 2)))
    >>> hs.shape
    (4, 10, 8)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from gru_jax.cells import GRU as _GRU_CELL
from gru_jax.cells import gru_step
from gru_jax.cells.base import check_step, shape_str
from gru_jax.stacked import carry_dtype_of, gru_cell_with, init_cell, init_layer, layer_scan

Initializer = Callable[..., jax.Array]
_is_var = lambda x: isinstance(x, nnx.Variable)  # noqa: E731


def _value(v: nnx.Variable):
    # flax >= 0.12 deprecates .value for non-array values in favour of get_value()
    return v.get_value() if hasattr(v, "get_value") else v.value


class _HasParams(nnx.Module):
    """`self.params`: the pure params pytree with one `nnx.Param` per array."""

    def _hold(self, params) -> None:
        self.params = nnx.data(jax.tree_util.tree_map(nnx.Param, params))

    def get_params(self):
        """The plain params pytree (arrays) for the pure functions and interop."""
        return jax.tree_util.tree_map(_value, self.params, is_leaf=_is_var)

    def set_params(self, params) -> None:
        """Assign a params pytree of the same structure and shapes (e.g. from
        `gru_jax.interop`); anything else raises one line naming the entry."""
        held = jax.tree_util.tree_flatten_with_path(self.get_params())
        given = jax.tree_util.tree_flatten_with_path(params)
        if held[1] != given[1]:
            have = {jax.tree_util.keystr(p) for p, _ in held[0]}
            got = {jax.tree_util.keystr(p) for p, _ in given[0]}
            raise ValueError(f"set_params: params must have the structure of get_params(); "
                             f"missing {sorted(have - got)}, unexpected {sorted(got - have)}"
                             + ("" if have != got else f" (containers differ: got {given[1]})"))
        for (path, old), (_, new) in zip(held[0], given[0], strict=True):
            if jnp.shape(new) != jnp.shape(old):
                raise ValueError(f"set_params: params{jax.tree_util.keystr(path)} has shape "
                                 f"{shape_str(jnp.shape(new))}, this module holds "
                                 f"{shape_str(jnp.shape(old))}")
        jax.tree_util.tree_map(lambda v, x: v.set_value(jnp.asarray(x)), self.params, params,
                               is_leaf=_is_var)


def _init_kw(cell: str, variant, chrono_t_max, input_init, param_dtype, kernel_init,
             recurrent_kernel_init, bias_init) -> dict:
    kw = dict(input_init=input_init, param_dtype=param_dtype, kernel_init=kernel_init,
              recurrent_kernel_init=recurrent_kernel_init, bias_init=bias_init)
    if chrono_t_max is not None:
        kw["chrono_t_max"] = chrono_t_max
    if cell == "gru":
        kw["variant"] = variant
    return kw


class Recurrent(_HasParams):
    """Any cell by name (gru | lstm | rnn | mingru) over `gru_jax.scan`, optionally
    stacked and bidirectional: xs [*batch, time, input] ([time, *batch, input]
    if `time_major`) -> (carry, outputs).

    One layer: carry [*batch, hidden] (the LSTM: (c, h)), outputs [*batch,
    time, hidden]. Stacked (num_layers > 1 or bidirectional): every carry leaf
    [layers * directions, *batch, hidden] (torch's h_n), outputs [*batch,
    time, D * hidden] for merge_mode concat, else [*batch, time, hidden].
    torch's `dropout` between layers and Keras's `input_dropout` (its
    ``dropout``) and `recurrent_dropout` apply unless `deterministic` (set it,
    or ``module.eval()`` / ``module.train()``), drawing from ``rngs.dropout``.
    Scan options as `gru_jax.scan`'s (zero_output_for_mask, carry_dtype,
    dtype, remat, unroll, impl). The GRU's gate_fn / activation_fn replace
    sigmoid / tanh (others than those run the reference scan).
    """

    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs, cell: str = "gru",
                 variant: str = "reset_after", chrono_t_max: float | None = None,
                 input_init: str = "lecun_normal", kernel_init: Initializer | None = None,
                 recurrent_kernel_init: Initializer | None = None,
                 bias_init: Initializer | None = None, gate_fn: Callable = jax.nn.sigmoid,
                 activation_fn: Callable = jnp.tanh, num_layers: int = 1,
                 bidirectional: bool = False, merge_mode: str = "concat", dropout: float = 0.0,
                 input_dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 deterministic: bool = False, time_major: bool = False,
                 zero_output_for_mask: bool = True, dtype: Any = None,
                 param_dtype: Any = jnp.float32, carry_dtype: Any = None,
                 remat: bool | int = False, unroll: int = 1, impl: str = "auto"):
        kw = _init_kw(cell, variant, chrono_t_max, input_init, param_dtype, kernel_init,
                      recurrent_kernel_init, bias_init)
        self._hold(init_layer(cell, rngs.params(), input_size, hidden_size,
                              num_layers=num_layers, bidirectional=bidirectional,
                              merge_mode=merge_mode, **kw))
        custom = (gate_fn, activation_fn) != (jax.nn.sigmoid, jnp.tanh)
        if custom and cell != "gru":
            raise ValueError(f"gate_fn / activation_fn apply to the GRU, not cell={cell!r}")
        self.cell = gru_cell_with(gate_fn, activation_fn) if cell == "gru" else cell
        self.scan_options = dict(
            merge_mode=merge_mode, dropout=dropout, input_dropout=input_dropout,
            recurrent_dropout=recurrent_dropout, time_major=time_major,
            zero_output_for_mask=zero_output_for_mask, carry_dtype=carry_dtype, dtype=dtype,
            remat=remat, unroll=unroll, impl=impl)
        self.deterministic = deterministic
        uses_dropout = (dropout > 0 and num_layers > 1) or input_dropout > 0 \
            or recurrent_dropout > 0
        self.rngs = rngs["dropout"].fork() if uses_dropout else nnx.data(None)

    def __call__(self, xs, carry0=None, *, seq_lengths=None, mask=None, reverse=False,
                 deterministic=None):
        """xs [*batch, time, input], carry0 as the carry, seq_lengths [*batch],
        mask [*batch, time] bool (Keras's: False steps hold the carry) -> (carry, outputs)."""
        deterministic = self.deterministic if deterministic is None else deterministic
        rng = None if deterministic or self.rngs is None else self.rngs()
        return layer_scan(self.cell, self.get_params(), xs, carry0, reverse=reverse,
                          deterministic=deterministic, rng=rng, seq_lengths=seq_lengths,
                          mask=mask, **self.scan_options)


class GRU(Recurrent):
    """GRU layer(s): xs [*batch, time, input] -> (h_last [*batch, hidden], hs
    [*batch, time, hidden]) for one layer; stacked as `Recurrent`. Arguments
    mirror `init_gru` (variant, chrono_t_max, input_init, param_dtype; flax's
    kernel_init, recurrent_kernel_init, bias_init, gate_fn, activation_fn), the
    stack and the scan (as `Recurrent`).
    """

    def __init__(self, input_size: int, hidden_size: int, *, rngs: nnx.Rngs, **kw):
        super().__init__(input_size, hidden_size, rngs=rngs, cell="gru", **kw)


class GRUCell(_HasParams):
    """One GRU step for `flax.nnx.RNN` (or your own loop):
    (h [..., hidden], x [..., input]) -> (h', h'), both [..., hidden].

    Arguments as ``flax.nnx.GRUCell(in_features, hidden_features, rngs=...)``
    (kernel_init, recurrent_kernel_init, bias_init, carry_init, gate_fn,
    activation_fn, dtype, param_dtype) plus ours (carry_dtype, variant,
    chrono_t_max, input_init); params as `GRU`'s, one `nnx.Param` per array.
    Under `nnx.RNN` the input products run inside each step; `GRU` hoists them
    out of the loop for whole sequences.
    """

    def __init__(self, in_features: int, hidden_features: int, *, rngs: nnx.Rngs,
                 variant: str = "reset_after", chrono_t_max: float | None = None,
                 input_init: str = "lecun_normal", kernel_init: Initializer | None = None,
                 recurrent_kernel_init: Initializer | None = None,
                 bias_init: Initializer | None = None, carry_init: Initializer | None = None,
                 gate_fn: Callable = jax.nn.sigmoid, activation_fn: Callable = jnp.tanh,
                 dtype: Any = None, param_dtype: Any = jnp.float32, carry_dtype: Any = None):
        kw = _init_kw("gru", variant, chrono_t_max, input_init, param_dtype, kernel_init,
                      recurrent_kernel_init, bias_init)
        self._hold(init_cell("gru", rngs.params(), in_features, hidden_features, **kw))
        self.in_features, self.hidden_features = in_features, hidden_features
        self.dtype, self.param_dtype, self.carry_dtype = dtype, param_dtype, carry_dtype
        self.carry_init = carry_init
        self.gate_fn, self.activation_fn = gate_fn, activation_fn

    def __call__(self, carry, x):
        """carry [*batch, hidden], x [*batch, input] (the same batch shape) -> (h', h');
        h' complex when x is (flax's GRUCell too)."""
        params = self.get_params()
        check_step("GRUCell", _GRU_CELL, params, carry, x, "carry")
        h = gru_step(params, carry, x, dtype=self.dtype, gate_fn=self.gate_fn,
                     activation_fn=self.activation_fn)
        return h, h

    def initialize_carry(self, input_shape: tuple[int, ...], rngs=None,
                         carry_init: Initializer | None = None):
        """`carry_init(key, [*batch, hidden], dtype)` for inputs [*batch, input]
        (zeros by default), in `carry_dtype` (default float32 or wider, as the
        scans' carry; the step keeps it). `rngs` (an nnx.Rngs, a stream or
        None) feeds a random carry_init."""
        init = carry_init or self.carry_init
        if isinstance(rngs, nnx.Rngs):
            rngs = rngs.carry
        if init is None:  # zeros: no key needed
            init, key = nnx.initializers.zeros_init(), jax.random.key(0)
        elif rngs is None:
            raise ValueError("initialize_carry: a carry_init needs rngs (an nnx.Rngs or stream)")
        else:
            key = rngs()
        return init(key, (*input_shape[:-1], self.hidden_features),
                    carry_dtype_of(self.param_dtype, self.carry_dtype))

    @property
    def num_feature_axes(self) -> int:
        return 1


__all__ = ["GRU", "GRUCell", "Recurrent"]
