"""Benchmark cases: one implementation at one shape, compiled, as thunks that run
once and wait (`Case`). Every builder takes the shape and the compute dtype as
arguments: (B, T, I, H, *, dtype=None) -> Case.

"forward" = the jitted last hidden state; "train" = the jitted gradient of a
mean-squared loss on the last hidden state through a Dense(1) head, w.r.t.
every parameter. Memory = XLA's account of the compiled train step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from gru_jax.bench.timing import compile_fn

CPU_SHAPES = [(32, 1000, 2, 128), (64, 256, 8, 128), (128, 200, 32, 256)]
LONG_SHAPE = (16, 10_000, 2, 128)
GPU_SHAPES = [(B, T, 32, H) for H in (256, 1024) for T in (1000, 10_000) for B in (32, 256)]
ALL_IMPLS = ["gru_jax", "gru_jax[ref]", "flax.linen", "flax.nnx", "keras", "torch", "floor"]


@dataclasses.dataclass
class Case:
    """One implementation at one shape: thunks that run once and wait."""

    name: str
    fwd: Callable[[], object] | None
    train: Callable[[], object] | None
    compile_s: float | None = None
    mem_bytes: int | None = None
    note: str = ""


def compute_dtype(name: str | None):
    """"float32" / None -> None (no casts); "bfloat16" -> jnp.bfloat16 products."""
    import jax.numpy as jnp

    if name in (None, "float32"):
        return None
    return jnp.dtype(name)


def data(B, T, IN, H, seed=0):
    import jax
    import jax.numpy as jnp

    k1, k2 = jax.random.split(jax.random.key(seed))
    xs = jax.random.normal(k1, (B, T, IN), jnp.float32)
    y = jax.random.normal(k2, (B, 1), jnp.float32)
    head = {"w": jnp.full((H, 1), 0.01, jnp.float32), "b": jnp.zeros((1,), jnp.float32)}
    return xs, y, head


def mse_head(h, head, y):
    import jax.numpy as jnp

    return jnp.mean((h.astype(jnp.float32) @ head["w"] + head["b"] - y) ** 2)


def jax_case(name, last_hidden, params, xs, y, head, note=""):
    """last_hidden(params, xs) -> [B, H]; builds the forward and train thunks."""
    import jax

    def loss(params, head, xs, y):
        return mse_head(last_hidden(params, xs), head, y)

    grad = jax.grad(loss, argnums=(0, 1))
    fwd_c, _, _ = compile_fn(last_hidden, params, xs)
    train_c, sec, mem = compile_fn(grad, params, head, xs, y)
    return Case(name, lambda: fwd_c(params, xs), lambda: train_c(params, head, xs, y),
                sec, mem, note)



def case_gru_jax(B, T, IN, H, *, dtype=None, impl="auto", remat=False, name="gru_jax",
                 plan=None, time_major=False, options=None):
    """gru_jax.gru_scan (impl "auto": the fused GRU), or the fused run with `plan`."""
    import jax
    import jax.numpy as jnp

    import gru_jax

    xs, y, head = data(B, T, IN, H)
    if time_major:
        xs = jnp.swapaxes(xs, 0, 1)
    params = gru_jax.init_gru(jax.random.key(1), IN, H)
    dtype = compute_dtype(dtype)
    if plan is not None:
        from gru_jax.fused import fused_run
        from gru_jax.loop import drive

        def last_hidden(p, xs):
            h0 = jnp.zeros((B, H), jnp.float32)
            return drive(fused_run(p, dtype=dtype, plan=plan), xs, h0,
                         time_major=time_major, remat=remat)[0]
    else:
        def last_hidden(p, xs):
            return gru_jax.gru_scan(p, xs, impl=impl, remat=remat, dtype=dtype,
                                    time_major=time_major, **(options or {}))[0]

    return jax_case(name, last_hidden, params, xs, y, head)


def case_flax_linen(B, T, IN, H, *, dtype=None):
    """flax.linen.RNN(GRUCell): the ratio baseline."""
    import flax.linen as nn
    import jax

    xs, y, head = data(B, T, IN, H)
    model = nn.RNN(nn.GRUCell(H, dtype=compute_dtype(dtype)), return_carry=True)
    params = model.init(jax.random.key(1), xs)
    return jax_case("flax.linen", lambda p, xs: model.apply(p, xs)[0], params, xs, y, head)


def case_flax_nnx(B, T, IN, H, *, dtype=None):
    import jax.numpy as jnp
    from flax import nnx

    xs, y, head = data(B, T, IN, H)
    cell = nnx.GRUCell(IN, H, dtype=compute_dtype(dtype), rngs=nnx.Rngs(1))
    model = nnx.RNN(cell, return_carry=True)
    graphdef, state, rest = nnx.split(model, nnx.Param, ...)

    def last_hidden(state, xs):
        h0 = jnp.zeros((xs.shape[0], H), jnp.float32)
        return nnx.merge(graphdef, state, rest)(xs, initial_carry=h0)[0]

    return jax_case("flax.nnx", last_hidden, state, xs, y, head)


def case_keras(B, T, IN, H, *, dtype=None):
    import keras

    xs, y, head = data(B, T, IN, H)
    if compute_dtype(dtype) is not None:
        keras.config.set_dtype_policy("mixed_bfloat16")
    layer = keras.layers.GRU(H)  # reset_after=True, last output only
    layer.build((B, T, IN))
    keras.config.set_dtype_policy("float32")
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def last_hidden(tv, xs):
        out, _ = layer.stateless_call(tv, non_trainable, xs)
        return out

    return jax_case("keras", last_hidden, trainable, xs, y, head)


def case_torch(B, T, IN, H, *, dtype=None):
    """torch.nn.GRU (oneDNN on CPU, cuDNN on GPU)."""
    import numpy as np
    import torch

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    xs, y, _ = data(B, T, IN, H)
    x = torch.from_numpy(np.array(xs)).to(dev)
    yt = torch.from_numpy(np.array(y)).to(dev)
    gru = torch.nn.GRU(IN, H, batch_first=True).to(dev)
    head = torch.nn.Linear(H, 1).to(dev)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    amp = (torch.autocast(dev, dtype=torch.bfloat16) if compute_dtype(dtype) is not None
           else torch.autocast(dev, enabled=False))

    def fwd():
        with torch.no_grad(), amp:
            _, h = gru(x)
        sync()
        return h

    def train():
        gru.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)
        with amp:
            _, h = gru(x)
            loss = torch.mean((head(h[-1].float()) - yt) ** 2)
        loss.backward()
        sync()
        return loss

    mem = None
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        train()
        mem = int(torch.cuda.max_memory_allocated() - base)
    note = f"{dev}, {torch.get_num_threads()} threads" if dev == "cpu" else "cuda (cuDNN)"
    return Case("torch", fwd, train, None, mem, note)


def case_floor(B, T, IN, H, *, dtype=None):
    """A scan of only h <- tanh(sum of the 3 blocks of h W_h), W_h [H, 3H]: the one
    product and nonlinearity per step no GRU goes under (forward only). A train
    step needs at least three such products per step (PERF_NOTES), so its floor
    is ~3x this."""
    import jax
    import jax.numpy as jnp

    from gru_jax.fused import default_plan

    unroll = default_plan().unroll  # the loop unroll gru_jax uses on this backend
    w = jax.random.normal(jax.random.key(2), (H, 3 * H), jnp.float32) / math.sqrt(H)
    dtype = compute_dtype(dtype)

    def floor(w):
        def step(h, _):
            g = (h @ w if dtype is None else
                 jnp.matmul(h.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32))
            return jnp.tanh(g[:, :H] + g[:, H:2 * H] + g[:, 2 * H:]), None

        return jax.lax.scan(step, jnp.zeros((B, H), jnp.float32), None, length=T,
                            unroll=unroll)[0]

    c, _, _ = compile_fn(floor, w)
    return Case("floor", lambda: c(w), None, None, None, "forward only")


def jax_key(seed):
    import jax

    return jax.random.key(seed)


def jax_random_mask(B, T, keep=0.8):
    """[B, T] bool, each step kept with probability `keep` (a mask with holes)."""
    import jax

    return jax.random.bernoulli(jax.random.key(7), keep, (B, T))


# name -> (B, T, I, H, *, dtype=None) -> Case
BUILDERS = {
    "gru_jax": case_gru_jax,
    "gru_jax[ref]": lambda *s, **kw: case_gru_jax(*s, impl="reference", name="gru_jax[ref]",
                                                  **kw),
    # the cost of scan options (impl="auto"): masks with holes and input dropout
    # run in the fused GRU; recurrent dropout falls back to the reference scan
    "gru_jax[mask]": lambda B, T, *s, **kw: case_gru_jax(
        B, T, *s, name="gru_jax[mask]", options=dict(
            mask=jax_random_mask(B, T), zero_output_for_mask=False), **kw),
    "gru_jax[dropout]": lambda *s, **kw: case_gru_jax(
        *s, name="gru_jax[dropout]", options=dict(dropout=0.1, rng=jax_key(0)), **kw),
    "gru_jax[rec_dropout]": lambda *s, **kw: case_gru_jax(
        *s, name="gru_jax[rec_dropout]", options=dict(recurrent_dropout=0.1, rng=jax_key(0)),
        **kw),
    "flax.linen": case_flax_linen,
    "flax.nnx": case_flax_nnx,
    "keras": case_keras,
    "torch": case_torch,
    "floor": case_floor,
}
