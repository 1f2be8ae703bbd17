"""The second protocol's cost table: every arm's training step at equal hidden size and
at equal parameter count, time and memory measured side by side in one process.

Equal parameters: per arm the hidden size whose parameter count (the protocol's
model on the task: minGRU stacked as its arm says) is nearest the GRU's at the
reference size, within PARAMS_TOLERANCE; found by counting, not by training.
Times: the trainer's own compiled loop (`steps.train_loop_program`, batch drawn
inside the step) over STEPS steps, every pair in turn per round (the bench's one
timer, `gru_jax.bench.timing.interleaved_medians`), medians; memory: XLA's account
of that program (the trainer's `step_memory_bytes`).

    python -m gru_jax.proj.long_range.costs results/long_range   # -> search/costs.json
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from gru_jax.proj.long_range import design

COSTS_FILE = "costs.json"
REFERENCE = ("gru", 64)  # the equal-parameter target: the GRU at H = 64
PARAMS_TOLERANCE = 0.10
SEQ_LEN = {"adding": 200}  # the calibration's stage-2 length: long enough to be a scan
STEPS, REPEATS = 10, 15  # 15 rounds: the shared 2 cores swing by 30% between rounds


def _config(task: str, arm: str, hidden: int, seq_len: int):
    from gru_jax.harness.config import apply_overrides

    return apply_overrides(design.base_config(task),
                           design.point(task, arm, hidden, seq_len, 0, 1e-2))


def num_params(task: str, arm: str, hidden: int, seq_len: int = 10) -> int:
    """The parameter count of the protocol's model (shapes only: nothing is run)."""
    import jax

    from gru_jax.harness.config import make_task
    from gru_jax.harness.models import init_model

    config = _config(task, arm, hidden, seq_len)
    t = make_task(config)
    shapes = jax.eval_shape(lambda k: init_model(k, config.model, t.input_size,
                                                 t.output_size, seq_len=t.seq_len),
                            jax.random.key(0))
    return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(shapes))


def equal_params_hidden(task: str, arm: str, target: int, sizes=range(2, 4097)) -> int:
    """The hidden size of `arm` whose parameter count is nearest `target` (in ratio);
    ValueError if none is within PARAMS_TOLERANCE."""
    counts = {h: num_params(task, arm, h) for h in _candidates(task, arm, target, sizes)}
    h = min(counts, key=lambda h: (abs(math.log(counts[h] / target)), h))
    if abs(counts[h] / target - 1) > PARAMS_TOLERANCE:
        raise ValueError(f"{arm}: no hidden size within {PARAMS_TOLERANCE:.0%} of {target} "
                         f"parameters (nearest H={h}: {counts[h]})")
    return h


def _candidates(task: str, arm: str, target: int, sizes) -> list[int]:
    """The sizes around where the count crosses `target` (counts grow with H: bisect)."""
    sizes = list(sizes)
    lo, hi = 0, len(sizes) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if num_params(task, arm, sizes[mid]) < target:
            lo = mid
        else:
            hi = mid
    return sizes[max(lo - 1, 0): hi + 2]


def pairs(task: str = "adding", arms=tuple(design.ARMS)) -> list[tuple[str, int]]:
    """(arm, hidden) at the reference size and at the reference's parameter count."""
    target = num_params(task, *REFERENCE)
    out = {(arm, REFERENCE[1]) for arm in arms}
    out |= {(arm, equal_params_hidden(task, arm, target)) for arm in arms}
    return sorted(out, key=lambda p: (list(design.ARMS).index(p[0]), p[1]))


def measure_configs(configs: dict, *, steps: int = STEPS, repeats: int = REPEATS) -> dict:
    """{key: config} -> {key: (median train-step ms, every round's ms, XLA memory bytes)}
    of the trainer's compiled loop for each config, timed side by side."""
    import jax
    import jax.numpy as jnp

    from gru_jax.bench.timing import interleaved_medians
    from gru_jax.harness import steps as harness_steps
    from gru_jax.harness.config import make_task

    progs, memory = {}, {}
    n = jnp.int32(steps)
    for key, c in configs.items():
        t = make_task(c)
        keys = jax.random.split(jax.random.key(0), 2)
        _, replicated = harness_steps.data_mesh()
        args = jax.device_put((harness_steps.create_train_state(keys[:1], c, t), keys[1:],
                               jnp.ones((1,), jnp.float32)), replicated)
        loop = harness_steps.train_loop_program(*args, t, c.train.batch_size)
        progs[key] = lambda loop=loop, args=args: loop(*args, n)
        memory[key] = harness_steps.compiled_memory_bytes(loop)
    samples: dict = {}
    ms = interleaved_medians(progs, repeats, samples=samples)
    return {k: (ms[k] / steps, [v / steps for v in samples[k]], memory[k]) for k in configs}


def measure(task: str, pairs_: list[tuple[str, int]], *, seq_len: int | None = None,
            steps: int = STEPS, repeats: int = REPEATS) -> dict:
    """Median train-step ms and XLA memory per (arm, hidden) of the protocol, side by side."""
    from gru_jax.bench.machine import describe

    seq_len = seq_len or SEQ_LEN[task]
    timed = measure_configs({p: _config(task, *p, seq_len) for p in pairs_}, steps=steps,
                            repeats=repeats)
    return {"task": task, "seq_len": seq_len,
            "batch_size": design.base_config(task).train.batch_size,
            "steps": steps, "repeats": repeats, "machine": describe(),
            "rows": [{"arm": arm, "hidden": h, "num_params": num_params(task, arm, h),
                      "step_ms": timed[(arm, h)][0], "step_ms_all": timed[(arm, h)][1],
                      "memory_bytes": timed[(arm, h)][2]} for arm, h in pairs_]}


def write(root: str | os.PathLike, task: str = "adding") -> dict:
    """Measure every pair of `task` and write <root>/search/costs.json."""
    costs = measure(task, pairs(task))
    path = Path(root) / "search" / COSTS_FILE
    path.write_text(json.dumps(costs, indent=1) + "\n")
    return costs


def read(root: str | os.PathLike) -> dict | None:
    path = Path(root) / "search" / COSTS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        raise SystemExit("usage: python -m gru_jax.proj.long_range.costs STUDY_DIR")
    for row in write(sys.argv[1])["rows"]:
        print(row["arm"], row["hidden"], row["num_params"], f"{row['step_ms']:.2f} ms",
              row["memory_bytes"])
