"""gru_jax.bench as a library: the interleaved timer, the memory account, the
machine description, and the compare and vmap modes on tiny shapes (numbers
checked for consistency with each other and with independent sources, never
for speed)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from gru_jax import bench
from gru_jax.bench import timing


def test_interleaved_medians_rounds_in_turn_and_drops_failures():
    order = []

    def thunk(name):
        def f():
            order.append(name)
            return jnp.zeros(())
        return f

    def broken():
        raise RuntimeError("out of memory")

    samples = {}
    med = bench.interleaved_medians({"a": thunk("a"), "b": thunk("b"), "bad": broken}, 3,
                                    samples=samples)
    assert set(med) == {"a", "b"} and all(v >= 0 for v in med.values())
    assert order == ["a", "b"] + ["a", "b"] * 3  # warm-up, then interleaved rounds
    assert {k: len(v) for k, v in samples.items()} == {"a": 3, "b": 3}
    with pytest.raises(ValueError, match="repeats"):
        bench.interleaved_medians({"a": thunk("a")}, 0)


def test_interleaved_medians_is_the_median():
    ticks = iter([0, 1, 0, 5, 0, 2])  # three timings: 1, 5, 2 (x 1000 ms)
    import time as _time

    real = _time.perf_counter
    try:
        timing.time.perf_counter = lambda: next(ticks)
        med = bench.interleaved_medians({"a": lambda: None}, 3)
    finally:
        timing.time.perf_counter = real
    assert med == {"a": 2000.0}


def test_compiled_memory_bytes_is_xlas_buffer_account():
    from gru_jax.harness import steps  # the trainer reports the same function's number

    c = jax.jit(lambda x: jnp.tanh(x @ x.T)).lower(jnp.ones((64, 32))).compile()
    m = c.memory_analysis()
    assert steps.compiled_memory_bytes is bench.compiled_memory_bytes
    assert bench.compiled_memory_bytes(c) >= (m.argument_size_in_bytes + m.output_size_in_bytes
                                              + m.temp_size_in_bytes - m.alias_size_in_bytes)
    assert bench.compiled_memory_bytes(c) >= (64 * 32 + 64 * 64) * 4  # argument + output


def test_machine_description():
    info = bench.describe()
    assert info["backend"] == jax.default_backend() and info["cpu_count"] >= 1
    assert info["jax"] == jax.__version__
    from gru_jax.harness.machine import machine_info

    assert machine_info() == bench.machine_info()  # the harness re-exports the one description


def test_compare_rows_on_a_tiny_shape():
    rows = bench.run_compare([(2, 5, 2, 4)], ["gru_jax", "flax.linen", "floor"], 1,
                             log=lambda s: None)
    by = {r["impl"]: r for r in rows}
    assert set(by) == {"gru_jax", "flax.linen", "floor"}
    g, f, fl = by["gru_jax"], by["flax.linen"], by["floor"]
    assert f["train_vs_flax_linen"] == 1.0
    assert g["train_vs_flax_linen"] == pytest.approx(f["train_ms"] / g["train_ms"])
    assert g["train_over_floor"] == pytest.approx(g["train_ms"] / (3 * fl["fwd_ms"]))
    assert fl["train_ms"] is None and g["mem_mb"] > 0 and g["compile_s"] > 0
    assert "| 2, 5, 2, 4 | gru_jax |" in bench.markdown(rows)
    text = bench.summary(rows, [(2, 5, 2, 4)])
    assert f"- 2, 5, 2, 4: gru_jax train step {g['train_vs_flax_linen']:.2f}x flax.linen, " \
           f"{g['train_over_floor']:.2f}x its floor" in text


def test_cases_take_the_dtype_as_an_argument():
    c = bench.BUILDERS["gru_jax"](2, 3, 2, 4, dtype="bfloat16")
    h_bf16 = c.fwd()
    h_f32 = bench.BUILDERS["gru_jax"](2, 3, 2, 4).fwd()
    assert h_bf16.dtype == jnp.float32  # bf16 products, f32 state
    assert 0 < float(jnp.max(jnp.abs(h_bf16 - h_f32))) < 5e-2


def test_vmap_mode_on_a_tiny_shape():
    (row,) = bench.run_vmap([4], K=2, B=2, T=3, IN=2, repeats=1, log=lambda s: None)
    assert row["H"] == 4 and row["apart_ms"] > 0 and row["vmap_ms"] > 0
    assert row["vmap_speedup"] == pytest.approx(row["apart_ms"] / row["vmap_ms"])
    assert "| 2, 2, 3, 2 | 4 |" in bench.vmap_markdown([row])


def test_ensemble_thunks_compute_the_same_gradients():
    from gru_jax.bench.ensemble import ensemble_thunks

    t = ensemble_thunks(2, 2, 3, 2, 4)
    apart, packed = t["apart"](), t["vmap"]()
    leaves = jax.tree_util.tree_leaves
    for k in range(2):
        member = leaves(jax.tree_util.tree_map(lambda v, k=k: v[k], packed))
        for a, b in zip(leaves(apart[k]), member, strict=True):
            assert jnp.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lstm_mode_on_a_tiny_shape():
    from gru_jax.bench import lstm

    rows = lstm.run_lstm([(2, 3, 2, 4)], repeats=1, log=lambda s: None)
    by = {r["impl"]: r for r in rows}
    assert set(by) == {"gru_jax lstm[fused]", "gru_jax lstm[reference]", "flax.linen lstm"}
    ref, flax = by["gru_jax lstm[reference]"], by["flax.linen lstm"]
    assert ref["vs_reference"] == 1.0 and flax["vs_flax_linen"] == 1.0
    fused = by["gru_jax lstm[fused]"]
    assert fused["vs_reference"] == pytest.approx(ref["train_ms"] / fused["train_ms"])
    assert "| 2, 3, 2, 4 | gru_jax lstm[fused] |" in lstm.lstm_markdown(rows)
