"""Property tests of `gru_jax.scan` over every option, for all four cells (issue 19).

Hypothesis draws a call: batch layout (none, one, two leading axes),
time_major, reverse, seq_lengths (0 and T included), masks with holes,
zero_output_for_mask, unroll, remat, an initial carry or none, input dtype
(float32, complex64), compute dtype, input scale. Then:

- the reference scan equals a plain Python loop over the cell's public step
  function (`gru_step`, ...), one sequence and one time step at a time;
- the fused GRU and minGRU's associative scan equal the reference scan (values,
  and for the fused GRU the gradients of its hand-written backward);
- every output is finite for finite inputs;
- traced seq_lengths outside [0, T] (inside jit) give the loop's result at the
  clamped lengths;
- every invalid call raises one line from gru_jax, naming the argument.

The example budget is bounded and derandomized (the same examples on every
run, in CI too); shapes come from small fixed sets so compilations repeat.
"""

from __future__ import annotations

import traceback

import jax
import jax.numpy as jnp
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gru_jax import (  # noqa: E402
    gru_step,
    init_gru,
    init_lstm,
    init_mingru,
    init_rnn,
    lstm_step,
    mingru_step,
    rnn_step,
    scan,
)


def budget(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# name -> (scan's cell name, init, the public step, carry -> y, the carry has two leaves)
CELLS = {
    "gru": ("gru", init_gru, gru_step, lambda c: c, False),
    "gru_reset_before": ("gru", lambda k, i, h: init_gru(k, i, h, variant="reset_before"),
                         gru_step, lambda c: c, False),
    "lstm": ("lstm", init_lstm, lstm_step, lambda c: c[1], True),
    "rnn": ("rnn", init_rnn, rnn_step, lambda c: c, False),
    "mingru": ("mingru", init_mingru, mingru_step, lambda c: c, False),
}
BATCH_SHAPES = [(), (1,), (3,), (2, 2)]
TIMES = [3, 6, 1]
SIZES = [(1, 2), (3, 4)]  # (input, hidden)


@st.composite
def calls(draw, cell: str, times=TIMES, empty=True):
    """One scan call: (params, xs, carry0 or None, scan keyword arguments, facts);
    with `empty`, now and then T = 0 (no loop at all: carry0 back, empty outputs)."""
    batch = draw(st.sampled_from(BATCH_SHAPES))
    T = 0 if empty and draw(st.integers(0, 7)) == 7 else draw(st.sampled_from(times))
    In, H = draw(st.sampled_from(SIZES))
    time_major = draw(st.booleans())
    complex_x = draw(st.booleans())
    scale = draw(st.sampled_from([0.1, 1.0] if complex_x else [0.1, 1.0, 1e3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    name, init, _, _, pair = CELLS[cell]
    params = init(jax.random.key(int(rng.integers(1 << 30))), In, H)
    shape = (T, *batch, In) if time_major else (*batch, T, In)
    xs = scale * rng.normal(size=shape)
    if complex_x:
        xs = (xs + 1j * scale * rng.normal(size=shape)).astype(np.complex64)
    else:
        xs = xs.astype(np.float32)
    carry0 = None
    if draw(st.booleans()):
        leaf = lambda: rng.normal(size=(*batch, H)).astype(np.float32)  # noqa: E731
        carry0 = (leaf(), leaf()) if pair else leaf()
    kw = dict(time_major=time_major, reverse=draw(st.booleans()),
              zero_output_for_mask=draw(st.booleans()), unroll=draw(st.sampled_from([1, 2])),
              remat=draw(st.sampled_from([False, True, 2])))
    if draw(st.booleans()):
        kw["seq_lengths"] = np.array(draw(st.lists(st.integers(0, T), min_size=int(
            np.prod(batch)), max_size=int(np.prod(batch))))).reshape(batch).astype(np.int32)
    if draw(st.booleans()):  # holes anywhere, the first and last steps included
        mshape = (T, *batch) if time_major else (*batch, T)
        kw["mask"] = rng.random(mshape) < draw(st.sampled_from([0.5, 0.8]))
    if not complex_x and draw(st.booleans()):
        kw["dtype"] = jnp.bfloat16
    return params, xs, carry0, kw, dict(scale=scale, complex=complex_x, T=T, H=H)


def python_loop(cell: str, params, xs, carry0, *, time_major=False, reverse=False,
                seq_lengths=None, mask=None, zero_output_for_mask=True, dtype=None, **_):
    """The scan's definition, one sequence and one step at a time with the public
    step: steps run where t < length and the mask allows; reverse runs each valid
    prefix back to front (the padding after it); a skipped step holds the carry
    and outputs zero, or (zero_output_for_mask=False) the last output (the
    initial carry's before any)."""
    _, init, step, hidden, pair = CELLS[cell]
    xs = np.moveaxis(np.asarray(xs), 0, -2) if time_major else np.asarray(xs)
    mask = None if mask is None else (np.moveaxis(mask, 0, -1) if time_major else mask)
    batch, T = xs.shape[:-2], xs.shape[-2]
    H = next(iter(params.values())).shape[-1]  # every array is [..., hidden]
    if carry0 is None:
        zero = np.zeros((*batch, H), np.float32)
        carry0 = (zero, zero) if pair else zero
    carries, ys = [], np.zeros((*batch, T, H), np.complex128)
    for b in np.ndindex(*batch):
        c = jax.tree_util.tree_map(lambda a, b=b: jnp.asarray(a[b]), carry0)
        L = T if seq_lengths is None else int(seq_lengths[b])
        order = [*range(L)[::-1], *range(L, T)] if reverse else range(T)
        last = hidden(c)
        for t in order:
            if t < L and (mask is None or mask[b][t]):
                c = step(params, c, jnp.asarray(xs[b][t]), dtype=dtype)
                ys[b][t] = last = hidden(c)
            elif not zero_output_for_mask:
                ys[b][t] = last
        carries.append(c)
    stack = lambda *cs: np.stack(cs).reshape(*batch, H)  # noqa: E731
    carry = jax.tree_util.tree_map(stack, *carries) if carries else jax.tree_util.tree_map(
        np.asarray, carry0)
    return carry, (np.moveaxis(ys, -2, 0) if time_major else ys)


def assert_close(got, want, facts, loose=1.0):
    tol = loose * (2e-2 if facts.get("bf16") else 2e-5)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want),
                    strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, (a.shape, b.shape)
        if not facts["complex"]:
            assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, facts["scale"]))


@pytest.mark.parametrize("cell", list(CELLS))
@given(data=st.data())
@budget(9)
def test_reference_scan_equals_a_python_loop_over_the_step(cell, data):
    params, xs, carry0, kw, facts = data.draw(calls(cell))
    facts["bf16"] = "dtype" in kw
    got = scan(CELLS[cell][0], params, xs, carry0, impl="reference", **kw)
    assert got[1].dtype == (jnp.complex64 if facts["complex"] else jnp.float32)
    assert_close(got, python_loop(cell, params, xs, carry0, **kw), facts)
    other = {"gru": "fused", "mingru": "associative"}.get(cell)
    if other and not facts["complex"]:
        assert_close(scan(CELLS[cell][0], params, xs, carry0, impl=other, **kw), got, facts,
                     loose=5.0)


@given(data=st.data())
@budget(5)
def test_fused_gradients_equal_the_reference_scans(data):
    """The hand-written backward against JAX's autodiff of the reference scan."""
    params, xs, carry0, kw, facts = data.draw(calls("gru", times=[3, 6], empty=False))
    if facts["complex"]:
        return  # fused is real-only (its own test says so in one line)
    facts["bf16"] = "dtype" in kw
    facts["scale"] = 1.0
    batch = xs.shape[1:-1] if kw["time_major"] else xs.shape[:-2]
    if carry0 is None:
        carry0 = np.zeros((*batch, facts["H"]), np.float32)
    w = np.random.default_rng(0).normal(size=xs.shape[:-1] + (facts["H"],)).astype(np.float32)

    def grads(impl):
        def loss(p, x, c):
            h, hs = scan("gru", p, x, c, impl=impl, **kw)
            return jnp.sum(hs * w) + jnp.sum(h)

        return jax.grad(loss, argnums=(0, 1, 2))(params, xs, carry0)

    assert_close(grads("fused"), grads("reference"), facts, loose=10.0)


@given(data=st.data())
@budget(6)
def test_traced_lengths_out_of_range_are_clamped_inside_jit(data):
    cell = data.draw(st.sampled_from(list(CELLS)))
    params, xs, carry0, kw, facts = data.draw(calls(cell, times=[3, 6], empty=False))
    facts["bf16"] = "dtype" in kw
    batch = xs.shape[1:-1] if kw["time_major"] else xs.shape[:-2]
    T = facts["T"]
    n = int(np.prod(batch))
    lengths = np.array(data.draw(st.lists(st.integers(-3, T + 3), min_size=n, max_size=n)),
                       np.int32).reshape(batch)
    kw["seq_lengths"] = lengths
    static = {k: v for k, v in kw.items() if k not in ("seq_lengths", "mask")}
    run = jax.jit(lambda p, x, c, n, m: scan(CELLS[cell][0], p, x, c, seq_lengths=n, mask=m,
                                             impl="reference", **static))
    got = run(params, xs, carry0, lengths, kw.get("mask"))
    want = python_loop(cell, params, xs, carry0, **{**kw, "seq_lengths": np.clip(lengths, 0, T)})
    assert_close(got, want, facts)


# ------------------------------------------------------------------ invalid calls


def _corruptions(cell, params, xs, carry0, kw, facts):
    """(name, call keyword arguments, the argument the message must name) for one call."""
    T, H = facts["T"], facts["H"]
    tm = kw["time_major"]
    batch = xs.shape[1:-1] if tm else xs.shape[:-2]
    pair = CELLS[cell][4]
    leaf = np.zeros((*batch, H), np.float32)
    wrap = lambda a: (a, a) if pair else a  # noqa: E731
    first = next(iter(params))
    out = [
        ("features", dict(xs=xs[..., :0] if xs.shape[-1] > 1 else np.concatenate([xs, xs], -1)),
         "xs"),
        ("no time axis", dict(xs=xs.reshape(-1)[:xs.shape[-1]]), "xs"),
        ("carry broadcast", dict(carry0=wrap(np.zeros((1, *batch, H), np.float32))), "carry0"),
        ("carry hidden", dict(carry0=wrap(np.zeros((*batch, H + 1), np.float32))), "carry0"),
        ("carry int", dict(carry0=wrap(leaf.astype(np.int32))), "carry0"),
        ("carry structure", dict(carry0=leaf if pair else (leaf, leaf)), "carry0"),
        ("length > T", dict(seq_lengths=np.full(batch, T + 1, np.int32)), "seq_lengths"),
        ("length < 0", dict(seq_lengths=np.full(batch, -1, np.int32)), "seq_lengths"),
        ("float lengths", dict(seq_lengths=np.full(batch, T, np.float32)), "seq_lengths"),
        ("lengths shape", dict(seq_lengths=np.full((*batch, 2), T, np.int32)), "seq_lengths"),
        ("mask shape", dict(mask=np.ones((T + 1, *batch) if tm else (*batch, T + 1), bool)),
         "mask"),
        ("mask dtype", dict(mask=np.ones((T, *batch) if tm else (*batch, T), np.float32)),
         "mask"),
        ("unroll", dict(unroll=0), "unroll"),
        ("remat", dict(remat=-1), "remat"),
        ("params shape", dict(params={**params, first: np.zeros((7, 7), np.float32)}), "params"),
        ("params key", dict(params={k: v for k, v in params.items() if k != first}), "params"),
        ("impl", dict(impl="associative" if cell != "mingru" else "fused"), "impl"),
        ("carry_dtype", dict(carry_dtype=jnp.int32), "carry_dtype"),
    ]
    if facts["complex"]:
        out.append(("real carry_dtype", dict(carry_dtype=jnp.float32), "carry_dtype"))
    return out


@pytest.mark.parametrize("cell", list(CELLS))
@given(data=st.data())
@budget(15)
def test_every_invalid_call_raises_one_line_naming_the_argument(cell, data):
    params, xs, carry0, kw, facts = data.draw(calls(cell))
    cases = _corruptions(cell, params, xs, carry0, kw, facts)
    for name, change, arg in data.draw(st.lists(st.sampled_from(cases), min_size=1,
                                                max_size=4, unique_by=lambda c: c[0])):
        call = dict(params=params, xs=xs, carry0=carry0, **kw)
        if "carry0" in change or "mask" in change or "seq_lengths" in change:
            call.pop("mask", None)  # one thing wrong at a time
            call.pop("seq_lengths", None)
        call.update(change)
        with pytest.raises((ValueError, TypeError)) as e:
            scan(CELLS[cell][0], **call)
        msg = str(e.value)
        assert "\n" not in msg and arg in msg, (name, msg)
        origin = traceback.extract_tb(e.tb)[-1].filename
        assert "/gru_jax/" in origin, (name, origin, msg)
