r"""Weights to and from PyTorch, Keras and flax, in our params layout.

Our GRU params (see `gru_jax.cells.gru`) are a flat dict of per-gate
kernels [in, hidden] (``x @ W``) and biases [hidden]; the other libraries
stack the gates::

    torch.nn.GRU    r, z, n     weight_ih_l0 [3H, I], weight_hh_l0 [3H, H],
                                bias_ih_l0 [3H], bias_hh_l0 [3H]
    Keras GRU       z, r, h     kernel [I, 3H], recurrent_kernel [H, 3H], bias
    flax GRUCell    r, z, n     {ir, iz, in, hr, hz, hn}: kernel [., H];
                                bias on ir, iz, in, hn only
    torch.nn.LSTM   i, f, g, o  weight_ih_l0 [4H, I], weight_hh_l0 [4H, H],
                                bias_ih_l0 + bias_hh_l0 = our b

Keras's bias is (2, 3H) with ``reset_after=True`` (input row, recurrent row)
and (3H,) with ``reset_after=False``. flax's GRUCell is reset_after without
b_hr, b_hz: `to_flax_gru_cell` folds them into the input biases of r and z
(they add to the same pre-activation, so the outputs are unchanged).

Every conversion from ours and back is exact (no arithmetic), except that
flax's and torch LSTM's bias folding moves (not changes) biases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from gru_jax.cells.base import check_params
from gru_jax.cells.gru import GRU, gru_variant
from gru_jax.cells.lstm import LSTM

_FLAX_GRU = {"ir": True, "iz": True, "in": True, "hr": False, "hz": False, "hn": True}


def _np(x, name: str) -> np.ndarray:
    """A torch tensor, jax array or numpy array as a numpy array."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # numpy has no bfloat16: via float32, exactly
            return x.float().numpy().astype(jnp.bfloat16)
        x = x.numpy()
    try:
        return np.asarray(x)
    except Exception as e:
        raise ValueError(f"{name}: cannot convert {type(x).__name__} to an array") from e


def _shape(a: np.ndarray, shape: tuple, name: str) -> np.ndarray:
    if a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    return a


def _torch_or_numpy(d: dict) -> dict:
    try:
        import torch
    except ImportError:
        return d
    def tensor(v):
        if v.dtype == jnp.bfloat16:  # torch.from_numpy has no bfloat16: via float32, exactly
            return torch.from_numpy(v.astype(np.float32)).to(torch.bfloat16)
        return torch.from_numpy(np.array(v, order="C"))  # a writable, C-ordered copy

    return {k: tensor(v) for k, v in d.items()}


def _our_params(params: Mapping, keys: Sequence[str], what: str) -> dict:
    missing = [k for k in keys if k not in params]
    if missing:
        raise ValueError(f"{what} params lack {missing}; got keys {sorted(params)}")
    return {k: np.asarray(params[k]) for k in params}


_TORCH_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")


def _torch_layers(sd, what: str) -> list[list[dict]]:
    """A torch state dict's tensors grouped as [layer][direction] -> {"weight_ih": ...}."""
    if hasattr(sd, "state_dict"):  # an nn.GRU / nn.LSTM module itself
        sd = sd.state_dict()
    if not isinstance(sd, Mapping):
        raise ValueError(f"expected a {what} state dict, got {type(sd).__name__}")
    groups: dict[tuple[int, int], dict] = {}
    for k, v in sd.items():
        m = _TORCH_KEY.match(k)
        if m is None:  # e.g. LSTM proj_size's weight_hr_l0
            raise ValueError(f"unsupported {what} state dict key {k!r} (expected "
                             "weight_ih_l<L>, weight_hh_l<L>, bias_ih_l<L>, bias_hh_l<L>, "
                             "optionally with _reverse)")
        groups.setdefault((int(m[2]), int(bool(m[3]))), {})[m[1]] = v
    if not groups:
        raise ValueError(f"{what} state dict lacks 'weight_ih_l0'; got keys {sorted(sd)}")
    L = 1 + max(layer for layer, _ in groups)
    D = 1 + max(d for _, d in groups)
    want = {(layer, d) for layer in range(L) for d in range(D)}
    if set(groups) != want:
        missing = sorted(f"l{layer}{'_reverse' * d}" for layer, d in want - set(groups))
        raise ValueError(f"{what} state dict lacks the tensors of layer(s) {missing}")
    return [[groups[layer, d] for d in range(D)] for layer in range(L)]


