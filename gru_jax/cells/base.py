"""The protocol every recurrent cell follows, so experiments swap cells by name.

A cell is four pure functions over a params pytree (a flat dict of arrays):

    init(key, input_size, hidden_size, **options) -> params
    project(params, x, dtype) -> xp          # x [..., input] -> pytree of [..., *]
    step(params, carry, xp_t, dtype, rec_mask=None) -> (carry, y_t)
    zero_carry(params, batch_shape) -> carry

`project` holds every term that depends on the input alone (input kernels
and input biases), so a time loop can hoist it out and run one large matrix
product over all time steps; `step` holds the recurrence. `dtype` is the
compute dtype of the matrix products (None: the params' dtype); gate
nonlinearities and the carry stay in float32 or wider. `rec_mask`
[batch, hidden] (recurrent dropout) multiplies the state where it enters the
recurrent products, not where it carries over (Keras's semantics).
Beside the functions, a cell names the part of its carry a head reads
(`hidden_of`; y_t = hidden_of(carry_t) for every cell here) and the input
size its params expect (`input_size`; None: not checked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]
Carry = Any


class Cell(NamedTuple):
    name: str
    init: Callable[..., Params]
    project: Callable[..., Any]
    step: Callable[..., tuple[Carry, jax.Array]]
    zero_carry: Callable[[Params, tuple[int, ...]], Carry]
    hidden_of: Callable[[Carry], jax.Array]  # the part of the carry a head reads
    input_size: Callable[[Params], int] | None = None  # features xs must have


def carry_dtype(params: Params):
    """float32, or float64 when the params are float64 (x64 parity tests)."""
    leaf = jax.tree_util.tree_leaves(params)[0]
    return jnp.promote_types(leaf.dtype, jnp.float32)


def hidden_size_of(params: Params) -> int:
    """H, read from any [..., H] bias or kernel of the cell."""
    return next(iter(params.values())).shape[-1]


def count_params(params) -> int:
    """Number of scalars in a params pytree."""
    return sum(x.size for x in jax.tree_util.tree_leaves(params))
