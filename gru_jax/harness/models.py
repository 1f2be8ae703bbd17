"""The model every experiment trains: stacked recurrent layers and a linear head.

    x [batch, time, input] -> layer 1 -> ... -> layer L -> hs [batch, time, hidden]
      target "last":     hs[:, -1] @ w + b  -> [batch, out]
      target "sequence": hs @ w + b         -> [batch, time, out]

The layers are the library's stacked layers (`gru_jax.stacked`: `init_stacked`,
`stacked_scan`, each layer a cell from `gru_jax.cells` under `gru_jax.scan`), one
direction. Params are a plain pytree::

    {"layers": [cell params of layer 1, ..., layer L], "head": {"w": [hidden, out], "b": [out]}}

(the checkpoints' layout: `init_stacked`'s [{"fwd": cell params}, ...] is mapped to and
from it at the call, so checkpoints of every existing run still load).

`hidden_grads` gives dL/dh_t of the last layer at every step (the quantity
whose decay over the lag T - 1 - t is the vanishing-gradient curve).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from gru_jax.cells import CHRONO_CELLS, get_cell
from gru_jax.cells.base import Cell
from gru_jax.stacked import init_stacked, stacked_scan

# model.dtype -> the compute dtype of the matrix products (None: the params' float32)
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}
DTYPES = tuple(COMPUTE_DTYPES)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The `model` config section as a hashable value (usable as a static jit argument).

    Its fields are the ``model.*`` keys of `gru_jax.harness.config.SCHEMA`, which holds
    their defaults and checks (`model_spec` fills in the defaults)."""

    cell: str
    hidden_size: int
    num_layers: int
    variant: str
    chrono: bool
    chrono_t_max: float  # 0: the task's input length
    dtype: str
    remat: bool | int
    unroll: int
    impl: str


def model_spec(model_cfg) -> ModelSpec:
    """A ModelSpec from a ConfigDict, a mapping (missing keys: the config's defaults)
    or a ModelSpec."""
    if isinstance(model_cfg, ModelSpec):
        return model_cfg
    from gru_jax.harness.config import SCHEMA  # lazy: the config imports DTYPES from here

    d = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    defaults = {k.name.removeprefix("model."): k.default for k in SCHEMA
                if k.name.startswith("model.")}
    return ModelSpec(**{**defaults, **d})


def _init_options(spec: ModelSpec, seq_len: int | None) -> dict:
    opts = {}
    if spec.cell == "gru":
        opts["variant"] = spec.variant
    if spec.chrono:
        if spec.cell not in CHRONO_CELLS:
            raise ValueError(f"chrono init applies to {CHRONO_CELLS}, not {spec.cell!r}")
        if seq_len is None:
            raise ValueError("chrono init needs seq_len (its T_max)")
        opts["chrono_t_max"] = float(spec.chrono_t_max or seq_len)
    return opts


def init_model(key: jax.Array, model_cfg, input_size: int, output_size: int, *,
               seq_len: int | None = None):
    """Params for `apply_model`: recurrent layers (`init_stacked`: each cell's own init,
    orthogonal recurrent kernels) and a lecun-normal head with zero bias.

    `seq_len` is the chrono T_max (needed only with model_cfg.chrono). The head's key
    is the last of ``jax.random.split(key, num_layers + 1)``, and the layers'
    (`init_stacked` splits `key` into num_layers) are the first num_layers of that
    split: JAX's threefry keys are partitionable (the default since JAX 0.5), so a
    split into n is a prefix of a split into n + 1, and the numbers are those of
    every run trained before the model was built on `gru_jax.stacked`.
    """
    spec = model_spec(model_cfg)
    layers = init_stacked(key, spec.cell, input_size, spec.hidden_size, spec.num_layers,
                          **_init_options(spec, seq_len))
    head_key = jax.random.split(key, spec.num_layers + 1)[-1]
    w = jax.nn.initializers.lecun_normal()(head_key, (spec.hidden_size, output_size),
                                           jnp.float32)
    return {"layers": [layer["fwd"] for layer in layers],
            "head": {"w": w, "b": jnp.zeros((output_size,), jnp.float32)}}


def _stacked(layers: list) -> list[dict]:
    """The model's layers as `stacked_scan` takes them (one direction)."""
    return [{"fwd": layer} for layer in layers]


def _scan_kwargs(spec: ModelSpec) -> dict:
    return dict(unroll=spec.unroll, remat=spec.remat, dtype=COMPUTE_DTYPES[spec.dtype],
                impl=spec.impl)


