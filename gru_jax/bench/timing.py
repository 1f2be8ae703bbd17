"""One timer for every benchmark: thunks warmed up, then timed round after round
in turn (so load on a shared machine hits all alike), medians. Also the
compile helper the cases share and XLA's memory account of a compiled program."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Hashable, Mapping


def block(x):
    """Wait for every array in x (jax.block_until_ready; other objects pass)."""
    import jax

    return jax.block_until_ready(x)


def short(e: BaseException) -> str:
    """An exception as one short line."""
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0][:160] if msg else ''}"


def interleaved_medians(thunks: Mapping[Hashable, Callable[[], object]], repeats: int,
                        *, number: int = 1, samples: dict | None = None) -> dict:
    """{key: thunk} -> {key: median ms per call}. Every thunk runs once (warm-up,
    compile), then `repeats` rounds call each in turn, `number` calls per timing.
    A thunk that raises during the warm-up is left out of the result (and of the
    rounds); `samples`, if given, receives every timing (ms) per key."""
    if repeats < 1 or number < 1:
        raise ValueError(f"repeats and number must be >= 1, got {repeats} and {number}")
    live = {}
    for k, f in thunks.items():
        try:
            block(f())
            live[k] = f
        except Exception as e:  # noqa: BLE001 - e.g. out of memory; the caller notes it
            print(f"  {k}: {short(e)}", file=sys.stderr, flush=True)
    times = {k: [] for k in live}
    for _ in range(repeats):
        for k, f in live.items():
            t = time.perf_counter()
            for _ in range(number):
                out = f()
            block(out)
            times[k].append((time.perf_counter() - t) * 1e3 / number)
    if samples is not None:
        samples.update(times)
    return {k: statistics.median(v) for k, v in times.items()}


def compiled_memory_bytes(compiled) -> int | None:
    """Peak memory of one call of a compiled program by XLA's buffer assignment
    (arguments + outputs + temporaries - aliased), or None where the backend has no
    memory analysis. The same account as `gru_jax.harness.steps.compiled_memory_bytes`
    (the trainer's), kept here so the library does not import the harness."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if m is None:
        return None
    total = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
             - m.alias_size_in_bytes)
    # peak_memory_in_bytes, where reported, can leave out the temporaries (XLA:CPU).
    return int(max(total, getattr(m, "peak_memory_in_bytes", 0) or 0))


def compile_fn(fn, *args):
    """jit(fn) compiled for args -> (callable, compile seconds, memory bytes or None)."""
    import jax

    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t, compiled_memory_bytes(compiled)
