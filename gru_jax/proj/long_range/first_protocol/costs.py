"""The study's cost table: train-step time and memory of each arm, measured side by side.

`measure_study_costs(study)` writes costs.json beside the study's runs; the
report (`gru_jax.proj.long_range.first_protocol.report`) reads it into the comparison table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gru_jax.proj.long_range.first_protocol.results import (
    curve_hidden,
    equal_params_hidden,
    gradient_length,
    load_study,
)


def measure_costs(config, pairs: Sequence[tuple[str, int]], *, repeats: int = 5,
                  steps: int = 10) -> dict:
    """Train-step time and memory of each (arm, hidden) on `config`'s task, side by side in
    this process: each repeat times one call of the trainer's compiled loop over `steps`
    steps for every pair in turn (interleaved, so machine load hits all alike); the
    median per pair of the time per step. Memory is XLA's account of that program
    (`compiled_memory_bytes`, the trainer's `step_memory_bytes`)."""
    import time

    import jax

    from gru_jax.harness import steps as harness_steps
    from gru_jax.harness.config import apply_overrides, make_task
    from gru_jax.harness.machine import machine_info

    progs = []
    for arm, hidden in pairs:
        cell = arm.removeprefix("chrono-")
        c = apply_overrides(config, {"model.cell": cell, "model.chrono": arm != cell,
                                     "model.hidden_size": hidden})
        task = make_task(c)
        # The trainer's own program for one run (batch drawn inside the step).
        keys = jax.random.split(jax.random.key(0), 2)
        _, replicated = harness_steps.data_mesh()
        args = jax.device_put((harness_steps.create_train_state(keys[:1], c, task), keys[1:],
                               jax.numpy.ones((1,), jax.numpy.float32)), replicated)
        progs.append((harness_steps.train_loop_program(*args, task, c.train.batch_size), args))
    n = jax.numpy.int32(steps)
    times: list[list[float]] = [[] for _ in pairs]
    for _ in range(repeats):
        for k, (loop, (state, keys, scales)) in enumerate(progs):
            jax.block_until_ready(loop(state, keys, scales, jax.numpy.int32(1)))  # warm
            t0 = time.perf_counter()
            jax.block_until_ready(loop(state, keys, scales, n))
            times[k].append(1000 * (time.perf_counter() - t0) / steps)
    return {
        "seq_len": config.task.seq_len, "batch_size": config.train.batch_size,
        "repeats": repeats, "steps": steps, "machine": machine_info(),
        "rows": [{"arm": arm, "hidden": h, "step_ms": float(np.median(ts)),
                  "step_ms_all": ts, "memory_bytes": harness_steps.compiled_memory_bytes(p[0])}
                 for (arm, h), ts, p in zip(pairs, times, progs, strict=True)],
    }


EXPERIMENTS = Path(__file__).resolve().parents[3] / "experiments"  # of this checkout


def measure_study_costs(study: str | os.PathLike,
                        experiments: str | os.PathLike = EXPERIMENTS) -> dict:
    """costs.json in `study`: `measure_costs` on its first task's experiment config at the
    gradient figure's length, for every arm at CURVE_HIDDEN and at equal parameters."""
    from gru_jax.harness.sweep import load_experiment

    tr = load_study(study)[0]
    hidden = curve_hidden(tr)
    pairs = sorted({(a, hidden) for a in tr.arms}
                   | set(equal_params_hidden(tr, ("gru", hidden)).items()))
    config = load_experiment(Path(experiments) / f"long_range_{tr.name}.py").get_config()
    with config.unlocked():
        config.task.seq_len = gradient_length(tr) or config.task.seq_len
    costs = measure_costs(config, pairs)
    (Path(study) / "costs.json").write_text(json.dumps(costs, indent=1) + "\n")
    return costs
