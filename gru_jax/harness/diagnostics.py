"""What the trainer measures besides the loss: gradient flow over time and GRU gates.

* ``grad_norm_curve``: ||dL/dh_t|| for t = 0..T-1 (mean over the batch of the
  per-example norm), from `gru_jax.harness.models.hidden_grads`.
* ``grad_horizon``: the largest lag k = T-1-t such that every step within k
  of the end keeps ||dL/dh_t|| >= fraction * ||dL/dh_{T-1}||: how far back the
  gradient reaches before it has vanished (by `fraction`, default 1e-3).
* ``update_gate``: the GRU's z_t (1 keeps the old state) recomputed from a
  layer's input and outputs, and ``gate_stats``: its mean and the fraction of
  saturated entries (z < 0.05 or z > 0.95).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gru_jax.cells.gru import gru_project
from gru_jax.cells.initializers import dot

HORIZON_FRACTION = 1e-3
SATURATION = 0.05  # z within this of 0 or 1 counts as saturated


def grad_norm_curve(grads: jax.Array) -> jax.Array:
    """grads [batch, time, hidden] -> [time]: mean over the batch of ||dL/dh_t||_2."""
    return jnp.mean(jnp.sqrt(jnp.sum(jnp.square(grads.astype(jnp.float32)), axis=-1)), axis=0)


def grad_horizon(norms, fraction: float = HORIZON_FRACTION) -> int:
    """Largest lag k (0..T-1) with norms[T-1-j] >= fraction * norms[T-1] for all j <= k.

    norms [time] (host or device array). Returns 0 when the last step's norm is
    0 or not finite (there is no gradient to follow back).
    """
    norms = np.asarray(norms, np.float64)
    ref = norms[-1]
    if not np.isfinite(ref) or ref <= 0:
        return 0
    ok = norms[::-1] >= fraction * ref  # ok[j]: lag j keeps enough gradient
    ok &= np.isfinite(norms[::-1])
    if ok.all():
        return len(norms) - 1
    return int(np.argmin(ok)) - 1  # first failing lag minus one (lag 0 always passes)


def update_gate(params, xs: jax.Array, hs: jax.Array, dtype=None) -> jax.Array:
    """z_t of a GRU layer (either variant): xs [batch, time, input] its input,
    hs [batch, time, hidden] its outputs -> z [batch, time, hidden].

    z_t = sigmoid(x_t W_iz + b_iz (+ b_hz) + h_{t-1} W_hz), with h_{-1} = 0.
    """
    _, xz, _ = gru_project(params, xs, dtype)
    h_prev = jnp.concatenate([jnp.zeros_like(hs[:, :1]), hs[:, :-1]], axis=1)
    return jax.nn.sigmoid(xz + dot(h_prev, params["w_hz"], dtype))


def gate_stats(z: jax.Array, saturation: float = SATURATION) -> dict[str, jax.Array]:
    """Mean of z and the fraction of entries within `saturation` of 0 or 1."""
    sat = (z < saturation) | (z > 1.0 - saturation)
    return {"z_mean": jnp.mean(z), "z_saturated": jnp.mean(sat.astype(jnp.float32))}
