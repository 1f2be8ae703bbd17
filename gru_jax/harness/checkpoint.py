"""Checkpoints with Orbax, and the files around a run that must survive a crash.

Layout of a workdir::

    config.json          the config the run was started with (compared on resume)
    the summary          written at the end (and on divergence, failure, preemption)
    checkpoints/<step>/  Orbax: "state" (the train state pytree) and "meta" (JSON:
                         eval history, timings, ...), one folder per saved step
    events.out.tfevents.*

Why a crash cannot leave a bad latest checkpoint behind: Orbax writes each
step into a temporary folder and renames it to ``<step>`` only once every
file is written (the rename is atomic on a local file system); unfinished
temporary folders are ignored and cleaned up on the next start, and
the preservation policy deletes an old step only after a newer one is complete. A
step folder that is damaged afterwards (a truncated or deleted file) fails to
restore; `Checkpointer.restore_latest` then moves it aside into
``checkpoints_corrupt/`` (nothing is deleted) and falls back to the previous
step, with a warning.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

log = logging.getLogger(__name__)


class Checkpointer:
    """An Orbax CheckpointManager over ``<workdir>/checkpoints``: Orbax decides when
    (``FixedIntervalPolicy(every)``) and what stays (``LatestN(keep)``); this class
    adds the corrupt-step fallback (`restore_latest`), which Orbax lacks.

    Saves are synchronous by default (a finished `save` is a complete checkpoint:
    the trainer writes its meta and may exit right after; the states here are
    small). ``async_save=True`` lets Orbax write in the background (Orbax's
    ``enable_async_checkpointing``; still crash-safe: the step's folder appears
    only when complete); `close` waits for it.
    """

    def __init__(self, workdir: str, *, keep: int, every: int, async_save: bool = False):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.workdir = workdir
        self.every = every
        self.async_save = async_save
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        policies = ocp.checkpoint_managers
        self._options = ocp.CheckpointManagerOptions(
            save_decision_policy=policies.FixedIntervalPolicy(every),
            preservation_policy=policies.LatestN(keep),
            enable_async_checkpointing=async_save,
            create=True,
            cleanup_tmp_directories=True,
        )
        self._open()

    def _open(self):
        self.manager = self._ocp.CheckpointManager(self.directory, options=self._options,
                                                   item_names=("state", "meta"))

    def steps(self) -> list[int]:
        """The complete checkpoints' steps, oldest first."""
        return sorted(self.manager.all_steps())

    def due(self, step: int) -> bool:
        """`step` is a save step: a multiple of `every`, as the FixedIntervalPolicy
        decides (asked here without Orbax's per-call bookkeeping: it runs every step)."""
        return step % self.every == 0

    def save(self, step: int, state, meta: dict, *, force: bool = False) -> bool:
        """Save `state` (a pytree) and `meta` (JSON-able) at `step` if Orbax's policy
        says so or `force` (the last step, a stop); True if it saved."""
        ocp = self._ocp
        if step in self.manager.all_steps():
            return False  # already there (a resumed run's first step)
        saved = self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                    meta=ocp.args.JsonSave(meta)),
            force=force,
        )
        if not self.async_save:
            self.manager.wait_until_finished()
        return bool(saved)

    def restore(self, step: int, target):
        """(state, meta) at `step`; `target` is a pytree of the same structure
        (arrays or jax.ShapeDtypeStruct) that fixes shapes, dtypes and types."""
        import jax

        ocp = self._ocp
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        out = self.manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                    meta=ocp.args.JsonRestore()),
        )
        return out["state"], out["meta"]

    def restore_latest(self, target):
        """(step, state, meta) from the newest checkpoint that restores, or None.

        A checkpoint that fails to restore is moved to
        ``<workdir>/checkpoints_corrupt/<step>-<time>`` with a warning, and the
        one before it is tried.
        """
        for step in reversed(self.steps()):
            try:
                state, meta = self.restore(step, target)
                return step, state, meta
            except Exception as e:  # noqa: BLE001 - any failure to read means: do not use it
                dest = os.path.join(self.workdir, "checkpoints_corrupt",
                                    f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
                log.warning(
                    "checkpoint at step %d cannot be restored (%s: %s); moving it to %s "
                    "and falling back to the previous checkpoint",
                    step, type(e).__name__, (str(e).splitlines() or [""])[0][:200], dest)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.move(os.path.join(self.directory, str(step)), dest)
                self.manager.reload()  # forget the moved step
        return None

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
