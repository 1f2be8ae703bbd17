"""Flat dotted config keys ("model.cell") and the key sets the harness's parts share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Keys in which the members of a packed group may differ: the seed (a pytree leaf of
# nothing static) and the learning rate (a per-member scale of one schedule).
PACK_KEYS = frozenset({"seed", "train.learning_rate"})
# Config keys that say how a run is watched, not what is trained: not in TensorBoard's HParams.
NOT_HPARAMS = frozenset({"train.progress", "train.log_every", "train.keep_checkpoints",
                         "train.checkpoint_every", "train.eval_every", "train.diagnose_every"})


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; ConfigDicts are read through `to_dict()`."""
    if hasattr(d, "to_dict"):
        d = d.to_dict()
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping) or hasattr(v, "to_dict"):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def unflatten(flat: Mapping[str, Any]) -> dict:
    """{"a.b": 1} -> {"a": {"b": 1}}: the inverse of `flatten`."""
    out: dict = {}
    for k, v in flat.items():
        node = out
        *path, leaf = k.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out
