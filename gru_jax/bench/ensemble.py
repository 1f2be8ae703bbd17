"""The vmap mode: K members of a `gru_scan` training step under one `jax.vmap`
against the same K run one by one, per hidden size (the issue-17 target: batch
32, T 200, input 2, K 8). Each member has its own params, data and targets."""

from __future__ import annotations

from gru_jax.bench.tables import table_lines
from gru_jax.bench.timing import interleaved_medians

HIDDENS = (16, 32, 64, 128)


def ensemble_thunks(K: int, B: int, T: int, IN: int, H: int, *, impl="auto", dtype=None):
    """-> {"apart": K jitted gradients one after another, "vmap": one vmapped
    gradient of all K}; the gradient of an MSE through a Dense(1) head on the last
    state w.r.t. the GRU params and the head."""
    import jax
    import jax.numpy as jnp

    import gru_jax
    from gru_jax.bench.cases import compute_dtype

    dt = compute_dtype(dtype)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params = jax.vmap(lambda k: gru_jax.init_gru(k, IN, H))(jax.random.split(k1, K))
    head = {"w": jnp.full((K, H, 1), 0.01), "b": jnp.zeros((K, 1))}
    xs = jax.random.normal(k2, (K, B, T, IN))
    y = jax.random.normal(k3, (K, B, 1))

    def loss(p, hd, x, y):
        h = gru_jax.gru_scan(p, x, impl=impl, dtype=dt)[0]
        return jnp.mean((h @ hd["w"] + hd["b"] - y) ** 2)

    one = jax.jit(jax.grad(loss, argnums=(0, 1)))
    packed = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1))))
    members = [jax.tree_util.tree_map(lambda a, k=k: a[k], (params, head, xs, y))
               for k in range(K)]
    return {"apart": lambda: [one(*m) for m in members],
            "vmap": lambda: packed(params, head, xs, y)}


def run_vmap(hiddens=HIDDENS, *, K=8, B=32, T=200, IN=2, repeats=5, impl="auto",
             dtype=None, log=print) -> list[dict]:
    """One row per hidden size: medians (ms) of K one by one and of the vmap, and
    vmap_speedup = per-member throughput of the vmap over one by one's (> 1: pays)."""
    rows = []
    for H in hiddens:
        med = interleaved_medians(ensemble_thunks(K, B, T, IN, H, impl=impl, dtype=dtype),
                                  repeats)
        rows.append({"K": K, "B": B, "T": T, "I": IN, "H": H, "impl": impl,
                     "apart_ms": med["apart"], "vmap_ms": med["vmap"],
                     "vmap_speedup": med["apart"] / med["vmap"]})
        log(vmap_markdown(rows[-1:], header=False))
    return rows


def vmap_markdown(rows, header=True) -> str:
    """The vmap table; without `header`, its rows alone (printed as they come)."""
    return table_lines(
        ["K, B, T, I", "hidden", "K one by one ms", "vmap ms", "vmap per-member speed-up"],
        [[f"{r['K']}, {r['B']}, {r['T']}, {r['I']}", r["H"], f"{r['apart_ms']:.1f}",
          f"{r['vmap_ms']:.1f}", f"{r['vmap_speedup']:.2f}x"] for r in rows], header)
