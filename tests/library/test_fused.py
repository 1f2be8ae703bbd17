"""The fused GRU (gru_jax.fused: hand-written backward) against the
reference scan (JAX autodiff of the plain step): values and gradients of
every parameter, of xs and of h0, with masks, reverse, remat, bf16, for each
formulation (`Plan`) a backend may pick. Tiny shapes, float64 where exact.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gru_jax import gru_scan, init_gru
from gru_jax.fused import Plan, default_plan, fused_run
from gru_jax.loop import drive

B, IN, H = 3, 2, 5
LENGTHS = [7, 3, 1]

PLANS = {
    "cpu-default": default_plan("cpu"),
    "gpu-default": default_plan("gpu"),
    "step, block 4": Plan("step", block=4),  # T = 7 and 16: partial first block
    "block, block 3, unroll 2": Plan("block", block=3, unroll=2),
    "step, save gh, block 5": Plan("step", block=5, save="gh"),
    "block, save gh, block 4": Plan("block", block=4, save="gh"),
    # the gates recomputed inside each reverse step (CPU at small hidden sizes)
    "step, step factors, block 4": Plan("step", block=4, factors="step"),
    "step, step factors, save gh, block 3": Plan("step", block=3, save="gh", factors="step"),
    "block, step factors, unroll 2": Plan("block", block=5, factors="step", unroll=2),
}


def _params(T, dtype=jnp.float64):
    k = jax.random.split(jax.random.key(T), 4)
    p = init_gru(k[0], IN, H, param_dtype=dtype)
    # non-zero biases, so every bias gradient path is exercised
    p = {n: v + 0.1 * jax.random.normal(k[3], v.shape, v.dtype) for n, v in p.items()}
    xs = jax.random.normal(k[1], (B, T, IN), dtype)
    h0 = jax.random.normal(k[2], (B, H), dtype)
    return p, xs, h0


def _loss(run, use_hs):
    def f(p, xs, h0):
        h, hs = run(p, xs, h0)
        out = jnp.sum(h * jnp.arange(h.size, dtype=h.dtype).reshape(h.shape))
        return out + (jnp.sum(jnp.sin(hs)) if use_hs else 0.0)

    return jax.value_and_grad(f, argnums=(0, 1, 2))


def _runs(plan, seq_lengths, reverse, remat, dtype=None):
    def ref(p, xs, h0):
        return gru_scan(p, xs, h0, seq_lengths=seq_lengths, reverse=reverse, remat=remat,
                        dtype=dtype, impl="reference")

    def fused(p, xs, h0):
        return drive(fused_run(p, dtype=dtype, plan=plan), xs, h0,
                              seq_lengths=seq_lengths, reverse=reverse, remat=remat)

    return ref, fused


def _assert_close(a, b, **tol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), **tol)


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


@functools.cache
def _reference(T, masked, reverse, use_hs):
    p, xs, h0 = _params(T)
    sl = jnp.minimum(jnp.array(LENGTHS), T) if masked else None
    ref, _ = _runs(None, sl, reverse, remat=False)
    return _loss(ref, use_hs)(p, xs, h0)


CASES = [(name, T) for name in PLANS for T in (7,)] + [("cpu-default", 1), ("cpu-default", 16),
                                                      ("gpu-default", 16)]


@pytest.mark.parametrize("plan_name, T", CASES)
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_values_and_gradients_match_reference(plan_name, T, masked, reverse):
    p, xs, h0 = _params(T)
    sl = jnp.minimum(jnp.array(LENGTHS), T) if masked else None
    _, fused = _runs(PLANS[plan_name], sl, reverse, remat=False)
    for use_hs in (False, True):  # only h_last (hs's cotangent symbolically zero), and both
        _assert_close(_reference(T, masked, reverse, use_hs), _loss(fused, use_hs)(p, xs, h0),
                      rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("plan", [PLANS["cpu-default"], PLANS["block, block 3, unroll 2"]])
@pytest.mark.parametrize("remat", [True, 4])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "masked"])
def test_remat_matches_reference(plan, remat, masked):
    T = 16
    p, xs, h0 = _params(T)
    sl = jnp.array([16, 9, 2]) if masked else None
    ref, _ = _runs(plan, sl, False, remat=False)
    _, fused = _runs(plan, sl, False, remat=remat)
    _assert_close(_loss(ref, True)(p, xs, h0), _loss(fused, True)(p, xs, h0),
                  rtol=1e-9, atol=1e-11)


def test_primal_only_forward_matches_reference():
    p, xs, h0 = _params(9)
    for plan in PLANS.values():
        h_r, hs_r = gru_scan(p, xs, h0, impl="reference")
        h_f, hs_f = drive(fused_run(p, plan=plan), xs, h0)
        _assert_close((h_r, hs_r), (h_f, hs_f), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("plan", [PLANS["cpu-default"], PLANS["gpu-default"]],
                         ids=["cpu-default", "gpu-default"])
def test_bf16_products_match_reference_bf16(plan):
    """bf16 matrix products with f32 accumulation: the fused and reference
    paths round the same products, so they agree far closer than bf16 to f32."""
    with jax.enable_x64(False), jax.default_matmul_precision("highest"):
        p, xs, h0 = _params(12, jnp.float32)
        ref, fused = _runs(plan, jnp.array([12, 5, 1]), False, False, dtype=jnp.bfloat16)
        a, b = _loss(ref, True)(p, xs, h0), _loss(fused, True)(p, xs, h0)
        _assert_close(a, b, rtol=2e-2, atol=2e-2)
        f32_ref, _ = _runs(plan, jnp.array([12, 5, 1]), False, False)
        c = _loss(f32_ref, True)(p, xs, h0)
        _assert_close(c, b, rtol=1e-1, atol=1e-1)  # and bf16 stays near f32


def test_float32_matches_reference():
    # "highest": on GPU the default f32 matmul is TF32, and the two paths
    # order their products differently
    with jax.enable_x64(False), jax.default_matmul_precision("highest"):
        p, xs, h0 = _params(20, jnp.float32)
        for plan in (PLANS["cpu-default"], PLANS["gpu-default"]):
            ref, fused = _runs(plan, None, False, False)
            _assert_close(_loss(ref, True)(p, xs, h0), _loss(fused, True)(p, xs, h0),
                          rtol=2e-4, atol=2e-5)


def test_gru_scan_auto_uses_fused_and_reference_before_falls_back():
    p, xs, h0 = _params(5)
    a = _loss(lambda p, xs, h0: gru_scan(p, xs, h0, impl="auto"), True)(p, xs, h0)
    b = _loss(lambda p, xs, h0: gru_scan(p, xs, h0, impl="fused"), True)(p, xs, h0)
    _assert_close(a, b, rtol=0, atol=0)
    pb = init_gru(jax.random.key(0), IN, H, variant="reset_before", param_dtype=jnp.float64)
    h, hs = gru_scan(pb, xs, h0, impl="auto")
    assert hs.shape == (B, 5, H)


def test_block_len():
    assert Plan(block=None).block_len(1000, 32, 128) == 64
    assert Plan(block=None).block_len(200, 128, 256) == 8
    assert Plan(block=None).block_len(3, 32, 128) == 3
    assert Plan(block=10).block_len(1000, 1, 1) == 10
    assert dataclasses.replace(Plan(), block_elems=1).block_len(100, 64, 64) == 4


def test_factors_and_member_paths():
    cpu = default_plan("cpu")
    assert cpu.factors_for(1, 32, 16) == "step" and cpu.factors_for(8, 32, 64) == "step"
    assert cpu.factors_for(1, 32, 128) == "step" and cpu.factors_for(1, 128, 256) == "block"
    assert Plan(factors="step").factors_for(1, 32, 1024) == "step"
    assert cpu.member_path(1, 32, 16) == "batch"  # one member is always one loop
    assert cpu.member_path(8, 32, 64) == "batch" and cpu.member_path(8, 32, 128) == "apart"
    assert Plan(members="apart").member_path(8, 32, 16) == "apart"
    assert default_plan("gpu").member_path(8, 32, 512) == "batch"


@pytest.mark.parametrize("bad", [dict(proj="x"), dict(block=0), dict(save="all"),
                                 dict(factors="x"), dict(members="blockdiag")])
def test_bad_plan_is_refused(bad):
    with pytest.raises(ValueError):
        Plan(**bad)


def test_save_auto_stores_products_only_where_a_step_is_large():
    auto = Plan()
    assert auto.save == "auto"
    assert auto.saves_gh(200, 128, 256) and not auto.saves_gh(1000, 32, 128)
    assert not auto.saves_gh(100_000, 128, 256)  # 9.8 GB of products: recompute instead
    assert Plan(save="gh").saves_gh(1, 1, 1) and not Plan(save="h").saves_gh(200, 128, 256)


def test_save_auto_at_a_large_step_matches_reference():
    """batch * hidden = 2^15: the auto plan stores h W_h; values and gradients unchanged."""
    k = jax.random.split(jax.random.key(3), 3)
    p = init_gru(k[0], 2, 256, param_dtype=jnp.float64)
    xs = jax.random.normal(k[1], (128, 3, 2), jnp.float64)
    h0 = jax.random.normal(k[2], (128, 256), jnp.float64)
    assert Plan().saves_gh(3, 128, 256)
    ref, fused = _runs(Plan(), None, False, False)
    _assert_close(_loss(ref, True)(p, xs, h0), _loss(fused, True)(p, xs, h0),
                  rtol=1e-9, atol=1e-11)
