"""The lstm mode: the LSTM's train step by the fused backward (`gru_jax.fused.lstm`)
against the reference scan (JAX autodiff) and flax.linen's OptimizedLSTMCell,
side by side in one process, at the study's adding shapes (batch 32, T = 640,
input 2) and a bench shape."""

from __future__ import annotations

from gru_jax.bench.cases import Case, compute_dtype, data, jax_case
from gru_jax.bench.compare import time_cases
from gru_jax.bench.tables import markdown_table

SHAPES = [(32, 640, 2, 16), (32, 640, 2, 64), (32, 640, 2, 128), (64, 256, 8, 128)]
IMPLS = ("fused", "reference")


def case_lstm(B, T, IN, H, *, impl, dtype=None) -> Case:
    import jax

    import gru_jax

    xs, y, head = data(B, T, IN, H)
    params = gru_jax.init_lstm(jax.random.key(1), IN, H)
    dtype = compute_dtype(dtype)
    return jax_case(f"gru_jax lstm[{impl}]", lambda p, xs: gru_jax.lstm_scan(
        p, xs, impl=impl, dtype=dtype)[0][1], params, xs, y, head)


def case_flax_lstm(B, T, IN, H, *, dtype=None) -> Case:
    import flax.linen as nn
    import jax

    xs, y, head = data(B, T, IN, H)
    model = nn.RNN(nn.OptimizedLSTMCell(H, dtype=compute_dtype(dtype)), return_carry=True)
    params = model.init(jax.random.key(1), xs)
    return jax_case("flax.linen lstm", lambda p, xs: model.apply(p, xs)[0][1], params, xs,
                    y, head)


def run_lstm(shapes=SHAPES, repeats: int = 7, dtype=None, log=print) -> list[dict]:
    """Per shape and implementation: train-step median ms, and its speed-up over the
    reference scan and over flax.linen (> 1 is faster)."""
    rows = []
    for shape in shapes:
        cases = [*(case_lstm(*shape, impl=i, dtype=dtype) for i in IMPLS),
                 case_flax_lstm(*shape, dtype=dtype)]
        med = {name: ms for (name, kind), ms in time_cases(cases, repeats).items()
               if kind == "train"}
        ref, flax = med.get("gru_jax lstm[reference]"), med.get("flax.linen lstm")
        for c in cases:
            ms = med.get(c.name)
            rows.append({"shape": list(shape), "impl": c.name, "train_ms": ms,
                         "vs_reference": ref / ms if ms and ref else None,
                         "vs_flax_linen": flax / ms if ms and flax else None,
                         "mem_mb": None if c.mem_bytes is None else c.mem_bytes / 2**20})
        log(lstm_markdown(rows[-len(cases):]))
    return rows


def lstm_markdown(rows) -> str:
    f = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
    return markdown_table(
        ["B, T, I, H", "impl", "train ms", "vs reference", "vs flax.linen", "memory MB"],
        [[", ".join(map(str, r["shape"])), r["impl"], f(r["train_ms"], ".1f"),
          f(r["vs_reference"], ".2f") + "x", f(r["vs_flax_linen"], ".2f") + "x",
          f(r["mem_mb"], ".1f")] for r in rows], "llrrrr")
