"""Stacked and bidirectional recurrent layers as pure functions: torch's
``nn.GRU(num_layers=L, bidirectional=True, dropout=p)`` and Keras's
``Bidirectional(GRU(...), merge_mode=...)``, for any cell.

Params (from `init_stacked`) are a list with one entry per layer::

    [{"fwd": cell params}, ...]                        # unidirectional
    [{"fwd": cell params, "bwd": cell params}, ...]    # bidirectional

Layer 0 reads the input; layer l > 0 reads layer l - 1's merged output:
[*, D * hidden] with ``merge_mode="concat"`` (torch's layout), [*, hidden]
with ``"sum" | "mul" | "ave"`` (Keras's). Every carry leaf is stacked as
torch's ``h_0`` / ``h_n``: [layers * directions, batch, hidden], entry
``l * D + d`` (d = 0 forward, 1 backward); the LSTM's carry is a pair of them.

Dropout (torch's ``dropout``) applies to the outputs of every layer but the
last, inverted (kept units scaled by 1 / (1 - rate)), one fresh mask per
element; it is off when ``deterministic=True`` or ``dropout=0``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from gru_jax.cells import GRU, Cell, get_cell
from gru_jax.cells.base import check_params, hidden_size_of
from gru_jax.cells.gru import gru_recur
from gru_jax.scan import scan

MERGE_MODES = ("concat", "sum", "mul", "ave")
DIRECTIONS = ("fwd", "bwd")


def merge(hf: jax.Array, hb: jax.Array, mode: str | None = "concat"):
    """Keras's Bidirectional merge of forward and backward outputs [..., hidden]:
    concat -> [..., 2 * hidden]; sum, mul, ave -> [..., hidden]; None -> (hf, hb)."""
    if mode is None:
        return hf, hb
    if mode == "concat":
        return jnp.concatenate([hf, hb], axis=-1)
    if mode == "sum":
        return hf + hb
    if mode == "mul":
        return hf * hb
    if mode == "ave":
        return (hf + hb) / 2
    raise ValueError(f"merge_mode must be one of {MERGE_MODES} or None, got {mode!r}")


def bidirectional(scan_fn: Callable, params_fwd, params_bwd, xs, carry0=None, *,
                  merge_mode: str | None = "concat", seq_lengths=None, time_major=False, **kw):
    """Run `scan_fn` forward with `params_fwd` and backward with `params_bwd`.

    Args:
      scan_fn: a scan with `gru_scan`'s signature (e.g. `gru_scan`, `lstm_scan`).
      xs: [batch, time, input] ([time, batch, input] if `time_major`).
      carry0: None (each direction's zeros) or the pair (carry_fwd, carry_bwd),
        one initial state per direction (Keras's ``initial_state`` halves).
      merge_mode: how the two output sequences combine (see `merge`).
      kw: passed to both scans (seq_lengths, mask, dropout, ..., impl); an
        ``rng`` is split so the directions draw different dropout masks.

    Returns:
      ((carry_fwd, carry_bwd), outputs): outputs [batch, time, 2 * hidden] for
      concat (forward features first), [batch, time, hidden] for sum, mul, ave,
      or the pair (hs_fwd, hs_bwd) for None; both directions aligned on the
      same time steps, the backward one run over each valid prefix.
    """
    if merge_mode not in MERGE_MODES and merge_mode is not None:
        raise ValueError(f"merge_mode must be one of {MERGE_MODES} or None, got {merge_mode!r}")
    if carry0 is not None and not (isinstance(carry0, (tuple, list)) and len(carry0) == 2):
        got = f" of shape {list(carry0.shape)}" if hasattr(carry0, "shape") else ""
        raise ValueError("carry0 must be None or the pair (carry_fwd, carry_bwd), got "
                         f"{type(carry0).__name__}{got}")
    cf0, cb0 = (None, None) if carry0 is None else carry0
    rng = kw.pop("rng", None)  # each direction its own dropout masks (as Keras's two layers)
    rf, rb = (None, None) if rng is None else jax.random.split(rng)
    cf, hf = scan_fn(params_fwd, xs, cf0, seq_lengths=seq_lengths, time_major=time_major,
                     rng=rf, **kw)
    cb, hb = scan_fn(params_bwd, xs, cb0, seq_lengths=seq_lengths, time_major=time_major,
                     reverse=True, rng=rb, **kw)
    return (cf, cb), merge(hf, hb, merge_mode)


def _cell(cell: Cell | str) -> Cell:
    return get_cell(cell) if isinstance(cell, str) else cell


def scan_fn_of(cell: Cell | str) -> Callable:
    """`gru_jax.scan` with `cell` fixed (`gru_scan`'s signature); its impl="auto"
    picks the fused GRU where it applies."""
    return functools.partial(scan, _cell(cell))


def gru_cell_with(gate_fn: Callable = jax.nn.sigmoid,
                  activation_fn: Callable = jnp.tanh) -> Cell:
    """The GRU cell with flax's `gate_fn` / `activation_fn` in place of sigmoid / tanh.

    The defaults give `GRU` itself (impl="auto" then runs the fused GRU); any
    other pair gives a separate cell that `gru_jax.scan` runs with the
    reference implementation, since the fused backward is written for sigmoid
    and tanh derivatives.
    """
    if gate_fn is jax.nn.sigmoid and activation_fn is jnp.tanh:
        return GRU

    def step(params, h, xp, dtype=None, rec_mask=None):
        h = gru_recur(params, h, xp, dtype, rec_mask, gate_fn=gate_fn,
                      activation_fn=activation_fn)
        return h, h

    return GRU._replace(step=step)


def _kind(cell: Cell, name: str) -> str:
    """"kernel" (input), "recurrent_kernel" or "bias": the flax hook that initialises
    the array `name` of `cell`'s params (w_i*, w_h*, b* in every cell but minGRU,
    whose two kernels, w_z and w_h, both read the input)."""
    if name.startswith("b"):
        return "bias"
    if name.startswith("w_h") and cell.name != "mingru":
        return "recurrent_kernel"
    return "kernel"


def init_cell(cell: Cell | str, key: jax.Array, input_size: int, hidden_size: int, *,
              kernel_init: Callable | None = None, recurrent_kernel_init: Callable | None = None,
              bias_init: Callable | None = None, **init_kw) -> dict:
    """`cell.init(key, input_size, hidden_size, **init_kw)`, then flax's initializer
    hooks (each ``init(key, shape, dtype)``, e.g. from `jax.nn.initializers`)
    per gate: `kernel_init` on the input kernels [input, hidden],
    `recurrent_kernel_init` on the recurrent kernels [hidden, hidden],
    `bias_init` on the biases [hidden]. A hook left None keeps the cell's own
    init (LeCun / `input_init` inputs, orthogonal recurrent, zero or chrono biases)."""
    cell = _cell(cell)
    params = cell.init(key, input_size, hidden_size, **init_kw)
    hooks = {"kernel": kernel_init, "recurrent_kernel": recurrent_kernel_init, "bias": bias_init}
    if bias_init is not None and init_kw.get("chrono_t_max") is not None:
        raise ValueError("pass either bias_init or chrono_t_max, not both (both set the biases)")
    hook_key = jax.random.fold_in(key, 1 << 20)  # a stream apart from the cell's own init
    out = {}
    for i, (name, v) in enumerate(sorted(params.items())):
        fn = hooks[_kind(cell, name)]
        out[name] = v if fn is None else jnp.asarray(
            fn(jax.random.fold_in(hook_key, i), v.shape, v.dtype), v.dtype)
    return out


def init_stacked(key: jax.Array, cell: Cell | str, input_size: int, hidden_size: int,
                 num_layers: int = 1, *, bidirectional: bool = False,
                 merge_mode: str = "concat", **init_kw) -> list[dict]:
    """Params for `stacked_scan`: `num_layers` layers of `cell` (by name or a
    `Cell`), each direction initialised by the cell's own init with its own key.

    `init_kw` go to every layer's `init_cell` (e.g. ``variant=...`` for the GRU,
    flax's ``kernel_init``, ``recurrent_kernel_init``, ``bias_init``). Layer
    l > 0 reads D * hidden features with ``merge_mode="concat"`` and hidden
    otherwise, so `merge_mode` must be the one `stacked_scan` will use.
    """
    cell = _cell(cell)
    if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
    if merge_mode not in MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}")
    dirs = DIRECTIONS if bidirectional else DIRECTIONS[:1]
    keys = jax.random.split(key, num_layers * len(dirs)).reshape(num_layers, len(dirs))
    layers, size = [], input_size
    for i in range(num_layers):
        layers.append({d: init_cell(cell, keys[i, j], size, hidden_size, **init_kw)
                       for j, d in enumerate(dirs)})
        size = hidden_size * (len(dirs) if merge_mode == "concat" else 1)
    return layers


def num_directions(params) -> int:
    """1 or 2, read from stacked params (every layer must agree)."""
    if not isinstance(params, (list, tuple)) or not params:
        raise ValueError("stacked params must be a non-empty list of layers from init_stacked, "
                         f"got {type(params).__name__}")
    ds = {tuple(sorted(layer)) for layer in params}
    if ds == {("fwd",)}:
        return 1
    if ds == {("bwd", "fwd")}:
        return 2
    raise ValueError(f"every layer needs keys ('fwd',) or ('bwd', 'fwd'), got {sorted(ds)}")


def check_layers(cell: Cell, params, n_features: int, merge_mode: str = "concat") -> None:
    """Every layer and direction `cell`'s params, layer 0 reading `n_features`,
    layer l > 0 its predecessor's merged output (D * hidden for concat, else
    hidden), both directions of a layer the same hidden size; one line naming
    params[l][d] otherwise. Shapes only (trace time)."""
    D = num_directions(params)
    if D == 2 and merge_mode not in MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}")
    size, source = n_features, "xs has"
    for i, layer in enumerate(params):
        hidden = {}
        for d in DIRECTIONS[:D]:
            check_params(cell, layer[d])
            takes = cell.input_size(layer[d]) if cell.input_size else size
            if takes != size:
                raise ValueError(f"params[{i}][{d!r}] takes {takes} input features, but "
                                 f"{source} {size}; build the layers with init_stacked(..., "
                                 f"input_size, merge_mode={merge_mode!r})")
            hidden[d] = hidden_size_of(layer[d])
        if len(set(hidden.values())) > 1:
            raise ValueError(f"params[{i}]: the two directions differ in hidden size "
                             f"({hidden['fwd']} and {hidden['bwd']})")
        size = hidden["fwd"] * (D if merge_mode == "concat" else 1)
        source = f"layer {i}'s output ({D} direction(s) x hidden {hidden['fwd']}, " \
                 f"merge_mode={merge_mode!r}) has"


def check_layer_input(cell: Cell | str, params, xs, merge_mode: str = "concat") -> None:
    """`init_layer`'s params (one cell's dict, or stacked layers) against xs
    [..., features]: the checks `layer_scan` makes, for modules to run before
    flax's own (multi-line) parameter shape check."""
    cell = _cell(cell)
    if jnp.ndim(xs) < 2:
        raise ValueError(f"xs must be [..., time, features], got shape {list(jnp.shape(xs))}")
    n = jnp.shape(xs)[-1]
    if not isinstance(params, (list, tuple)):
        check_params(cell, params)
        takes = cell.input_size(params) if cell.input_size else n
        if takes != n:
            raise ValueError(f"xs has {n} features (last axis of shape {list(jnp.shape(xs))}); "
                             f"these {cell.name} params take {takes}")
    else:
        check_layers(cell, params, n, merge_mode)