def _gates(g: dict, suffix: str, n_gates: int, what: str):
    """(w_ih [G H, I], w_hh [G H, H], b_ih [G H], b_hh [G H]) of one layer and direction."""
    for k in ("weight_ih", "weight_hh"):
        if k not in g:
            raise ValueError(f"{what} state dict lacks {k + suffix!r}")
    w_hh = _np(g["weight_hh"], "weight_hh" + suffix)
    if w_hh.ndim != 2 or w_hh.shape[0] != n_gates * w_hh.shape[1]:
        raise ValueError(f"weight_hh{suffix}: expected shape [{n_gates}*H, H], got {w_hh.shape}")
    H = w_hh.shape[1]
    w_ih = _np(g["weight_ih"], "weight_ih" + suffix)
    if w_ih.ndim != 2 or w_ih.shape[0] != n_gates * H:
        raise ValueError(f"weight_ih{suffix}: expected shape [{n_gates * H}, I], got {w_ih.shape}")
    has = [k in g for k in ("bias_ih", "bias_hh")]
    if any(has) and not all(has):
        raise ValueError(f"{what} state dict has only one of bias_ih{suffix}, bias_hh{suffix}")
    if all(has):  # bias=False modules have neither: zeros then
        b_ih = _shape(_np(g["bias_ih"], "bias_ih" + suffix), (n_gates * H,), "bias_ih" + suffix)
        b_hh = _shape(_np(g["bias_hh"], "bias_hh" + suffix), (n_gates * H,), "bias_hh" + suffix)
    else:
        b_ih = b_hh = np.zeros((n_gates * H,), w_hh.dtype)
    return w_ih, w_hh, b_ih, b_hh


def _suffix(layer: int, d: int) -> str:
    return f"_l{layer}" + ("_reverse" if d else "")


def _from_torch(sd, n_gates: int, what: str, one: Callable):
    """`one(w_ih, w_hh, b_ih, b_hh)` per layer and direction: one params dict for a
    single-layer unidirectional module, else the `init_stacked` list."""
    layers = _torch_layers(sd, what)
    gates = [[_gates(g, _suffix(layer, j), n_gates, what) for j, g in enumerate(dirs)]
             for layer, dirs in enumerate(layers)]
    _check_stack(gates, n_gates)
    out = [{d: one(*g) for d, g in zip(("fwd", "bwd"), dirs, strict=False)} for dirs in gates]
    return out[0]["fwd"] if len(out) == 1 and len(layers[0]) == 1 else out


def _check_stack(gates: list[list[tuple]], n_gates: int) -> None:
    """Every layer and direction of one hidden size (weight_hh_l0's), layer 0's
    directions reading the same input, layer l > 0 reading D * hidden (torch's
    layout); one line naming the tensor otherwise."""
    D, H = len(gates[0]), gates[0][0][1].shape[1]
    for layer, dirs in enumerate(gates):
        for j, (w_ih, w_hh, _, _) in enumerate(dirs):
            s = _suffix(layer, j)
            if w_hh.shape[1] != H:
                raise ValueError(f"weight_hh{s}: expected shape ({n_gates * H}, {H}) (hidden "
                                 f"{H}, as weight_hh_l0), got {w_hh.shape}")
            want, why = (gates[0][0][0].shape[1], "the input size of weight_ih_l0") if \
                layer == 0 else (D * H, f"layer {layer} reads {D} direction(s) x hidden {H}")
            if w_ih.shape[1] != want:
                raise ValueError(f"weight_ih{s}: expected shape ({n_gates * H}, {want}) ({why}), "
                                 f"got {w_ih.shape}")


