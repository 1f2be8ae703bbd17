"""jax.vmap over runs of the fused GRU (the member-native kernels and their vmap
rule, gru_jax.fused.members) against the same runs one by one through the
reference scan: gradients of per-member losses, shared and per-member inputs,
masks, nested vmaps, vmap outside grad. float64, tiny shapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gru_jax import gru_scan, init_gru
from gru_jax.fused import Plan, fuse_params, members_vmap, packing_pays
from gru_jax.fused import gru as fused_gru

K, B, T, IN, H = 3, 2, 6, 2, 4


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


# How K members run inside the vmap rule (Plan.members, Plan.factors): one loop of
# batched products, or one loop per member (unrolled, or lax.map above
# UNROLLED_MEMBERS); the gates recomputed per block or per step.
MEMBER_PLANS = {
    "batch": (Plan(members="batch"), None),
    "batch, step factors": (Plan(members="batch", factors="step", block=4), None),
    "apart, step factors": (Plan(members="apart", factors="step", block=4), None),
    "apart by lax.map": (Plan(members="apart"), 1),
}


@pytest.fixture(params=list(MEMBER_PLANS))
def member_plan(request, monkeypatch):
    """Every fused run in the test uses this plan (gru_scan takes the backend's)."""
    plan, unrolled = MEMBER_PLANS[request.param]
    monkeypatch.setattr(fused_gru, "default_plan", lambda backend=None: plan)
    if unrolled is not None:
        monkeypatch.setattr(fused_gru, "UNROLLED_MEMBERS", unrolled)
    return plan


def _members(n=K, seed=0):
    ks = jax.random.split(jax.random.key(seed), 3)
    params = jax.vmap(lambda k: init_gru(k, IN, H, param_dtype=jnp.float64))(
        jax.random.split(ks[0], n))
    params = {k: v + 0.1 * jax.random.normal(ks[1], v.shape, v.dtype) for k, v in params.items()}
    xs = jax.random.normal(ks[2], (n, B, T, IN), jnp.float64)
    return params, xs


def _loss(impl, **options):
    def f(p, xs):
        h, hs = gru_scan(p, xs, impl=impl, **options)
        return jnp.sum(h ** 2) + jnp.sum(jnp.sin(hs))
    return f


_REFERENCE = {}


def _one_by_one(f, params, xs, xs_axis=0, key=None):
    """The reference scan's gradient per member, stacked (kept under `key`: the
    member plans share it)."""
    if key in _REFERENCE:
        return _REFERENCE[key]
    g = jax.jit(jax.grad(f))
    outs = [g(jax.tree_util.tree_map(lambda a, k=k: a[k], params),
              xs if xs_axis is None else xs[k]) for k in range(len(params["w_hr"]))]
    out = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *outs)
    if key is not None:
        _REFERENCE[key] = out
    return out


def _close(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("options", [{}, {"seq_lengths": jnp.array([6, 3])}, {"reverse": True}],
                         ids=["full", "seq_lengths", "reverse"])
def test_vmap_of_grad_equals_stack_of_member_grads(options, member_plan):
    params, xs = _members()
    got = jax.jit(jax.vmap(jax.grad(_loss("fused", **options))))(params, xs)
    _close(got, _one_by_one(_loss("reference", **options), params, xs, key=str(options)))


def test_shared_input_and_nested_vmap(member_plan):
    params, xs = _members(n=4)
    shared = xs[0]
    got = jax.vmap(jax.grad(_loss("fused")), in_axes=(0, None))(params, shared)
    _close(got, _one_by_one(_loss("reference"), params, shared, xs_axis=None, key="shared"))
    # 2 x 2 members as a nested vmap: the rule folds twice
    p22 = jax.tree_util.tree_map(lambda a: a.reshape(2, 2, *a.shape[1:]), params)
    nested = jax.vmap(jax.vmap(jax.grad(_loss("fused"))))(p22, xs.reshape(2, 2, B, T, IN))
    want = _one_by_one(_loss("reference"), params, xs, key="4 members")
    _close(jax.tree_util.tree_map(lambda a: a.reshape(4, *a.shape[2:]), nested), want)


def test_grad_of_vmapped_forward(member_plan):
    params, xs = _members()
    total = lambda f: lambda p, x: jnp.sum(jax.vmap(f)(p, x))  # noqa: E731
    got = jax.grad(total(_loss("fused")))(params, xs)
    _close(got, _one_by_one(_loss("reference"), params, xs, key=str({})))


@pytest.mark.parametrize("path", ["batch", "apart"])
def test_vmap_runs_the_members_as_the_plan_says(path, monkeypatch):
    """The vmap rule fires: "batch" is one loop whose products carry the member axis
    as a batch dimension, "apart" one loop per member (one member's products)."""
    plan = Plan(members=path)
    monkeypatch.setattr(fused_gru, "default_plan", lambda backend=None: plan)
    params, xs = _members()
    jaxpr = str(jax.make_jaxpr(jax.vmap(jax.grad(_loss("fused"))))(params, xs))
    assert "custom_vmap" in jaxpr
    batched = f"f64[{K},{B},{3 * H}] = dot_general" in jaxpr  # h W_h of all K at once
    assert batched == (path == "batch")
    assert (f"f64[1,{B},{3 * H}] = dot_general" in jaxpr) == (path == "apart")


def test_members_vmap_folds_and_shares():
    calls = []

    def f(a, b):  # a [K, n], b [K, n]: member axis first
        calls.append(a.shape)
        return a * b + 1.0

    g = members_vmap(f)
    a, b = jnp.arange(12.0).reshape(2, 3, 2), jnp.ones((3, 2))
    out = jax.vmap(g, in_axes=(0, None))(a, b)
    np.testing.assert_array_equal(out, a * b + 1.0)
    assert (6, 2) in calls  # one call on the 2 x 3 folded members, not two of 3


def test_fuse_params_stacks_one_or_many():
    params, _ = _members()
    fp = fuse_params(params)
    assert fp.w_h.shape == (K, H, 3 * H) and fp.b_hn.shape == (K, H)
    one = fuse_params(jax.tree_util.tree_map(lambda a: a[1], params))
    _close(one, jax.tree_util.tree_map(lambda a: a[1:2], fp))


def test_packing_pays():
    assert packing_pays("gpu", 16, 32, 8) and packing_pays("tpu", 256, 128, 4)
    assert packing_pays("cpu", 16, 32, 8) and packing_pays("cpu", 32, 64, 2)
    assert not packing_pays("cpu", 64, 32, 8) and not packing_pays("cpu", 128, 32, 8)
    assert not packing_pays("cpu", 16, 256, 8)  # large batch: outside the measured regime
    assert not packing_pays("gpu", 16, 32, 1)
