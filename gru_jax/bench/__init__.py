"""Benchmarks as importable, tested code (`gru-jax bench`, `scripts/bench.py`: their
command line, gru_jax.commands.bench).

    timing.py    interleaved_medians (the one timer), compile_fn, compiled_memory_bytes
    machine.py   machine_info, describe, load_average: where a measurement ran
    cases.py     Case and one builder per implementation (shape and dtype as arguments)
    compare.py   run_compare: the peers side by side, ratios, distance to the floor
    ensemble.py  run_vmap: K members under one jax.vmap against one by one
    memory.py    run_memory: memory against T (XLA's account, peak RSS)
    ablation.py  formulations of the step and plans of the fused GRU
    lstm.py      run_lstm: the fused LSTM against the reference scan and flax.linen
    tables.py    markdown_table: the one table writer (the harness's reports use it too)

Every mode measures side by side in one process, interleaved, medians: ratios,
never timed tests. The library only; the trainer's ensemble benchmark (which
needs the harness) is `gru_jax.harness.ensemble_bench`.
"""

from gru_jax.bench.cases import ALL_IMPLS, BUILDERS, CPU_SHAPES, GPU_SHAPES, Case
from gru_jax.bench.compare import markdown, run_compare, summary
from gru_jax.bench.ensemble import run_vmap, vmap_markdown
from gru_jax.bench.machine import describe, load_average, machine_info
from gru_jax.bench.timing import compile_fn, compiled_memory_bytes, interleaved_medians

__all__ = ["ALL_IMPLS", "BUILDERS", "CPU_SHAPES", "Case", "GPU_SHAPES", "compile_fn",
           "compiled_memory_bytes", "describe", "interleaved_medians", "load_average",
           "machine_info", "markdown", "run_compare", "run_vmap", "summary", "vmap_markdown"]
