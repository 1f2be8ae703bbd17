"""The trainer's ensemble benchmark (`scripts/bench.py --mode=ensemble`): K seeds
trained with the trainer's own compiled program, apart, packed (one vmapped
program) and in two processes; wall time from "go" to the last "done", rounds
interleaved, medians. Each variant runs in worker processes
(`python -m gru_jax.harness.ensemble_bench MEMBERS PACKED STEPS`), so XLA's
device flags can differ per worker."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

# The trainer's program (gru_jax.harness.steps.train_loop_program: n steps per call, data
# sampled inside the step) on the adding problem at hidden 32, T 50, batch 64: a small
# GRU, where a seed sweep is many runs that each leave most of the machine idle.
ENSEMBLE_CONFIG = {"model.hidden_size": 32, "task.seq_len": 50, "train.batch_size": 64,
                   "train.schedule": "constant", "train.warmup_steps": 0}


def ensemble_worker(members: int, packed: bool, steps: int) -> None:
    """Builds `members` train states of ENSEMBLE_CONFIG (seeds 0..members-1), warms
    up, prints "ready"; then for every "go" line on stdin trains each for `steps`
    steps (packed: one vmapped program; else one after another, one compiled loop
    shared by all) and prints "done <seconds>". The devices are the process's own
    (XLA_FLAGS set by the parent); batches are split over them as in the trainer."""
    import jax
    import jax.numpy as jnp

    from gru_jax.harness import steps as harness_steps
    from gru_jax.harness.config import apply_overrides, base_config, make_task

    config = apply_overrides(base_config("adding"), ENSEMBLE_CONFIG)
    task = make_task(config)
    roots = [jax.random.key(seed) for seed in range(members)]
    init_keys = [jax.random.fold_in(r, 0) for r in roots]
    data_keys = [jax.random.fold_in(r, 1) for r in roots]
    _, replicated = harness_steps.data_mesh()
    groups = [list(range(members))] if packed else [[i] for i in range(members)]
    # One state for all (one set of static fields, so one program serves every group).
    every = harness_steps.create_train_state(jnp.stack(init_keys), config, task)
    jobs = [jax.device_put((harness_steps.stack([harness_steps.unstack(every, i) for i in g]),
                            jnp.stack([data_keys[i] for i in g]),
                            jnp.ones((len(g),), jnp.float32)), replicated) for g in groups]
    # The trainer's own program (a pack of K, or of one reused for every member), called
    # once for n steps as the trainer calls it between two events.
    program = harness_steps.train_loop_program(*jobs[0], task, config.train.batch_size)

    def run(jobs, n):
        out = []
        for st, keys, scales in jobs:
            st, _sums = program(st, keys, scales, jnp.int32(n))
            out.append((st, keys, scales))
        return jax.block_until_ready(out)

    t = time.perf_counter()
    jobs = run(jobs, 2)
    print(f"ready {time.perf_counter() - t:.3f}", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        t = time.perf_counter()
        jobs = run(jobs, steps)
        print(f"done {time.perf_counter() - t:.6f}", flush=True)


class _Worker:
    """An ensemble_worker subprocess (optionally with fake host devices)."""

    def __init__(self, members: int, packed: bool, steps: int, devices: int = 1):
        env = dict(os.environ)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_force_host_platform_device_count={devices}").strip()
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, "-m", "gru_jax.harness.ensemble_bench", str(members),
               str(packed), str(steps)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        self.compile_s = None

    def wait_ready(self) -> None:
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"ensemble worker did not start: {line!r}")
        self.compile_s = float(line.split()[1])

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def done(self) -> float:
        return float(self.proc.stdout.readline().split()[1])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def run_ensemble(K: int, steps: int, repeats: int, dp: bool = False) -> list[dict]:
    """Each variant trains K seeds for `steps` steps per round; rounds interleave
    the variants (load on a shared machine hits all alike); medians of the wall
    time from "go" to the last process's "done"."""
    half = K // 2
    variants = {  # name -> (worker specs (members, packed, devices), note)
        "apart": ([(K, False, 1)], f"{K} runs one after another, one process"),
        "packed": ([(K, True, 1)], f"one vmapped program of {K}, one process"),
        "2 procs x packed": ([(half, True, 1)] * 2,
                             f"2 processes at once, each a vmapped program of {half}"),
        "2 procs x apart": ([(half, False, 1)] * 2,
                            f"2 processes at once, each {half} runs one after another"),
    }
    if dp:  # data parallel on fake host devices: the same 2 cores, only split 4 ways
        variants["dp 1 device"] = ([(1, False, 1)], "one run, 1 CPU device")
        variants["dp 4 devices"] = ([(1, False, 4)], "one run, batch split over 4 fake CPU "
                                    "devices (XLA_FLAGS; no effect on a GPU)")
    workers = {n: [_Worker(m, p, steps, d) for m, p, d in specs]
               for n, (specs, _) in variants.items()}
    for ws in workers.values():  # compile all at once (the machine is idle otherwise)
        for w in ws:
            w.wait_ready()
    times = {n: [] for n in variants}
    for r in range(repeats):
        for n, ws in workers.items():
            t = time.perf_counter()
            for w in ws:
                w.go()
            for w in ws:
                w.done()
            times[n].append(time.perf_counter() - t)
        print(f"round {r + 1}/{repeats}: " + ", ".join(
            f"{n} {v[-1]:.2f}s" for n, v in times.items()), flush=True)
    for ws in workers.values():
        for w in ws:
            w.close()
    base = statistics.median(times["apart"])
    rows = []
    for n, (specs, note) in variants.items():
        med = statistics.median(times[n])
        runs = sum(m for m, _, _ in specs)
        rows.append({"variant": n, "note": note, "runs": runs, "steps": steps,
                     "median_s": med, "times_s": times[n],
                     "run_steps_per_s": runs * steps / med,
                     "vs_apart": (base / K) / (med / runs),
                     "compile_s": max(w.compile_s for w in workers[n])})
    return rows


def ensemble_markdown(rows) -> str:
    from gru_jax.harness.report.tables import markdown_table

    return markdown_table(
        ["variant", "what", "runs x steps", "median s", "run-steps/s", "vs apart"],
        [[r["variant"], r["note"], f"{r['runs']} x {r['steps']}", f"{r['median_s']:.2f}",
          f"{r['run_steps_per_s']:.0f}", f"{r['vs_apart']:.2f}x"] for r in rows])


# --------------------------------------------------------------------------- main



if __name__ == "__main__":
    ensemble_worker(int(sys.argv[1]), sys.argv[2] == "True", int(sys.argv[3]))