def _to_torch(params, one: Callable) -> dict:
    """A torch state dict from one params dict (keys ..._l0) or `init_stacked` layers
    (keys ..._l<L> and ..._l<L>_reverse), `one(p)` giving the four stacked tensors."""
    if isinstance(params, Mapping):
        layers = [{"fwd": params}]
    elif isinstance(params, (list, tuple)) and params:
        layers = params
    else:
        raise ValueError("expected a params dict or a non-empty list of layers from "
                         f"init_stacked, got {type(params).__name__}")
    sd = {}
    for layer, dirs in enumerate(layers):
        if not isinstance(dirs, Mapping) or "fwd" not in dirs or set(dirs) - {"fwd", "bwd"}:
            raise ValueError(f"layer {layer}: expected keys 'fwd' (and 'bwd'), got "
                             f"{sorted(dirs) if isinstance(dirs, Mapping) else dirs!r}")
        for j, d in enumerate(("fwd", "bwd")):
            if d in dirs:
                w_ih, w_hh, b_ih, b_hh = one(dirs[d])
                s = _suffix(layer, j)
                sd.update({"weight_ih" + s: w_ih, "weight_hh" + s: w_hh,
                           "bias_ih" + s: b_ih, "bias_hh" + s: b_hh})
    return _torch_or_numpy(sd)


def _split(a: np.ndarray, n: int, axis: int) -> list[np.ndarray]:
    return np.split(a, n, axis=axis)


def _jnp(d: dict) -> dict:
    return {k: jnp.asarray(v) for k, v in d.items()}


# --------------------------------------------------------------------------- torch GRU


def _gru_from_torch(w_ih, w_hh, b_ih, b_hh) -> dict:
    p = {}
    for g, wi, wh, bi, bh in zip("rzn", _split(w_ih, 3, 0), _split(w_hh, 3, 0),
                                 _split(b_ih, 3, 0), _split(b_hh, 3, 0), strict=True):
        p[f"w_i{g}"], p[f"w_h{g}"] = wi.T, wh.T
        p[f"b_i{g}"], p[f"b_h{g}"] = bi, bh
    return _jnp(p)


def _gru_to_torch(params: Mapping):
    if "w_ir" in params and gru_variant(params) == "reset_before":
        raise ValueError("torch.nn.GRU is reset_after; these params are reset_before")
    check_params(GRU, params)
    keys = [f"{k}{g}" for k in ("w_i", "w_h", "b_i", "b_h") for g in "rzn"]
    p = _our_params(params, keys, "GRU")
    cat = lambda k: np.concatenate([p[f"{k}{g}"] for g in "rzn"], axis=0)  # noqa: E731
    return (np.concatenate([p[f"w_i{g}"].T for g in "rzn"], axis=0),
            np.concatenate([p[f"w_h{g}"].T for g in "rzn"], axis=0), cat("b_i"), cat("b_h"))


def from_torch(state_dict):
    """Our reset_after GRU params from a `torch.nn.GRU`'s state dict (or the module).
    Values may be torch tensors or numpy arrays.

    A single-layer unidirectional GRU gives one params dict (for `gru_scan`);
    ``num_layers > 1`` or ``bidirectional=True`` gives `init_stacked`'s list
    ``[{"fwd": ..., "bwd": ...}, ...]`` (``_reverse`` keys go to ``bwd``) for
    ``stacked_scan("gru", ...)``, whose carry is torch's h_0 / h_n layout.
    """
    return _from_torch(state_dict, 3, "torch.nn.GRU", _gru_from_torch)


def to_torch(params) -> dict:
    """A `torch.nn.GRU(I, H, batch_first=...)` state dict from our reset_after params
    (keys ..._l0), or from `init_stacked` layers for ``nn.GRU(num_layers=L,
    bidirectional=...)``: torch tensors if torch is importable, else numpy arrays."""
    return _to_torch(params, _gru_to_torch)


