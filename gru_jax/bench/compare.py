"""The compare mode: every implementation at every shape, side by side in one
process; train-step ratios to flax.linen and the distance to the floor."""

from __future__ import annotations

import gc
import math
import sys

from gru_jax.bench.cases import BUILDERS, Case, case_gru_jax
from gru_jax.bench.tables import table_lines
from gru_jax.bench.timing import interleaved_medians, short


def time_cases(cases: list[Case], repeats: int) -> dict:
    """{(name, "fwd" | "train"): median ms} over the cases' thunks, interleaved; a
    thunk that fails (e.g. out of memory) is left out and its case noted."""
    thunks = {(c.name, kind): f for c in cases
              for kind, f in (("fwd", c.fwd), ("train", c.train)) if f is not None}
    med = interleaved_medians(thunks, repeats)
    for c in cases:
        for kind in ("fwd", "train"):
            if (c.name, kind) in thunks and (c.name, kind) not in med:
                c.note = (c.note + "; " if c.note else "") + f"{kind} failed"
    return med


def run_compare(shapes, impls, repeats, dtype=None, log=print) -> list[dict]:
    """One row per (shape, impl): forward and train medians (ms), the train step's
    ratio to flax.linen (> 1 is faster), the forward over the floor, and
    train_over_floor = train ms / (3 x the floor's forward): how far the train step
    is from three GEMMs per step (a floor of 1.0)."""
    rows = []
    for shape in shapes:
        cases = []
        builders = [(n, BUILDERS[n]) for n in impls]
        if shape[1] >= 10_000 and "gru_jax" in impls:
            builders.append(("gru_jax remat", lambda *s, **kw: case_gru_jax(
                *s, remat=True, name="gru_jax remat", **kw)))
        for name, build in builders:
            try:
                cases.append(build(*shape, dtype=dtype))
            except ImportError as e:
                print(f"  skip {name}: {e}", file=sys.stderr)
            except Exception as e:  # noqa: BLE001 - e.g. out of memory while compiling
                print(f"  {name} failed: {short(e)}", file=sys.stderr)
                cases.append(Case(name, None, None, note=f"failed: {short(e)}"))
        med = time_cases(cases, repeats)
        base, base_f = med.get(("flax.linen", "train")), med.get(("flax.linen", "fwd"))
        floor = med.get(("floor", "fwd"))
        for c in cases:
            fwd, tr = med.get((c.name, "fwd")), med.get((c.name, "train"))
            rows.append({
                "shape": list(shape), "impl": c.name, "fwd_ms": fwd, "train_ms": tr,
                "train_vs_flax_linen": (base / tr) if base and tr else None,
                "fwd_vs_flax_linen": (base_f / fwd) if base_f and fwd else None,
                "fwd_over_floor": (fwd / floor) if floor and fwd else None,
                "train_over_floor": (tr / (3 * floor)) if floor and tr else None,
                "compile_s": c.compile_s,
                "mem_mb": None if c.mem_bytes is None else c.mem_bytes / 2**20,
                "note": c.note,
            })
        log(markdown(rows[-len(cases):], header=False))
        del cases
        _free_device_memory()
    return rows


def _free_device_memory():
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _f(v, fmt):
    return "-" if v is None else format(v, fmt)


COMPARE_HEADER = ["B, T, I, H", "impl", "forward ms", "train ms", "train vs flax.linen",
                  "fwd / floor", "train / 3 floors", "compile s", "memory MB", "note"]


def markdown(rows, header=True) -> str:
    """The compare table; without `header`, its rows alone (printed as they come)."""
    cells = []
    for r in rows:
        ratio = r["train_vs_flax_linen"]
        cells.append([", ".join(map(str, r["shape"])), r["impl"], _f(r["fwd_ms"], ".1f"),
                      _f(r["train_ms"], ".1f"), "-" if ratio is None else f"{ratio:.2f}x",
                      _f(r["fwd_over_floor"], ".2f"), _f(r.get("train_over_floor"), ".2f"),
                      _f(r["compile_s"], ".2f"), _f(r["mem_mb"], ".1f"), r.get("note", "")])
    return table_lines(COMPARE_HEADER, cells, header)


def summary(rows, shapes) -> str:
    """Geometric mean of the train-step ratio against flax.linen per impl, then per
    shape gru_jax's remaining distance to the floor (train ms / 3 floors: 1.0 is
    three GEMMs per step and nothing else)."""
    lines = []
    for impl in sorted({r["impl"] for r in rows}):
        rs = [r["train_vs_flax_linen"] for r in rows
              if r["impl"] == impl and tuple(r["shape"]) in shapes and r["train_vs_flax_linen"]]
        if rs:
            g = math.exp(sum(map(math.log, rs)) / len(rs))
            lines.append(f"- {impl}: train step {g:.2f}x flax.linen "
                         f"(geometric mean over {len(rs)} shapes)")
    for r in rows:
        if r["impl"] == "gru_jax" and r.get("train_over_floor"):
            ratio = r["train_vs_flax_linen"]
            vs = "" if ratio is None else f"{ratio:.2f}x flax.linen, "
            lines.append(f"- {', '.join(map(str, r['shape']))}: gru_jax train step {vs}"
                         f"{r['train_over_floor']:.2f}x its floor (3 floor forwards)")
    return "\n".join(lines)
