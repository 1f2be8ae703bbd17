"""The Orbax wrapper: Orbax's interval and preservation policies, and the corrupt-step
fallback it adds."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np

from gru_jax.harness.checkpoint import Checkpointer


def test_saves_on_the_interval_keeps_the_newest_and_skips_a_corrupt_step(tmp_path):
    ckpt = Checkpointer(str(tmp_path), keep=2, every=2)
    saved = [s for s in range(1, 8) if ckpt.save(s, {"w": jnp.full((2,), float(s))}, {"s": s})]
    assert saved == [2, 4, 6] and ckpt.steps() == [4, 6]  # LatestN(2)
    assert ckpt.save(7, {"w": jnp.full((2,), 7.0)}, {"s": 7}, force=True)
    assert ckpt.steps() == [6, 7] and not ckpt.save(7, {"w": jnp.zeros(2)}, {}, force=True)
    # damage step 7: restore_latest moves it aside and falls back to 6
    for root, _, files in os.walk(tmp_path / "checkpoints" / "7" / "state"):
        for f in files:
            os.remove(os.path.join(root, f))
    step, state, meta = ckpt.restore_latest({"w": jnp.zeros(2)})
    assert (step, meta) == (6, {"s": 6})
    np.testing.assert_array_equal(state["w"], [6.0, 6.0])
    assert ckpt.steps() == [6] and len(os.listdir(tmp_path / "checkpoints_corrupt")) == 1
    ckpt.close()


def test_async_saves_are_complete_after_close(tmp_path):
    ckpt = Checkpointer(str(tmp_path), keep=3, every=1, async_save=True)
    for s in (1, 2):
        assert ckpt.save(s, {"w": jnp.full((3,), float(s))}, {"s": s})
    ckpt.close()
    again = Checkpointer(str(tmp_path), keep=3, every=1)
    step, state, meta = again.restore_latest({"w": jnp.zeros(3)})
    assert step == 2 and meta == {"s": 2}
    np.testing.assert_array_equal(state["w"], [2.0, 2.0, 2.0])
    again.close()
