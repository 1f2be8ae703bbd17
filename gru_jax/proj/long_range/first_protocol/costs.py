"""The study's cost table: train-step time and memory of each arm, measured side by side.

`measure_study_costs(study)` writes costs.json beside the study's runs; the
report (`gru_jax.proj.long_range.first_protocol.report`) reads it into the comparison table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from gru_jax.proj.long_range.first_protocol.results import (
    curve_hidden,
    equal_params_hidden,
    gradient_length,
    load_study,
)


def measure_costs(config, pairs: Sequence[tuple[str, int]], *, repeats: int = 5,
                  steps: int = 10) -> dict:
    """Train-step time and memory of each (arm, hidden) on `config`'s task, side by side in
    this process (`gru_jax.proj.long_range.costs.measure_configs`: the trainer's compiled
    loop over `steps` steps per pair in turn, medians of `repeats` rounds; memory is
    XLA's account of that program, the trainer's `step_memory_bytes`)."""
    from gru_jax.harness.config import apply_overrides
    from gru_jax.harness.machine import machine_info
    from gru_jax.proj.long_range.costs import measure_configs

    configs = {}
    for arm, hidden in pairs:
        cell = arm.removeprefix("chrono-")
        configs[(arm, hidden)] = apply_overrides(config, {
            "model.cell": cell, "model.chrono": arm != cell, "model.hidden_size": hidden})
    timed = measure_configs(configs, steps=steps, repeats=repeats)
    return {
        "seq_len": config.task.seq_len, "batch_size": config.train.batch_size,
        "repeats": repeats, "steps": steps, "machine": machine_info(),
        "rows": [{"arm": arm, "hidden": h, "step_ms": timed[(arm, h)][0],
                  "step_ms_all": timed[(arm, h)][1], "memory_bytes": timed[(arm, h)][2]}
                 for arm, h in pairs],
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
