r"""minGRU (Feng et al. 2024, "Were RNNs all we needed?") as pure functions::

    z  = sigmoid(x W_z + b_z)
    h~ = x W_h + b_h
    h' = (1 - z) * h + z * h~

The gates read only the input, so the recurrence is linear in h:
h_t = a_t * h_{t-1} + b_t with a_t = 1 - z_t, b_t = z_t * h~_t, and it can
run in parallel over time with `jax.lax.associative_scan` (see
`gru_jax.mingru_scan(..., impl="associative")`).

Params: ``w_z, w_h`` [input, hidden], ``b_z, b_h`` [hidden].
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


def init_mingru(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    input_init: str = "lecun_normal",
    param_dtype=jnp.float32,
) -> Params:
    """minGRU params: `input_init` kernels, zero biases."""
    _init.check_sizes(input_size, hidden_size)
    k1, k2 = jax.random.split(key)
    zeros = jnp.zeros((hidden_size,), param_dtype)
    return {
        "w_z": _init.input_kernel(k1, (input_size, hidden_size), param_dtype, input_init),
        "w_h": _init.input_kernel(k2, (input_size, hidden_size), param_dtype, input_init),
        "b_z": zeros,
        "b_h": zeros,
    }


def mingru_project(params: Params, x: jax.Array, dtype=None):
    """x [..., input] -> (a, b), each [..., hidden]: h' = a * h + b."""
    z = jax.nn.sigmoid(_init.dot(x, params["w_z"], dtype) + params["b_z"])
    h_tilde = _init.dot(x, params["w_h"], dtype) + params["b_h"]
    return 1.0 - z, z * h_tilde


def mingru_step(params: Params, h: jax.Array, x: jax.Array, *, dtype=None) -> jax.Array:
    """One minGRU step for your own loops: h [*batch, hidden], x [*batch, input] -> h'
    (the batch shapes equal; h's dtype, made complex when x or the params are)."""
    check_step("mingru_step", MINGRU, params, h, x)
    h = jnp.asarray(h).astype(state_dtype(jnp.result_type(h), x, params))
    a, b = mingru_project(params, x, dtype)
    return (a * h + b).astype(h.dtype)


def _step(params, h, xp, dtype=None, rec_mask=None):
    if rec_mask is not None:
        raise ValueError("recurrent_dropout: minGRU has no recurrent product; use dropout")
    a, b = xp
    h = (a * h + b).astype(h.dtype)
    return h, h


def mingru_param_shapes(params) -> dict[str, tuple]:
    """{name: shape} of minGRU params, sizes read from w_z."""
    In, H = anchor_sizes(params, "w_z", "mingru")
    return {"w_z": (In, H), "w_h": (In, H), "b_z": (H,), "b_h": (H,)}


MINGRU = Cell("mingru", init_mingru, mingru_project, _step, zero_state, lambda h: h,
              lambda params: params["w_z"].shape[0], mingru_param_shapes)