# --------------------------------------------------------------------------- torch LSTM


def _lstm_from_torch(w_ih, w_hh, b_ih, b_hh) -> dict:
    p = {}
    for g, wi, wh, b in zip("ifgo", _split(w_ih, 4, 0), _split(w_hh, 4, 0),
                            _split(b_ih + b_hh, 4, 0), strict=True):
        p[f"w_i{g}"], p[f"w_h{g}"], p[f"b_{g}"] = wi.T, wh.T, b
    return _jnp(p)


def _lstm_to_torch(params: Mapping):
    check_params(LSTM, params)
    keys = [f"{k}{g}" for k in ("w_i", "w_h", "b_") for g in "ifgo"]
    p = _our_params(params, keys, "LSTM")
    b = np.concatenate([p[f"b_{g}"] for g in "ifgo"], axis=0)
    return (np.concatenate([p[f"w_i{g}"].T for g in "ifgo"], axis=0),
            np.concatenate([p[f"w_h{g}"].T for g in "ifgo"], axis=0), b, np.zeros_like(b))


def from_torch_lstm(state_dict):
    """Our LSTM params from a `torch.nn.LSTM`'s state dict (or the module); torch's
    two biases add into our one bias per gate. Multi-layer or bidirectional
    modules give `init_stacked` layers, as `from_torch`."""
    return _from_torch(state_dict, 4, "torch.nn.LSTM", _lstm_from_torch)


def to_torch_lstm(params) -> dict:
    """A `torch.nn.LSTM` state dict from our LSTM params or `init_stacked` layers
    (bias_hh is zero)."""
    return _to_torch(params, _lstm_to_torch)


# --------------------------------------------------------------------------- Keras GRU

_KERAS_ORDER = "zrn"  # Keras stacks z, r, h(=our n)


def from_keras(weights: Sequence, reset_after: bool = True) -> dict:
    """Our GRU params from a Keras GRU layer's `get_weights()`:
    [kernel [I, 3H], recurrent_kernel [H, 3H], bias] with bias (2, 3H) if
    `reset_after` else (3H,); a layer built with use_bias=False gives two arrays."""
    if not isinstance(weights, Sequence) or len(weights) not in (2, 3):
        raise ValueError("expected [kernel, recurrent_kernel, bias] from a Keras GRU's "
                         f"get_weights(), got {type(weights).__name__} of length "
                         f"{len(weights) if isinstance(weights, Sequence) else '?'}")
    rk = _np(weights[1], "recurrent_kernel")
    if rk.ndim != 2 or rk.shape[1] != 3 * rk.shape[0]:
        raise ValueError(f"recurrent_kernel: expected shape [H, 3*H], got {rk.shape}")
    H = rk.shape[0]
    k = _np(weights[0], "kernel")
    if k.ndim != 2 or k.shape[1] != 3 * H:
        raise ValueError(f"kernel: expected shape [I, {3 * H}], got {k.shape}")
    bshape = (2, 3 * H) if reset_after else (3 * H,)
    if len(weights) == 3:
        b = _np(weights[2], "bias")
        if b.shape != bshape:
            hint = " (reset_after=False?)" if b.shape == (3 * H,) else (
                " (reset_after=True?)" if b.shape == (2, 3 * H) else "")
            raise ValueError(f"bias: expected shape {bshape} for reset_after={reset_after}, "
                             f"got {b.shape}{hint}")
    else:
        b = np.zeros(bshape, k.dtype)
    b = b.reshape(-1, 3 * H)
    p = {}
    for g, wi, wh, bi in zip(_KERAS_ORDER, _split(k, 3, 1), _split(rk, 3, 1), _split(b[0], 3, 0),
                             strict=True):
        p[f"w_i{g}"], p[f"w_h{g}"], p[f"b_i{g}"] = wi, wh, bi
    if reset_after:
        for g, bh in zip(_KERAS_ORDER, _split(b[1], 3, 0), strict=True):
            p[f"b_h{g}"] = bh
    return _jnp(p)