def run_layers(params, x: jax.Array, model_cfg) -> list[jax.Array]:
    """Every layer's outputs: x [batch, time, input] -> [hs_1, ..., hs_L],
    each [batch, time, hidden] (the gate statistics read each layer's; `stacked_scan`
    returns the last one's, so each layer runs as a stack of one)."""
    spec = model_spec(model_cfg)
    kw = _scan_kwargs(spec)
    outs, h = [], x
    for layer in params["layers"]:
        _, h = stacked_scan(spec.cell, _stacked([layer]), h, **kw)
        outs.append(h)
    return outs


def head(params, hs: jax.Array, target: str) -> jax.Array:
    """hs [batch, time, hidden] -> [batch, out] ("last") or [batch, time, out] ("sequence")."""
    if target == "last":
        hs = hs[:, -1]
    elif target != "sequence":
        raise ValueError(f"target must be 'last' or 'sequence', got {target!r}")
    return hs.astype(jnp.float32) @ params["head"]["w"] + params["head"]["b"]


def apply_model(params, x: jax.Array, model_cfg, target: str) -> jax.Array:
    """Predictions: x [batch, time, input] -> [batch, out] for target "last"
    (from the last step), [batch, time, out] for "sequence"."""
    spec = model_spec(model_cfg)
    carry, hs = stacked_scan(spec.cell, _stacked(params["layers"]), x, **_scan_kwargs(spec))
    if target == "last":
        # The last layer's final state (one direction, no masks: hs[:, -1]) read from the
        # carry, so the per-step outputs of the last layer are dead code without a
        # gradient: the eval forward at batch 1024 ran 1.7-2.1x faster (adding, T = 320-640).
        hs = get_cell(spec.cell).hidden_of(carry)[-1][:, None]
    return head(params, hs, target)


# --- dL/dh_t of the last layer ---

def _add_to_hidden(cell: Cell, carry, d):
    """carry with d [batch, hidden] added to its hidden part (h of an LSTM's (c, h)).

    hidden_of is linear, so its transpose places d in the carry's hidden slot
    and zeros elsewhere; this works for any cell's carry structure.
    """
    (placed,) = jax.linear_transpose(cell.hidden_of, carry)(d)
    return jax.tree_util.tree_map(jnp.add, carry, placed)


def hidden_grads(params, x: jax.Array, model_cfg, target: str,
                 loss_fn: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """dL/dh_t of the last recurrent layer: [batch, time, hidden].

    L = loss_fn(predictions); entry t is the total derivative through every
    later step (what backpropagation through time delivers to h_t).

    How: the last layer's carries from a forward scan, then one reverse scan that
    carries dL/d(carry) and pulls it back through each step (`jax.vjp` of the cell's
    step in the carry alone, the step recomputed there). No weight gradients and no
    per-step residuals of autodiff's scan beyond the carries: 77 -> 13.5 ms on the
    loaded 2-core CPU against differentiating the model with a perturbation added to
    every h_t (gru, H = 32, T = 200, 256 examples), a cost every run paid twice.
    """
    spec = model_spec(model_cfg)
    h = x
    if len(params["layers"]) > 1:
        _, h = stacked_scan(spec.cell, _stacked(params["layers"][:-1]), x, **_scan_kwargs(spec))
    cell, last = get_cell(spec.cell), params["layers"][-1]
    dtype = COMPUTE_DTYPES[spec.dtype]
    time_major = lambda a: jnp.swapaxes(a, 0, 1)  # noqa: E731

    def step(carry, x_t):  # the input projection inside the step: no [T, B, 3H] buffer
        return cell.step(last, carry, cell.project(last, x_t, dtype), dtype)[0]

    def forward(carry, x_t):
        return step(carry, x_t), carry

    xs = time_major(h)  # [T, B, I]
    final, before = jax.lax.scan(forward, cell.zero_carry(last, (x.shape[0],)), xs)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, final)
    if target == "last":  # the loss reads h_T alone: one cotangent, placed in the carry
        d_last = jax.grad(lambda v: loss_fn(head(params, v[:, None], target)))(
            cell.hidden_of(final))
        ct0, direct = _add_to_hidden(cell, zeros, d_last), None
    else:  # h_t after every step: the carries before steps 2..T, then the final one
        hs = jnp.concatenate([cell.hidden_of(before)[1:], cell.hidden_of(final)[None]])
        direct = jax.grad(lambda v: loss_fn(head(params, time_major(v), target)))(hs)
        ct0 = zeros

    def backward(ct, inp):
        carry, x_t, d_t = inp  # the carry before step t, its input, dL/dh_t direct
        if d_t is not None:
            ct = _add_to_hidden(cell, ct, d_t.astype(cell.hidden_of(ct).dtype))
        (prev,) = jax.vjp(lambda c: step(c, x_t), carry)[1](ct)
        return prev, cell.hidden_of(ct)

    _, grads = jax.lax.scan(backward, ct0, (before, xs, direct), reverse=True)
    return time_major(grads)
