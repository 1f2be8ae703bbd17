"""A run's folder: created, checked against the config it was started with, written.

The config a run started with is stored as config.json; a run started again in
the same folder must have the same config, apart from RESUMABLE_KEYS (keys that
do not change what is trained, e.g. train.steps to train longer).
"""

from __future__ import annotations

import logging
import os

from gru_jax.harness.config import RESUMABLE_KEYS
from gru_jax.harness.errors import WorkdirError
from gru_jax.harness.files import CONFIG_FILE, read_json, write_json_atomic
from gru_jax.harness.keys import flatten, unflatten

log = logging.getLogger(__name__)


def prepare_workdir(workdir: str, config_flat: dict) -> None:
    """Create `workdir` and store the config, or check it against the stored one.

    Raises WorkdirError if the folder cannot be written, or holds a run whose
    config differs in a key outside RESUMABLE_KEYS.
    """
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise WorkdirError(f"workdir {workdir}: cannot write there ({e.strerror or e}); "
                           "choose another --workdir") from None
    path = os.path.join(workdir, CONFIG_FILE)
    try:
        stored = read_json(path)
    except ValueError:
        raise WorkdirError(f"workdir {workdir}: {CONFIG_FILE} is not valid JSON; "
                           "use a new --workdir or delete this one") from None
    if stored is None:
        if os.path.isdir(os.path.join(workdir, "checkpoints")) and os.listdir(
                os.path.join(workdir, "checkpoints")):
            raise WorkdirError(f"workdir {workdir}: has checkpoints but no {CONFIG_FILE}, so "
                               "it is not a gru_jax run; use a new --workdir")
    else:
        stored = flatten(stored)
        diff = sorted(k for k in set(stored) | set(config_flat)
                      if k not in RESUMABLE_KEYS and stored.get(k, "<unset>")
                      != config_flat.get(k, "<unset>"))
        if diff:
            shown = ", ".join(f"{k}: {stored.get(k, '<unset>')!r} -> "
                              f"{config_flat.get(k, '<unset>')!r}" for k in diff[:6])
            more = f" (and {len(diff) - 6} more)" if len(diff) > 6 else ""
            raise WorkdirError(
                f"workdir {workdir} holds a run with a different config ({shown}{more}); "
                "use a new --workdir, or delete the old one to start over")
        old_steps, new_steps = stored.get("train.steps"), config_flat.get("train.steps")
        if old_steps != new_steps and config_flat.get("train.schedule") == "cosine":
            log.warning("train.steps changed from %s to %s: the cosine schedule is stretched "
                        "to the new length from the resumed step on", old_steps, new_steps)
    write_json_atomic(path, unflatten(config_flat))
