r"""The LSTM (Hochreiter & Schmidhuber 1997, with forget gate) as pure functions::

    i  = sigmoid(x W_ii + h W_hi + b_i)
    f  = sigmoid(x W_if + h W_hf + b_f)
    g  = tanh   (x W_ig + h W_hg + b_g)
    o  = sigmoid(x W_io + h W_ho + b_o)
    c' = f * c + i * g
    h' = o * tanh(c')

Params: ``w_i{i,f,g,o}`` [input, hidden], ``w_h{i,f,g,o}`` [hidden, hidden],
``b_{i,f,g,o}`` [hidden]; 10400 scalars at input 1, hidden 50 (Keras).
The carry is the pair ``(c, h)``, each [batch, hidden].
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

GATES = "ifgo"


def init_lstm(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    forget_bias: float = 1.0,
    input_init: str = "lecun_normal",
    chrono_t_max: float | None = None,
    param_dtype=jnp.float32,
) -> Params:
    """LSTM params; b_f = forget_bias (Jozefowicz et al. 2015), or with
    `chrono_t_max` the chrono init b_f ~ log(U[1, T_max - 1]), b_i = -b_f."""
    _init.check_sizes(input_size, hidden_size)
    ks = jax.random.split(key, 9)
    p = {}
    for j, g in enumerate(GATES):
        p[f"w_i{g}"] = _init.input_kernel(ks[j], (input_size, hidden_size), param_dtype, input_init)
        p[f"w_h{g}"] = _init.recurrent_kernel(ks[4 + j], hidden_size, param_dtype)
        p[f"b_{g}"] = jnp.zeros((hidden_size,), param_dtype)
    p["b_f"] = jnp.full((hidden_size,), forget_bias, param_dtype)
    if chrono_t_max is not None:
        p["b_f"] = _init.chrono_bias(ks[8], hidden_size, chrono_t_max, param_dtype)
        p["b_i"] = -p["b_f"]
    return p


def lstm_project(params: Params, x: jax.Array, dtype=None):
    """x [..., input] -> (xi, xf, xg, xo), each [..., hidden], biases included."""
    return tuple(_init.dot(x, params[f"w_i{g}"], dtype) + params[f"b_{g}"] for g in GATES)


def lstm_recur(params: Params, carry, xp, dtype=None, rec_mask=None):
    """(c, h) [batch, hidden] each -> (c', h'); `rec_mask` [batch, hidden]
    scales h in the recurrent products (dropout)."""
    c, h = carry
    hd = h if rec_mask is None else h * rec_mask
    xi, xf, xg, xo = xp
    i = jax.nn.sigmoid(xi + _init.dot(hd, params["w_hi"], dtype))
    f = jax.nn.sigmoid(xf + _init.dot(hd, params["w_hf"], dtype))
    g = jnp.tanh(xg + _init.dot(hd, params["w_hg"], dtype))
    o = jax.nn.sigmoid(xo + _init.dot(hd, params["w_ho"], dtype))
    c = (f * c + i * g).astype(c.dtype)
    return c, (o * jnp.tanh(c)).astype(h.dtype)


def lstm_step(params: Params, carry, x: jax.Array, *, dtype=None):
    """One LSTM step for your own loops: (c, h) each [*batch, hidden], x [*batch,
    input] -> (c', h'); the state keeps its dtypes, made complex when x or the
    params are. Shapes that do not agree raise one ValueError."""
    check_step("lstm_step", LSTM, params, carry, x, "carry", ("c", "h"))
    carry = tuple(jnp.asarray(a).astype(state_dtype(jnp.result_type(a), x, params))
                  for a in carry)
    return lstm_recur(params, carry, lstm_project(params, x, dtype), dtype)


def _step(params, carry, xp, dtype=None, rec_mask=None):
    carry = lstm_recur(params, carry, xp, dtype, rec_mask)
    return carry, carry[1]


def _zero_carry(params, batch_shape):
    z = zero_state(params, batch_shape)
    return z, z


def lstm_param_shapes(params) -> dict[str, tuple]:
    """{name: shape} of LSTM params, sizes read from w_ii."""
    In, H = anchor_sizes(params, "w_ii", "lstm")
    return ({f"w_i{g}": (In, H) for g in GATES} | {f"w_h{g}": (H, H) for g in GATES}
            | {f"b_{g}": (H,) for g in GATES})


LSTM = Cell("lstm", init_lstm, lstm_project, _step, _zero_carry, lambda c: c[1],
            lambda params: params["w_ii"].shape[0], lstm_param_shapes)