def _dropout(rng, rate: float, h: jax.Array) -> jax.Array:
    keep = jax.random.bernoulli(rng, 1.0 - rate, h.shape)
    return jnp.where(keep, h / (1.0 - rate), jnp.zeros_like(h))


def stacked_scan(cell: Cell | str, params, xs, carry0=None, *, merge_mode: str = "concat",
                 dropout: float = 0.0, input_dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 deterministic: bool = False, rng: jax.Array | None = None,
                 seq_lengths=None, time_major: bool = False, **scan_kw):
    """Run stacked (and optionally bidirectional) layers of `cell` over a sequence.

    Args:
      cell: a cell name (gru | lstm | rnn | mingru) or a `Cell`, run by
        `gru_jax.scan` (impl="auto": the fused GRU where it applies).
      params: from `init_stacked` (layers and directions are read from it).
      xs: [*batch, time, input] ([time, *batch, input] if `time_major`).
      carry0: None (zeros) or the initial state with every leaf
        [layers * directions, *batch, hidden] (torch's ``h_0``; entry l * D + d).
      merge_mode: how each bidirectional layer combines its directions
        (concat | sum | mul | ave, see `merge`); unused for one direction.
      dropout: rate on every layer's output but the last's (torch's
        ``dropout``: a fresh mask per element and step).
      input_dropout, recurrent_dropout: Keras's per-layer ``dropout`` and
        ``recurrent_dropout`` (`gru_jax.scan`'s: one mask per sequence), in
        every layer and direction, each with its own key.
      deterministic: True turns every dropout off (evaluation).
      rng: a PRNG key, needed when a dropout is on.
      seq_lengths: [*batch] valid lengths; each layer holds its carry past them,
        outputs are zero there and the backward direction runs over the valid part.
      scan_kw: passed to every layer's scan (mask, zero_output_for_mask,
        carry_dtype, unroll, remat, dtype, impl, ...).

    Returns:
      (carry, outputs): carry with leaves [layers * directions, *batch, hidden]
      (torch's ``h_n``); outputs the last layer's [*batch, time, D * hidden]
      (concat) or [*batch, time, hidden], in xs's layout.
    """
    scan_fn = scan_fn_of(cell)
    D = num_directions(params)
    L = len(params)
    if jnp.ndim(xs) < 2:
        raise ValueError(f"xs must be [..., time, features], got shape {list(jnp.shape(xs))}")
    check_layers(_cell(cell), params, jnp.shape(xs)[-1], merge_mode)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    drop = dropout > 0.0 and not deterministic and L > 1
    per_layer = (input_dropout > 0 or recurrent_dropout > 0) and not deterministic
    if (drop or per_layer) and rng is None:
        raise ValueError("dropout needs rng (or deterministic=True to turn it off)")
    if carry0 is not None:
        leads = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None
                 for leaf in jax.tree_util.tree_leaves(carry0)}
        if leads != {L * D}:
            raise ValueError(f"carry0 leaves must be [layers * directions = {L * D}, batch, "
                             f"hidden], got leading sizes {sorted(leads, key=str)}")
    part = lambda i: jax.tree_util.tree_map(lambda a: a[i], carry0)  # noqa: E731
    k_between, k_layers = jax.random.split(rng) if drop or per_layer else (None, None)
    carries, h = [], xs
    kw = dict(seq_lengths=seq_lengths, time_major=time_major, dropout=input_dropout,
              recurrent_dropout=recurrent_dropout, deterministic=deterministic, **scan_kw)
    for i, layer in enumerate(params):
        key = jax.random.fold_in(k_layers, i) if per_layer else None
        if D == 1:
            c, h = scan_fn(layer["fwd"], h, None if carry0 is None else part(i), rng=key, **kw)
            carries.append(c)
        else:
            c0 = None if carry0 is None else (part(2 * i), part(2 * i + 1))
            (cf, cb), h = bidirectional(scan_fn, layer["fwd"], layer["bwd"], h, c0,
                                        merge_mode=merge_mode, rng=key, **kw)
            carries += [cf, cb]
        if drop and i < L - 1:
            h = _dropout(jax.random.fold_in(k_between, i), dropout, h)
    carry = jax.tree_util.tree_map(lambda *cs: jnp.stack(cs), *carries)
    return carry, h


