"""The ablation mode: forward formulations of the same GRU step (us per step,
over the floor) and train-step plans of the fused GRU (ratio to flax.linen)."""

from __future__ import annotations

import dataclasses

from gru_jax.bench.cases import Case, case_flax_linen, case_gru_jax, data
from gru_jax.bench.compare import time_cases
from gru_jax.bench.tables import markdown_table
from gru_jax.bench.timing import compile_fn


def ablation_forward(B, T, IN, H, repeats):
    """Forward formulations of the same GRU step (time-major, no mask), us/step."""
    import jax
    import jax.numpy as jnp

    import gru_jax
    from gru_jax.cells.gru import gru_update, reset_after_gates
    from gru_jax.fused import fuse_params

    xs = jnp.swapaxes(data(B, T, IN, H)[0], 0, 1)
    p = gru_jax.init_gru(jax.random.key(1), IN, H)
    w_i, b_i, w_h, b_hn = jax.tree_util.tree_map(lambda a: a[0], fuse_params(p))  # one GRU
    h0 = jnp.zeros((B, H))
    S3 = lambda a: (a[..., :H], a[..., H:2 * H], a[..., 2 * H:])  # noqa: E731

    def cell(h, ir, iz, in_, hr, hz, hn):  # the library's gate math, one formulation per form
        _, z, n, _ = reset_after_gates((ir, iz, in_), (hr, hz, hn), b_hn)
        return gru_update(h, z, n)

    def scan(step, xs, unroll=1):
        return jax.lax.scan(lambda h, x: (step(h, x),) * 2, h0, xs, unroll=unroll)[1]

    wi3 = jnp.concatenate(w_i, 1)
    bi3 = jnp.concatenate(b_i)
    def in_step(h, x):
        return cell(h, *[x @ w + b for w, b in zip(w_i, b_i, strict=True)], *S3(h @ w_h))

    forms = {
        "in-step input products (per gate), fused [H,3H] recurrent (CPU choice)":
            lambda xs: scan(in_step, xs),
        "same, unroll=2": lambda xs: scan(in_step, xs, 2),
        "same, unroll=4": lambda xs: scan(in_step, xs, 4),
        "in-step input product fused [I,3H], sliced":
            lambda xs: scan(lambda h, x: cell(h, *S3(x @ wi3 + bi3), *S3(h @ w_h)), xs),
        "in-step, per-gate recurrent products [H,H] x3":
            lambda xs: scan(lambda h, x: cell(
                h, *[x @ w + b for w, b in zip(w_i, b_i, strict=True)],
                *[h @ w for w in S3(w_h)]), xs),
        "hoisted [T,B,3H], sliced per step":
            lambda xs: scan(lambda h, g: cell(h, *S3(g), *S3(h @ w_h)), xs @ wi3 + bi3),
        "hoisted, split into 3 x [T,B,H]":
            lambda xs: scan(lambda h, g: cell(h, *g, *S3(h @ w_h)), S3(xs @ wi3 + bi3)),
    }
    # b_hn folded: one [I+H, 4H] product of [x, h] (columns r, z, n_x, n_h)
    W4 = jnp.concatenate([
        jnp.concatenate([wi3, jnp.zeros((IN, H))], 1),
        jnp.concatenate([w_h[:, :2 * H], jnp.zeros((H, H)), w_h[:, 2 * H:]], 1)], 0)
    b4 = jnp.concatenate([bi3, b_hn])

    def cat_step(h, x):  # columns r, z, n_x, n_h (b_hn in): h terms r, z already summed in
        g = jnp.concatenate([x, h], 1) @ W4 + b4
        xp = (g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H])
        _, z, n, _ = reset_after_gates(xp, (0.0, 0.0, g[:, 3 * H:]), 0.0)
        return gru_update(h, z, n)

    forms["[x, h] [I+H, 4H] in one product (b_hn folded in)"] = lambda xs: scan(cat_step, xs)

    def floor(xs):
        return scan(lambda h, x: jnp.tanh(sum(S3(h @ w_h))), xs)

    forms["floor"] = floor
    compiled = {k: compile_fn(f, xs)[0] for k, f in forms.items()}
    ref = compiled[next(iter(compiled))](xs)
    for k, c in compiled.items():  # same function (loosely: TF32 on GPU)
        if k != "floor" and not jnp.allclose(c(xs), ref, atol=2e-2):
            raise AssertionError(f"{k} disagrees with the first formulation")
    med = time_cases([Case(k, (lambda c=c: c(xs)), None) for k, c in compiled.items()], repeats)
    fl = med[("floor", "fwd")]
    return [{"shape": [B, T, IN, H], "form": k, "us_per_step": v * 1e3 / T, "over_floor": v / fl}
            for (k, _), v in med.items()]


def ablation_train(B, T, IN, H, repeats, dtype=None):
    """Train-step plans of the fused GRU (and layout, precision), ratio to flax.linen."""
    from gru_jax.fused import default_plan

    plan0 = default_plan()
    variants = {
        f"default plan {plan0}": dict(plan=plan0),
        "reference (JAX autodiff)": dict(impl="reference"),
        "save h W_h per step instead of recomputing per block": dict(
            plan=dataclasses.replace(plan0, save="gh")),
        ("input products hoisted per block (proj=block)" if plan0.proj == "step" else
         "input products inside the step (proj=step)"): dict(
            plan=dataclasses.replace(plan0, proj="block" if plan0.proj == "step" else "step")),
        "blocks 4x larger": dict(plan=dataclasses.replace(
            plan0, block_elems=plan0.block_elems * 4)),
        "blocks 4x smaller": dict(plan=dataclasses.replace(
            plan0, block_elems=plan0.block_elems // 4)),
        **{f"unroll={u}": dict(plan=dataclasses.replace(plan0, unroll=u))
           for u in (1, 2, 4, 8) if u != plan0.unroll},
        "time-major input [T,B,I]": dict(plan=plan0, time_major=True),
    }
    cases = [case_flax_linen(B, T, IN, H, dtype=dtype)]
    for k, kw in variants.items():
        c = case_gru_jax(B, T, IN, H, name=k, dtype=dtype, **kw)
        c.fwd = None
        cases.append(c)
    cases[0].fwd = None
    c = case_gru_jax(B, T, IN, H, name="bf16 products (f32 accumulation)", plan=plan0,
                     dtype="bfloat16")
    c.fwd = None
    cases.append(c)
    med = time_cases(cases, repeats)
    base = med[("flax.linen", "train")]
    return [{"shape": [B, T, IN, H], "variant": n, "train_ms": v, "vs_flax_linen": base / v}
            for (n, _), v in med.items()]


# --------------------------------------------------------------------------- ensemble


def ablation_markdown(fwd_rows, train_rows) -> list[str]:
    """The two ablation tables as markdown lines."""
    shape = lambda r: ", ".join(map(str, r["shape"]))  # noqa: E731
    fwd = markdown_table(["B, T, I, H", "forward formulation", "us/step", "/ floor"],
                         [[shape(r), r["form"], f"{r['us_per_step']:.1f}",
                           f"{r['over_floor']:.2f}"] for r in fwd_rows])
    train = markdown_table(["B, T, I, H", "train-step variant", "ms", "vs flax.linen"],
                           [[shape(r), r["variant"], f"{r['train_ms']:.1f}",
                             f"{r['vs_flax_linen']:.2f}x"] for r in train_rows])
    return [*fwd.split("\n"), "", *train.split("\n")]
