"""What a study run costs beyond its steps: the trainer on the protocol's points in one
process, as a sweep worker trains them (the first seed compiles, the others find its
programs), each run's wall time against its stepping time (steps x median step
time), itemised (compile, eval and diagnostics, checkpoints, logs); and the same
ratio over a committed study's runs.

    python scripts/bench.py --mode=overhead      # (gru_jax.commands.bench)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from gru_jax.proj.long_range import design

POINT = {"task": "adding", "arm": "gru", "hidden": 32, "seq_len": 200, "lr": 1e-1}


def run_overhead(steps: int = 400, seeds=(0, 1, 2), point=POINT) -> list[dict]:
    """Train `point` for exactly `steps` steps per seed (no early stop) with the
    protocol's eval, diagnostics and checkpoint cadence; per run {seed, wall_s,
    stepping_s, ratio, and the summary's time breakdown}."""
    from gru_jax.harness.config import apply_overrides
    from gru_jax.harness.train import train_and_evaluate

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            p = design.point(point["task"], point["arm"], point["hidden"], point["seq_len"],
                             seed, point["lr"], steps)
            config = apply_overrides(design.base_config(point["task"]),
                                     {**p, "train.stop_when_solved": 0, "train.progress": False})
            s = train_and_evaluate(config, str(Path(tmp) / f"seed{seed}"))
            stepping = s["step"] * s["step_time_ms"] / 1000
            out.append({"seed": seed, "wall_s": s["wall_time_sec"], "stepping_s": stepping,
                        "ratio": s["wall_time_sec"] / stepping, **s["time_breakdown"]})
    return out


def study_overhead(root: str | Path) -> dict | None:
    """A committed second-protocol study's wall over stepping: all runs, and runs of
    at least 200 steps by length band."""
    from gru_jax.proj.long_range.report import load_studies, overhead

    runs = [r for s in load_studies(Path(root) / "search") for r in s.runs]
    if not runs:
        return None
    bands = {"T < 160": lambda t: t < 160, "160 <= T < 640": lambda t: 160 <= t < 640,
             "T >= 640": lambda t: t >= 640}
    long = [r for r in runs if r.last_step >= 200]
    return {"all": overhead(runs), ">= 200 steps": overhead(long),
            **{band: overhead([r for r in long if f(r.seq_len)]) for band, f in bands.items()}}