def to_keras(params: Mapping) -> list[np.ndarray]:
    """[kernel, recurrent_kernel, bias] for `keras.layers.GRU(H, reset_after=...)`
    .set_weights(), reset_after as the params' variant."""
    check_params(GRU, params)
    reset_after = gru_variant(params) == "reset_after"
    keys = [f"{k}{g}" for k in ("w_i", "w_h", "b_i") + (("b_h",) if reset_after else ())
            for g in "rzn"]
    p = _our_params(params, keys, "GRU")
    cat = lambda k, axis: np.concatenate([p[f"{k}{g}"] for g in _KERAS_ORDER], axis)  # noqa: E731
    bias = np.stack([cat("b_i", 0), cat("b_h", 0)]) if reset_after else cat("b_i", 0)
    return [cat("w_i", 1), cat("w_h", 1), bias]


# --------------------------------------------------------------------------- flax GRUCell


def from_flax_gru_cell(variables_or_params: Mapping) -> dict:
    """Our reset_after GRU params from `flax.linen.GRUCell` variables, its
    `variables["params"]`, or an `nn.RNN(GRUCell)`'s (under ``cell``).
    flax has no b_hr, b_hz: they are set to zero."""
    p = variables_or_params
    for key in ("params", "cell"):
        if isinstance(p, Mapping) and key in p:
            p = p[key]
    if not isinstance(p, Mapping) or any(g not in p for g in _FLAX_GRU):
        got = sorted(p) if isinstance(p, Mapping) else type(p).__name__
        raise ValueError(f"expected flax GRUCell params with {sorted(_FLAX_GRU)}, got {got}")
    out = {}
    for g, has_bias in _FLAX_GRU.items():
        if "kernel" not in p[g] or (has_bias and "bias" not in p[g]):
            raise ValueError(f"flax GRUCell params[{g!r}] lacks kernel or bias: {sorted(p[g])}")
        out[f"w_{g}"] = _np(p[g]["kernel"], f"{g}.kernel")
    H = out["w_hn"].shape[-1]
    for g, has_bias in _FLAX_GRU.items():
        want = (H, H) if g[0] == "h" else (out["w_ir"].shape[0], H)
        _shape(out[f"w_{g}"], want, f"{g}.kernel")
        if has_bias:
            out[f"b_{g}"] = _shape(_np(p[g]["bias"], f"{g}.bias"), (H,), f"{g}.bias")
    out["b_hr"] = np.zeros_like(out["b_hn"])
    out["b_hz"] = np.zeros_like(out["b_hn"])
    return _jnp(out)


def to_flax_gru_cell(params: Mapping) -> dict:
    """`flax.linen.GRUCell(features=H)` params (use as ``{"params": ...}``) from our
    reset_after params; b_hr and b_hz fold into the ir and iz biases."""
    if "w_ir" in params and gru_variant(params) == "reset_before":
        raise ValueError("flax GRUCell is reset_after; these params are reset_before")
    check_params(GRU, params)
    keys = [f"{k}{g}" for k in ("w_i", "w_h", "b_i", "b_h") for g in "rzn"]
    p = {k: jnp.asarray(v) for k, v in _our_params(params, keys, "GRU").items()}
    return {
        "ir": {"kernel": p["w_ir"], "bias": p["b_ir"] + p["b_hr"]},
        "iz": {"kernel": p["w_iz"], "bias": p["b_iz"] + p["b_hz"]},
        "in": {"kernel": p["w_in"], "bias": p["b_in"]},
        "hr": {"kernel": p["w_hr"]},
        "hz": {"kernel": p["w_hz"]},
        "hn": {"kernel": p["w_hn"], "bias": p["b_hn"]},
    }


__all__ = [
    "from_flax_gru_cell", "from_keras", "from_torch", "from_torch_lstm", "to_flax_gru_cell",
    "to_keras", "to_torch", "to_torch_lstm",
]