def carry_dtype_of(param_dtype, carry_dtype=None):
    """`carry_dtype`, or by default float32 or wider than the params (the scans' choice)."""
    return jnp.promote_types(param_dtype, jnp.float32) if carry_dtype is None else carry_dtype


def init_layer(cell: Cell | str, key: jax.Array, input_size: int, hidden_size: int, *,
               num_layers: int = 1, bidirectional: bool = False, merge_mode: str = "concat",
               **init_kw):
    """One cell's params (`init_cell`) for a single unidirectional layer, else
    `init_stacked`'s layers: what the linen and nnx layer modules hold."""
    if num_layers == 1 and not bidirectional:
        return init_cell(cell, key, input_size, hidden_size, **init_kw)
    return init_stacked(key, cell, input_size, hidden_size, num_layers,
                        bidirectional=bidirectional, merge_mode=merge_mode, **init_kw)


def layer_scan(cell: Cell | str, params, xs, carry0=None, *, reverse: bool = False, **kw):
    """Run `init_layer`'s params: the cell's scan for one params dict ->
    (carry [batch, hidden], hs); `stacked_scan` for layers -> (carry
    [layers * directions, batch, hidden], outputs). `kw` as `stacked_scan`'s
    (the stacking options are ignored for a single layer)."""
    if isinstance(params, dict):
        for k in ("merge_mode", "dropout"):  # between layers: nothing to do for one
            kw.pop(k, None)
        kw["dropout"] = kw.pop("input_dropout", 0.0)  # the scan's name for Keras's dropout
        return scan_fn_of(cell)(params, xs, carry0, reverse=reverse, **kw)
    if reverse and num_directions(params) == 2:
        raise ValueError("reverse=True applies to unidirectional layers; a bidirectional "
                         "layer already runs both ways")
    if reverse:
        kw["reverse"] = True
    return stacked_scan(cell, params, xs, carry0, **kw)


__all__ = ["MERGE_MODES", "bidirectional", "carry_dtype_of", "check_layer_input", "check_layers",
           "gru_cell_with", "init_cell", "init_layer", "init_stacked", "layer_scan", "merge",
           "num_directions", "scan_fn_of", "stacked_scan"]
