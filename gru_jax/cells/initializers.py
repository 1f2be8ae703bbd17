"""Initialisers shared by the cells (thin names over `jax.nn.initializers`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

INPUT_INITS = {
    "lecun_normal": jax.nn.initializers.lecun_normal(),  # flax.linen default
    "glorot_uniform": jax.nn.initializers.glorot_uniform(),  # Keras default
}
_orthogonal = jax.nn.initializers.orthogonal()


def input_kernel(key, shape, dtype, name: str):
    """[input, hidden] kernel from the initialiser called `name`."""
    if name not in INPUT_INITS:
        raise ValueError(f"input_init must be one of {sorted(INPUT_INITS)}, got {name!r}")
    return INPUT_INITS[name](key, shape, dtype)


def recurrent_kernel(key, hidden_size: int, dtype):
    """[hidden, hidden] orthogonal kernel (one per gate, as Keras and flax do)."""
    # the QR runs in float32 or wider: LAPACK on CPU has no bfloat16 / float16
    wide = jnp.promote_types(dtype, jnp.float32)
    return _orthogonal(key, (hidden_size, hidden_size), wide).astype(dtype)


def chrono_bias(key, hidden_size: int, t_max: float, dtype):
    """Chrono initialisation (Tallec & Ollivier 2018): b ~ log(U[1, t_max - 1]).

    Put on the gate that keeps the old state, it makes the characteristic
    forgetting times of the units spread roughly over [1, t_max].
    """
    if t_max is None or t_max <= 2:
        raise ValueError(f"chrono_t_max must be > 2, got {t_max!r}")
    u = jax.random.uniform(key, (hidden_size,), jnp.float32, 1.0, t_max - 1.0)
    return jnp.log(u).astype(dtype)


def check_sizes(input_size: int, hidden_size: int) -> None:
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


def dot(x, w, dtype):
    """x @ w with inputs cast to the compute `dtype` and float32 accumulation.

    `dtype=None` computes in the promoted dtype of x and w (no casts).
    """
    if dtype is None:
        return x @ w
    return jnp.matmul(x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)
