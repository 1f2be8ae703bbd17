"""The memory mode: XLA's account of the train step's memory against T, and the
peak RSS of a fresh process running one step (`python -m gru_jax.bench.memory
NAME:B:T:I:H [DTYPE]` is that child)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from gru_jax.bench.cases import case_flax_linen, case_gru_jax
from gru_jax.bench.tables import markdown_table
from gru_jax.bench.timing import block

MEM_CONFIGS = {
    "gru_jax": dict(impl="auto", remat=False),
    "gru_jax remat": dict(impl="auto", remat=True),
    "gru_jax[ref]": dict(impl="reference", remat=False),
    "gru_jax[ref] remat": dict(impl="reference", remat=True),
    "flax.linen": None,
}


def _mem_case(name, B, T, IN, H, dtype=None):
    if name == "flax.linen":
        return case_flax_linen(B, T, IN, H, dtype=dtype)
    return case_gru_jax(B, T, IN, H, name=name, dtype=dtype, **MEM_CONFIGS[name])


def run_rss(config: str, dtype=None):
    """Child process: build one train step, run it once, print JSON with peak RSS."""
    import resource

    name, B, T, IN, H = config.split(":")
    B, T, IN, H = map(int, (B, T, IN, H))
    c = _mem_case(name, B, T, IN, H, dtype)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    block(c.train())
    sec = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": peak / 1024, "rss_before_step_mb": before / 1024,
                      "step_s": sec, "compile_s": c.compile_s,
                      "xla_mb": None if c.mem_bytes is None else c.mem_bytes / 2**20}))


def _child_env():
    """This environment with gru_jax's root on PYTHONPATH (the child imports it)."""
    import os

    import gru_jax

    root = os.path.dirname(os.path.dirname(os.path.abspath(gru_jax.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run_memory(Ts, B=16, IN=2, H=128, rss_limit_mb=6000, dtype=None):
    """Per config and T: XLA's memory analysis (compile only) and, where the
    analysis says it fits, the peak RSS of a fresh process running one step."""
    rows = []
    for T in Ts:
        for name in MEM_CONFIGS:
            row = {"T": T, "B": B, "I": IN, "H": H, "impl": name}
            c = _mem_case(name, B, T, IN, H, dtype)
            row["xla_mb"] = None if c.mem_bytes is None else c.mem_bytes / 2**20
            row["compile_s"] = c.compile_s
            del c
            if row["xla_mb"] is not None and row["xla_mb"] < rss_limit_mb:
                cmd = [sys.executable, "-m", "gru_jax.bench.memory", f"{name}:{B}:{T}:{IN}:{H}",
                       dtype or "float32"]
                out = subprocess.run(cmd, capture_output=True, text=True, env=_child_env())
                try:
                    row.update(json.loads(out.stdout.strip().splitlines()[-1]))
                except (IndexError, json.JSONDecodeError):
                    row["error"] = out.stderr[-500:]
            rows.append(row)
            print(row, flush=True)
    return rows


def memory_markdown(rows):
    """The memory table (one row per T and implementation)."""
    return markdown_table(
        ["T (B=16, I=2, H=128)", "impl", "XLA temp+out MB", "peak RSS MB", "step s", "compile s"],
        [[r["T"], r["impl"], _fmt(r.get("xla_mb"), ".1f"), _fmt(r.get("peak_rss_mb"), ".0f"),
          _fmt(r.get("step_s"), ".2f"), _fmt(r.get("compile_s"), ".2f")] for r in rows])


def _fmt(v, fmt):
    return "-" if v is None else format(v, fmt)


if __name__ == "__main__":
    run_rss(sys.argv[1], *sys.argv[2:3])
