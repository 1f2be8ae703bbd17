"""What the sweep tests share (tests/harness/test_sweep.py, test_stop_when_solved.py,
tests/proj/test_long_range_first_protocol.py): a small config and a fake trainer that writes
summary.json, so they need neither JAX nor the real trainer."""

import json
import threading
import time
from pathlib import Path

import ml_collections


def base_config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = ml_collections.ConfigDict({"cell": "gru", "hidden_size": 8, "num_layers": 1})
    c.task = ml_collections.ConfigDict({"name": "adding", "seq_len": 10})
    c.train = ml_collections.ConfigDict(
        {"steps": 20, "batch_size": 4, "learning_rate": 1e-3, "eval_every": 10,
         "checkpoint_every": 10}
    )
    c.lock()
    return c


def no_validate(config):  # the fake configs here are not the trainer's full config
    return None


class Preempted(Exception):
    """Like gru_jax.harness.train.Preempted: raised after a "preempted" summary is written."""


class FakeTrainer:
    """Writes a plausible summary.json; `fail` cells raise, `preempt` cells are
    preempted on their first call (summary written, then Preempted raised)."""

    def __init__(self, fail=(), preempt=(), sleep=0.0):
        self.calls = []
        self.fail, self.preempt, self.sleep = set(fail), set(preempt), sleep
        self._lock = threading.Lock()

    def __call__(self, config, workdir):
        with self._lock:
            self.calls.append(workdir)
            first = self.calls.count(workdir) == 1
        time.sleep(self.sleep)
        cell = config.model.cell
        if cell in self.fail:
            raise RuntimeError(f"boom in {cell}")
        status = "preempted" if (cell in self.preempt and first) else "done"
        summary = {
            "status": status, "step": config.train.steps, "num_devices": 1,
            "final": {"loss": 0.01, "mse": 0.005}, "num_params": 100,
            "solved": status == "done", "steps_to_solve": 10 if status == "done" else None,
            "steps_per_sec": 50.0, "wall_time_sec": 0.4, "grad_horizon": 12,
            "peak_memory_bytes": 2**20, "step_time_ms": 20.0,
            "eval_history": [{"step": 10, "loss": 0.02, "mse": 0.01}],
            "config": config.to_dict(),
        }
        (Path(workdir) / "summary.json").write_text(json.dumps(summary))
        if status == "preempted":
            raise Preempted("preempted at step 20")
        return summary


# ---------------------------------------------------------------- expansion
