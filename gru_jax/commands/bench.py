r"""Speed and memory of gru_jax's GRU against its peers, side by side (the code is
`gru_jax.bench`; this is its command line).

    python scripts/bench.py [--json=FILE] [--md=FILE] [--quick]
    python scripts/bench.py --mode=memory [--json=FILE]       # peak memory vs T
    python scripts/bench.py --mode=ablation [--json=FILE]     # formulation choices
    python scripts/bench.py --preset=gpu --dtype=bfloat16     # the GPU grid
    python scripts/bench.py --mode=ensemble [--json=FILE]     # 8 seeds: apart, packed, 2 procs
    python scripts/bench.py --mode=vmap [--json=FILE]         # vmap of 8 gru_scan steps
    python scripts/bench.py --mode=overhead [--json=FILE]     # a study run: wall vs stepping
    python scripts/bench.py --mode=lstm [--json=FILE]         # the fused LSTM vs reference, flax

Implementations (compare): gru_jax (impl="auto", the fused GRU), gru_jax[ref]
(plain scan, JAX autodiff), flax.linen RNN(GRUCell) (the ratio baseline),
flax.nnx, keras (JAX backend), torch.nn.GRU, floor (one product and a tanh per
step; a train step's floor is 3 of them). One process; every implementation
warmed up, then timed in turn, round after round; medians.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

from gru_jax.harness import cli

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "compare", ["compare", "memory", "ablation", "rss", "ensemble",
                                      "ensemble_worker", "vmap", "overhead", "lstm"],
                  "What to measure.")
flags.DEFINE_string("json", None, "Write the results as JSON to this file.")
flags.DEFINE_string("md", None, "Write the markdown table to this file.")
flags.DEFINE_bool("quick", False,
                  "Fewer repeats and a shorter long-sequence row (CPU: a few minutes).")
flags.DEFINE_enum("preset", "default", ["default", "gpu"],
                  "Shape grid: the CPU shapes, or the GPU grid.")
flags.DEFINE_list("shapes", None, "Override the shapes: B:T:I:H,...")
flags.DEFINE_list("impls", None, "Only these implementations (names as in the table).")
flags.DEFINE_integer("repeats", None, "Timed rounds (default 5, --quick 3).")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"],
                  "Compute dtype of the matrix products (bf16: f32 accumulation, f32 state).")
flags.DEFINE_list("mem_T", None, "--mode=memory: sequence lengths (default 1000,10000,100000).")
flags.DEFINE_bool("train_only", False, "--mode=ablation: skip the forward formulations.")
flags.DEFINE_string("rss_config", None, "internal: --mode=rss runs one config, prints peak RSS.")
flags.DEFINE_integer("ens_members", 8, "--mode=ensemble / vmap: members (ensemble_worker: "
                     "its own).")
flags.DEFINE_integer("ens_steps", 200, "--mode=ensemble: train steps per seed per timed round.")
flags.DEFINE_bool("ens_dp", False, "--mode=ensemble: also one run on 1 vs 4 fake CPU devices.")
flags.DEFINE_bool("ens_packed", True, "internal (ensemble_worker): one vmapped program.")
flags.DEFINE_list("hiddens", None, "--mode=vmap: hidden sizes (default 16,32,64,128).")
flags.DEFINE_string("study", "results/long_range", "--mode=overhead: the committed study.")


def _shapes(default):
    return [tuple(int(v) for v in s.split(":")) for s in FLAGS.shapes] if FLAGS.shapes else default


def measure(repeats: int) -> tuple[dict, list[str]]:
    """Run FLAGS.mode -> (the JSON result's mode-specific part, markdown lines)."""
    from gru_jax import bench
    from gru_jax.bench import ablation, memory

    log = lambda s: print(s, flush=True)  # noqa: E731
    dtype = FLAGS.dtype
    if FLAGS.mode == "compare":
        long = (16, 10_000, 2, 128) if FLAGS.quick else (16, 20_000, 2, 128)
        preset = bench.GPU_SHAPES if FLAGS.preset == "gpu" else bench.CPU_SHAPES + [long]
        shapes = _shapes(preset)
        log(bench.markdown([], header=True))
        rows = bench.run_compare(shapes, FLAGS.impls or bench.ALL_IMPLS, repeats, dtype, log)
        summary = bench.summary(rows, [s for s in shapes if s[1] < 10_000] or shapes)
        return {"rows": rows, "summary": summary}, [bench.markdown(rows), "", summary]
    if FLAGS.mode == "memory":
        rows = memory.run_memory([int(t) for t in (FLAGS.mem_T or [1000, 10_000, 100_000])],
                                 dtype=dtype)
        return {"rows": rows}, [memory.memory_markdown(rows)]
    if FLAGS.mode == "vmap":
        rows = bench.run_vmap([int(h) for h in FLAGS.hiddens or bench.ensemble.HIDDENS],
                              K=FLAGS.ens_members, repeats=repeats, dtype=dtype, log=log)
        return {"rows": rows}, [bench.vmap_markdown(rows)]
    if FLAGS.mode == "overhead":
        return _overhead()
    if FLAGS.mode == "lstm":
        from gru_jax.bench import lstm

        rows = lstm.run_lstm(_shapes(lstm.SHAPES), repeats, dtype, log)
        return {"rows": rows}, [lstm.lstm_markdown(rows)]
    if FLAGS.mode == "ensemble":
        from gru_jax.harness import ensemble_bench

        rows = ensemble_bench.run_ensemble(FLAGS.ens_members, FLAGS.ens_steps, repeats,
                                           FLAGS.ens_dp)
        return {"rows": rows}, [
            f"{FLAGS.ens_members} seeds of a GRU (hidden 32, adding task T 50, batch 64, "
            f"AdamW), {FLAGS.ens_steps} train steps each per round; medians of {repeats} "
            "interleaved rounds. vs apart = run-steps/s over the apart row's (dp rows: one "
            "run, so per run-step too).", "", ensemble_bench.ensemble_markdown(rows)]
    fwd_rows, train_rows = [], []  # ablation
    for s in _shapes(bench.CPU_SHAPES):
        if not FLAGS.train_only:
            fwd_rows += ablation.ablation_forward(*s, repeats)
        train_rows += ablation.ablation_train(*s, repeats, dtype)
        log(json.dumps(fwd_rows[-9:], indent=0) + json.dumps(train_rows[-10:], indent=0))
    return {"forward": fwd_rows, "train": train_rows}, ablation.ablation_markdown(
        fwd_rows, train_rows)


def _overhead() -> tuple[dict, list[str]]:
    """A study run's wall over its stepping time (the protocol's point, seed by seed in
    one process), and the committed study's, by length band."""
    from gru_jax.bench.tables import markdown_table
    from gru_jax.proj.long_range import overhead

    p = overhead.POINT
    runs = overhead.run_overhead()
    study = overhead.study_overhead(FLAGS.study) or {}
    keys = ("compile_sec", "eval_sec", "checkpoint_sec", "log_sec")
    rows = [[r["seed"], f"{r['wall_s']:.2f}", f"{r['stepping_s']:.2f}", f"{r['ratio']:.2f}x",
             *(f"{r[k]:.2f}" for k in keys)] for r in runs]
    return {"runs": runs, "study": study}, [
        f"The protocol's {p['task']} point ({p['arm']}, H={p['hidden']}, T={p['seq_len']}), "
        "400 steps per seed (eval every 100 on 1024 examples, diagnostics at the start and "
        "the end), seeds in turn in one process: seed 0 compiles, the others find its "
        "programs, as in a sweep worker.", "",
        markdown_table(["seed", "wall s", "stepping s", "wall / stepping", *keys], rows,
                       "r" * (4 + len(keys))), "",
        f"The committed study ({FLAGS.study}), wall / stepping:", "",
        markdown_table(["runs", "wall / stepping"],
                       [[k, "-" if v is None else f"{v:.2f}x"] for k, v in study.items()], "lr")]


def main(argv):
    del argv
    if FLAGS.mode == "rss":
        from gru_jax.bench.memory import run_rss

        return run_rss(FLAGS.rss_config, FLAGS.dtype)
    if FLAGS.mode == "ensemble_worker":
        from gru_jax.harness.ensemble_bench import ensemble_worker

        return ensemble_worker(FLAGS.ens_members, FLAGS.ens_packed, FLAGS.ens_steps)
    from gru_jax.bench import describe, load_average

    repeats = FLAGS.repeats or (3 if FLAGS.quick else 5)
    cmd = "python " + " ".join(sys.argv)
    result = {"command": cmd, "machine": describe(), "dtype": FLAGS.dtype, "mode": FLAGS.mode}
    part, md = measure(repeats)
    result.update(part)
    result["machine"]["loadavg_end"] = load_average()
    text = "\n".join([f"Command: `{cmd}`", "", f"Machine: {result['machine']}", "", *md])
    print("\n" + text)
    for path, content in ((FLAGS.json, json.dumps(result, indent=1)), (FLAGS.md, text + "\n")):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                f.write(content)


def run() -> None:
    """The command line (``python scripts/bench.py`` and ``gru-jax bench``)."""
    # Before keras or a JAX backend starts (both come later, inside the modes).
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with torch
    cli.run_command(main, sys.modules[__name__], app.parse_flags_with_usage)
