r"""The GRU as pure functions.

Two variants, selected at init and recognisable from the params alone:

``reset_after`` (cuDNN, ``torch.nn.GRU``, Keras ``reset_after=True``, flax)::

    r  = sigmoid(x W_ir + b_ir + h W_hr + b_hr)
    z  = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
    n  = tanh(x W_in + b_in + r * (h W_hn + b_hn))
    h' = (1 - z) * n + z * h

``reset_before`` (Cho et al. 2014, Keras ``reset_after=False``)::

    r  = sigmoid(x W_ir + b_ir + h W_hr)
    z  = sigmoid(x W_iz + b_iz + h W_hz)
    n  = tanh(x W_in + b_in + (r * h) W_hn)
    h' = (1 - z) * n + z * h

Params layout (a flat dict; kernels are [in, out] so ``x @ W``)::

    w_ir, w_iz, w_in : [input, hidden]
    w_hr, w_hz, w_hn : [hidden, hidden]
    b_ir, b_iz, b_in : [hidden]
    b_hr, b_hz, b_hn : [hidden]     # reset_after only

At input 1, hidden 50 that is 7950 scalars (reset_after) or 7800
(reset_before), as in Keras. ``z`` is the gate that keeps the old state, so
the chrono initialisation goes on ``b_iz``.
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

VARIANTS = ("reset_after", "reset_before")


def init_gru(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    *,
    variant: str = "reset_after",
    input_init: str = "lecun_normal",
    chrono_t_max: float | None = None,
    param_dtype=jnp.float32,
) -> Params:
    """GRU params: orthogonal recurrent kernels per gate, `input_init` input
    kernels, zero biases; with `chrono_t_max`, b_iz ~ log(U[1, chrono_t_max - 1]).

    Returns the flat dict described in this module's docstring.
    """
    _init.check_sizes(input_size, hidden_size)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    ks = jax.random.split(key, 7)
    p = {}
    for k, g in zip(ks[:3], "rzn", strict=True):
        p[f"w_i{g}"] = _init.input_kernel(k, (input_size, hidden_size), param_dtype, input_init)
    for k, g in zip(ks[3:6], "rzn", strict=True):
        p[f"w_h{g}"] = _init.recurrent_kernel(k, hidden_size, param_dtype)
    zeros = jnp.zeros((hidden_size,), param_dtype)
    for g in "rzn":
        p[f"b_i{g}"] = zeros
    if variant == "reset_after":
        for g in "rzn":
            p[f"b_h{g}"] = zeros
    if chrono_t_max is not None:
        p["b_iz"] = _init.chrono_bias(ks[6], hidden_size, chrono_t_max, param_dtype)
    return p


def gru_variant(params: Params) -> str:
    """'reset_after' if the params carry the hidden biases, else 'reset_before'."""
    return "reset_after" if "b_hn" in params else "reset_before"


def gru_project(params: Params, x: jax.Array, dtype=None):
    """Input terms of the three gates: x [..., input] -> (xr, xz, xn), each [..., hidden].

    For reset_after the hidden biases b_hr and b_hz are folded in here (they
    add to the same pre-activation); b_hn stays inside the reset product.
    """
    d = lambda g: _init.dot(x, params[f"w_i{g}"], dtype) + params[f"b_i{g}"]  # noqa: E731
    xr, xz, xn = d("r"), d("z"), d("n")
    if gru_variant(params) == "reset_after":
        xr, xz = xr + params["b_hr"], xz + params["b_hz"]
    return xr, xz, xn


# The reset_after gate math, written once: the reference step below, the fused
# forward and the fused backward (gru_jax.fused.gru) all call these three.


def reset_after_gates(xp, hp, b_hn, gate_fn=jax.nn.sigmoid, activation_fn=jnp.tanh):
    """Gates from their pre-activation terms (reset_after).

    xp = (xr, xz, xn): input terms, biases in (`gru_project`); hp = (hr, hz, hn):
    h W_hr, h W_hz, h W_hn, no bias; all [..., hidden]. Returns (r, z, n, a)
    with a = h W_hn + b_hn, the term the reset gate scales. `gate_fn` /
    `activation_fn` replace sigmoid / tanh (flax's hooks; reference scan only).
    """
    (xr, xz, xn), (hr, hz, hn) = xp, hp
    r = gate_fn(xr + hr)
    z = gate_fn(xz + hz)
    a = hn + b_hn
    n = activation_fn(xn + r * a)
    return r, z, n, a


def gru_update(h, z, n):
    """h' = (1 - z) n + z h, as n + z (h - n) (one product fewer)."""
    return n + z * (h - n)


def reset_after_factors(h, r, z, n, a):
    """The local derivatives of one reset_after step, for a hand-written backward.

    With G = dL/dh' and A = (1 - z)(1 - n^2), returns the five [..., hidden]
    factors (K_r, K_z, K_n, A, z) such that

        dL/d(xr + hr) = G K_r,   K_r = A a r (1 - r)
        dL/d(xz + hz) = G K_z,   K_z = (h - n) z (1 - z)
        dL/d(h W_hn)  = G K_n,   K_n = A r
        dL/d(xn)      = G A
        dL/dh         = G z + [G K_r, G K_z, G K_n] [W_hr | W_hz | W_hn]^T
    """
    A = (1.0 - z) * (1.0 - n * n)
    return A * a * r * (1.0 - r), (h - n) * z * (1.0 - z), A * r, A, z


def gru_recur(params: Params, h: jax.Array, xp, dtype=None, rec_mask=None, *,
              gate_fn=jax.nn.sigmoid, activation_fn=jnp.tanh) -> jax.Array:
    """One recurrent step from projected inputs: h [batch, hidden] -> h' [batch, hidden].
    `rec_mask` [batch, hidden] scales h in the recurrent products (dropout);
    `gate_fn` / `activation_fn` replace sigmoid / tanh."""
    hd = h if rec_mask is None else h * rec_mask
    hr = _init.dot(hd, params["w_hr"], dtype)
    hz = _init.dot(hd, params["w_hz"], dtype)
    if gru_variant(params) == "reset_after":
        hn = _init.dot(hd, params["w_hn"], dtype)
        _, z, n, _ = reset_after_gates(xp, (hr, hz, hn), params["b_hn"], gate_fn,
                                       activation_fn)
    else:  # reset_before: the reset gate scales h before its product
        xr, xz, xn = xp
        r = gate_fn(xr + hr)
        z = gate_fn(xz + hz)
        n = activation_fn(xn + _init.dot(r * hd, params["w_hn"], dtype))
    return gru_update(h, z, n).astype(h.dtype)


def gru_step(params: Params, h: jax.Array, x: jax.Array, *, dtype=None,
             gate_fn=jax.nn.sigmoid, activation_fn=jnp.tanh) -> jax.Array:
    """One GRU step for your own loops: h [*batch, hidden], x [*batch, input] -> h'
    [*batch, hidden]; h and x share the batch shape exactly (no broadcasting,
    as torch's GRUCell), else one ValueError naming the shapes.

    `dtype` is the compute dtype of the matrix products (e.g. jnp.bfloat16,
    accumulated in float32); the state keeps the dtype of `h`, made complex
    when x or the params are (flax's GRUCell too). `gate_fn` /
    `activation_fn` replace sigmoid / tanh (flax's GRUCell hooks).
    """
    check_step("gru_step", GRU, params, h, x)
    h = jnp.asarray(h).astype(state_dtype(jnp.result_type(h), x, params))
    return gru_recur(params, h, gru_project(params, x, dtype), dtype, gate_fn=gate_fn,
                     activation_fn=activation_fn)


def _step(params, h, xp, dtype=None, rec_mask=None):
    h = gru_recur(params, h, xp, dtype, rec_mask)
    return h, h


def gru_param_shapes(params) -> dict[str, tuple]:
    """{name: shape} of GRU params of `params`' variant, sizes read from w_ir."""
    In, H = anchor_sizes(params, "w_ir", "gru")
    shapes = {f"w_i{g}": (In, H) for g in "rzn"} | {f"w_h{g}": (H, H) for g in "rzn"}
    biases = ("b_i", "b_h") if gru_variant(params) == "reset_after" else ("b_i",)
    return shapes | {f"{b}{g}": (H,) for b in biases for g in "rzn"}


GRU = Cell("gru", init_gru, gru_project, _step, zero_state, lambda h: h,
           lambda params: params["w_ir"].shape[0], gru_param_shapes)
