r"""The plain tanh (Elman) RNN as pure functions::

    h' = tanh(x W_i + h W_h + b)

Params: ``w_i`` [input, hidden], ``w_h`` [hidden, hidden], ``b`` [hidden];
2600 scalars at input 1, hidden 50 (Keras SimpleRNN).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gru_jax.cells import initializers as _init
from gru_jax.cells.base import (
    Cell,
    Params,
    anchor_sizes,
    check_step,
    state_dtype,
    zero_state,
)


def init_rnn(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    input_init: str = "lecun_normal",
    param_dtype=jnp.float32,
) -> Params:
    """Elman RNN params: `input_init` input kernel, orthogonal recurrent kernel, zero bias."""
    _init.check_sizes(input_size, hidden_size)
    k1, k2 = jax.random.split(key)
    return {
        "w_i": _init.input_kernel(k1, (input_size, hidden_size), param_dtype, input_init),
        "w_h": _init.recurrent_kernel(k2, hidden_size, param_dtype),
        "b": jnp.zeros((hidden_size,), param_dtype),
    }


def rnn_project(params: Params, x: jax.Array, dtype=None) -> jax.Array:
    """x [..., input] -> x W_i + b [..., hidden]."""
    return _init.dot(x, params["w_i"], dtype) + params["b"]


def rnn_recur(params: Params, h: jax.Array, xp: jax.Array, dtype=None,
              rec_mask=None) -> jax.Array:
    """h [batch, hidden] -> h' [batch, hidden]; `rec_mask` scales h in the product."""
    hd = h if rec_mask is None else h * rec_mask
    return jnp.tanh(xp + _init.dot(hd, params["w_h"], dtype)).astype(h.dtype)


def rnn_step(params: Params, h: jax.Array, x: jax.Array, *, dtype=None) -> jax.Array:
    """One tanh-RNN step for your own loops: h [*batch, hidden], x [*batch, input] -> h'
    (the batch shapes equal; h's dtype, made complex when x or the params are)."""
    check_step("rnn_step", RNN, params, h, x)
    h = jnp.asarray(h).astype(state_dtype(jnp.result_type(h), x, params))
    return rnn_recur(params, h, rnn_project(params, x, dtype), dtype)


def _step(params, h, xp, dtype=None, rec_mask=None):
    h = rnn_recur(params, h, xp, dtype, rec_mask)
    return h, h


def rnn_param_shapes(params) -> dict[str, tuple]:
    """{name: shape} of tanh-RNN params, sizes read from w_i."""
    In, H = anchor_sizes(params, "w_i", "rnn")
    return {"w_i": (In, H), "w_h": (H, H), "b": (H,)}


RNN = Cell("rnn", init_rnn, rnn_project, _step, zero_state, lambda h: h,
           lambda params: params["w_i"].shape[0], rnn_param_shapes)
