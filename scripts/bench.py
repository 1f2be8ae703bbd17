r"""Speed and memory of gru_jax's GRU against its peers, side by side.

    python scripts/bench.py [--json=FILE] [--md=FILE] [--quick]
    python scripts/bench.py --mode=memory [--json=FILE]       # peak memory vs T
    python scripts/bench.py --mode=ablation [--json=FILE]     # formulation choices
    python scripts/bench.py --preset=gpu --dtype=bfloat16     # the GPU grid
    python scripts/bench.py --mode=ensemble [--json=FILE]     # 8 seeds: apart, packed, 2 procs

What runs (one process; every implementation warmed up, then timed in turn,
round after round, so load on a shared machine hits all alike; medians):

  gru_jax          gru_jax.gru_scan, impl="auto" (the fused GRU, hand-written
                   backward, plan picked by backend: gru_jax.fused.default_plan)
  gru_jax[ref]     gru_jax.gru_scan, impl="reference" (plain scan, JAX autodiff)
  flax.linen       flax.linen.RNN(GRUCell)            (the ratio baseline)
  flax.nnx         flax.nnx.RNN(GRUCell)
  keras            keras.layers.GRU on the JAX backend (stateless_call)
  torch            torch.nn.GRU (oneDNN on CPU, cuDNN on GPU)
  floor            a scan of only h <- tanh(sum of the 3 blocks of h W_h),
                   W_h [H, 3H]: the one product and one nonlinearity per step
                   that no GRU can go under (forward only; unrolled as
                   gru_jax's default plan is on this backend)

"forward" = jitted last hidden state; "train" = jitted gradient of a
mean-squared loss on the last hidden state through a Dense(1) head, w.r.t.
every parameter. "vs flax.linen" = flax.linen's time / this one's (> 1 is
faster). Compile = lower + compile wall time of the train step. Memory = XLA's
memory analysis of the compiled train step (temporaries + outputs; torch on
GPU: max_memory_allocated).

Runs on whatever backend JAX picks; on GPU torch runs on CUDA.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with torch

import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "compare",
                  ["compare", "memory", "ablation", "rss", "ensemble", "ensemble_worker"],
                  "What to measure.")
flags.DEFINE_string("json", None, "Write the results as JSON to this file.")
flags.DEFINE_string("md", None, "Write the markdown table to this file.")
flags.DEFINE_bool("quick", False,
                  "Fewer repeats and a shorter long-sequence row (CPU: a few minutes).")
flags.DEFINE_enum("preset", "default", ["default", "gpu"],
                  "Shape grid: the CPU shapes, or the GPU grid.")
flags.DEFINE_list("shapes", None, "Override the shapes: B:T:I:H,...")
flags.DEFINE_list("impls", None, "Only these implementations (names as in the table).")
flags.DEFINE_integer("repeats", None, "Timed rounds (default 5, --quick 3).")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"],
                  "Compute dtype of the matrix products (bf16: f32 accumulation, f32 state).")
flags.DEFINE_list("mem_T", None, "--mode=memory: sequence lengths (default 1000,10000,100000).")
flags.DEFINE_bool("train_only", False, "--mode=ablation: skip the forward formulations.")
flags.DEFINE_string("rss_config", None, "internal: --mode=rss runs one config, prints peak RSS.")
flags.DEFINE_integer("ens_members", 8, "--mode=ensemble: seeds trained (ensemble_worker: its own).")
flags.DEFINE_integer("ens_steps", 200, "--mode=ensemble: train steps per seed per timed round.")
flags.DEFINE_bool("ens_dp", False, "--mode=ensemble: also one run on 1 vs 4 fake CPU devices.")
flags.DEFINE_bool("ens_packed", True, "internal (ensemble_worker): one vmapped program.")

CPU_SHAPES = [(32, 1000, 2, 128), (64, 256, 8, 128), (128, 200, 32, 256)]
LONG_SHAPE = (16, 10_000, 2, 128)
GPU_SHAPES = [(B, T, 32, H) for H in (256, 1024) for T in (1000, 10_000) for B in (32, 256)]
ALL_IMPLS = ["gru_jax", "gru_jax[ref]", "flax.linen", "flax.nnx", "keras", "torch", "floor"]


# --------------------------------------------------------------------------- utils


def _block(x):
    import jax

    return jax.block_until_ready(x)


@dataclasses.dataclass
class Case:
    """One implementation at one shape: thunks that run once and wait."""

    name: str
    fwd: Callable[[], object] | None
    train: Callable[[], object] | None
    compile_s: float | None = None
    mem_bytes: int | None = None
    note: str = ""


def _compile(fn, *args):
    """jit(fn) compiled for args -> (callable, seconds, memory bytes or None)."""
    import jax

    from gru_jax.harness.steps import compiled_memory_bytes  # the trainer's definition

    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    sec = time.perf_counter() - t
    return compiled, sec, compiled_memory_bytes(compiled)


def _data(B, T, IN, H, seed=0):
    import jax
    import jax.numpy as jnp

    k1, k2 = jax.random.split(jax.random.key(seed))
    xs = jax.random.normal(k1, (B, T, IN), jnp.float32)
    y = jax.random.normal(k2, (B, 1), jnp.float32)
    head = {"w": jnp.full((H, 1), 0.01, jnp.float32), "b": jnp.zeros((1,), jnp.float32)}
    return xs, y, head


def _mse_head(h, head, y):
    import jax.numpy as jnp

    return jnp.mean((h.astype(jnp.float32) @ head["w"] + head["b"] - y) ** 2)


def _jax_case(name, last_hidden, params, xs, y, head, note=""):
    """last_hidden(params, xs) -> [B, H]; builds the forward and train thunks."""
    import jax

    def loss(params, head, xs, y):
        return _mse_head(last_hidden(params, xs), head, y)

    grad = jax.grad(loss, argnums=(0, 1))
    fwd_c, _, _ = _compile(last_hidden, params, xs)
    train_c, sec, mem = _compile(grad, params, head, xs, y)
    return Case(name, lambda: fwd_c(params, xs), lambda: train_c(params, head, xs, y),
                sec, mem, note)


def _dtype():
    import jax.numpy as jnp

    return None if FLAGS.dtype == "float32" else jnp.dtype(FLAGS.dtype)


# --------------------------------------------------------------------------- peers


def case_gru_jax(B, T, IN, H, *, impl="auto", remat=False, name="gru_jax", plan=None,
                 time_major=False, options=None):
    import jax
    import jax.numpy as jnp

    import gru_jax

    xs, y, head = _data(B, T, IN, H)
    if time_major:
        xs = jnp.swapaxes(xs, 0, 1)
    params = gru_jax.init_gru(jax.random.key(1), IN, H)
    dtype = _dtype()
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

    return _jax_case(name, last_hidden, params, xs, y, head)


def case_flax_linen(B, T, IN, H):
    import flax.linen as nn
    import jax

    xs, y, head = _data(B, T, IN, H)
    model = nn.RNN(nn.GRUCell(H, dtype=_dtype()), return_carry=True)
    params = model.init(jax.random.key(1), xs)
    return _jax_case("flax.linen", lambda p, xs: model.apply(p, xs)[0], params, xs, y, head)


def case_flax_nnx(B, T, IN, H):
    import jax.numpy as jnp
    from flax import nnx

    xs, y, head = _data(B, T, IN, H)
    model = nnx.RNN(nnx.GRUCell(IN, H, dtype=_dtype(), rngs=nnx.Rngs(1)), return_carry=True)
    graphdef, state, rest = nnx.split(model, nnx.Param, ...)

    def last_hidden(state, xs):
        h0 = jnp.zeros((xs.shape[0], H), jnp.float32)
        return nnx.merge(graphdef, state, rest)(xs, initial_carry=h0)[0]

    return _jax_case("flax.nnx", last_hidden, state, xs, y, head)


def case_keras(B, T, IN, H):
    import keras

    xs, y, head = _data(B, T, IN, H)
    if FLAGS.dtype != "float32":
        keras.config.set_dtype_policy("mixed_bfloat16")
    layer = keras.layers.GRU(H)  # reset_after=True, last output only
    layer.build((B, T, IN))
    keras.config.set_dtype_policy("float32")
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def last_hidden(tv, xs):
        out, _ = layer.stateless_call(tv, non_trainable, xs)
        return out

    return _jax_case("keras", last_hidden, trainable, xs, y, head)


def case_torch(B, T, IN, H):
    import numpy as np
    import torch

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    xs, y, _ = _data(B, T, IN, H)
    x = torch.from_numpy(np.array(xs)).to(dev)
    yt = torch.from_numpy(np.array(y)).to(dev)
    gru = torch.nn.GRU(IN, H, batch_first=True).to(dev)
    head = torch.nn.Linear(H, 1).to(dev)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    amp = (torch.autocast(dev, dtype=torch.bfloat16) if FLAGS.dtype == "bfloat16"
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


def case_floor(B, T, IN, H):
    import jax
    import jax.numpy as jnp

    from gru_jax.fused import default_plan

    unroll = default_plan().unroll  # the loop unroll gru_jax uses on this backend
    w = jax.random.normal(jax.random.key(2), (H, 3 * H), jnp.float32) / math.sqrt(H)
    dtype = _dtype()

    def floor(w):
        def step(h, _):
            g = (h @ w if dtype is None else
                 jnp.matmul(h.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32))
            return jnp.tanh(g[:, :H] + g[:, H:2 * H] + g[:, 2 * H:]), None

        return jax.lax.scan(step, jnp.zeros((B, H), jnp.float32), None, length=T,
                            unroll=unroll)[0]

    c, _, _ = _compile(floor, w)
    return Case("floor", lambda: c(w), None, None, None, "forward only")


def jax_key(seed):
    import jax

    return jax.random.key(seed)


def jax_random_mask(B, T, keep=0.8):
    """[B, T] bool, each step kept with probability `keep` (a mask with holes)."""
    import jax

    return jax.random.bernoulli(jax.random.key(7), keep, (B, T))


BUILDERS = {
    "gru_jax": case_gru_jax,
    "gru_jax[ref]": lambda *s: case_gru_jax(*s, impl="reference", name="gru_jax[ref]"),
    # the cost of scan options (impl="auto"): masks with holes and input dropout
    # run in the fused GRU; recurrent dropout falls back to the reference scan
    "gru_jax[mask]": lambda B, T, *s: case_gru_jax(B, T, *s, name="gru_jax[mask]", options=dict(
        mask=jax_random_mask(B, T), zero_output_for_mask=False)),
    "gru_jax[dropout]": lambda *s: case_gru_jax(*s, name="gru_jax[dropout]", options=dict(
        dropout=0.1, rng=jax_key(0))),
    "gru_jax[rec_dropout]": lambda *s: case_gru_jax(*s, name="gru_jax[rec_dropout]", options=dict(
        recurrent_dropout=0.1, rng=jax_key(0))),
    "flax.linen": case_flax_linen,
    "flax.nnx": case_flax_nnx,
    "keras": case_keras,
    "torch": case_torch,
    "floor": case_floor,
}


# --------------------------------------------------------------------------- timing


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0][:160] if msg else ''}"


def time_cases(cases: list[Case], repeats: int) -> dict:
    """Warm up every thunk, then `repeats` rounds over all of them; medians in ms.
    A thunk that fails (e.g. out of memory) is dropped and its case noted."""
    thunks = []
    for c in cases:
        for kind, f in (("fwd", c.fwd), ("train", c.train)):
            if f is None:
                continue
            try:
                _block(f())
                thunks.append((c.name, kind, f))
            except Exception as e:  # noqa: BLE001
                c.note = (c.note + "; " if c.note else "") + f"{kind} failed: {_short(e)}"
                print(f"  {c.name} {kind}: {_short(e)}", file=sys.stderr, flush=True)
    times = {(n, k): [] for n, k, _ in thunks}
    for _ in range(repeats):
        for n, k, f in thunks:
            t = time.perf_counter()
            _block(f())
            times[(n, k)].append((time.perf_counter() - t) * 1e3)
    return {key: statistics.median(v) for key, v in times.items()}


def run_compare(shapes, impls, repeats):
    rows = []
    for shape in shapes:
        cases = []
        builders = [(n, BUILDERS[n]) for n in impls]
        if shape[1] >= 10_000 and "gru_jax" in impls:
            builders.append(("gru_jax remat",
                             lambda *s: case_gru_jax(*s, remat=True, name="gru_jax remat")))
        for name, build in builders:
            try:
                cases.append(build(*shape))
            except ImportError as e:
                print(f"  skip {name}: {e}", file=sys.stderr)
            except Exception as e:  # noqa: BLE001 - e.g. out of memory while compiling
                print(f"  {name} failed: {_short(e)}", file=sys.stderr)
                cases.append(Case(name, None, None, note=f"failed: {_short(e)}"))
        med = time_cases(cases, repeats)
        base = med.get(("flax.linen", "train"))
        base_f = med.get(("flax.linen", "fwd"))
        floor = med.get(("floor", "fwd"))
        for c in cases:
            fwd, tr = med.get((c.name, "fwd")), med.get((c.name, "train"))
            rows.append({
                "shape": list(shape), "impl": c.name, "fwd_ms": fwd, "train_ms": tr,
                "train_vs_flax_linen": (base / tr) if base and tr else None,
                "fwd_vs_flax_linen": (base_f / fwd) if base_f and fwd else None,
                "fwd_over_floor": (fwd / floor) if floor and fwd else None,
                "compile_s": c.compile_s,
                "mem_mb": None if c.mem_bytes is None else c.mem_bytes / 2**20,
                "note": c.note,
            })
        print(markdown(rows[-len(cases):], header=False), flush=True)
        del cases
        _free_device_memory()
    return rows


def _free_device_memory():
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _f(v, fmt):
    return "-" if v is None else format(v, fmt)


def markdown(rows, header=True):
    out = []
    if header:
        out.append("| B, T, I, H | impl | forward ms | train ms | train vs flax.linen | "
                   "fwd / floor | compile s | memory MB | note |")
        out.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            ", ".join(map(str, r["shape"])), r["impl"], _f(r["fwd_ms"], ".1f"),
            _f(r["train_ms"], ".1f"),
            "-" if r["train_vs_flax_linen"] is None else f"{r['train_vs_flax_linen']:.2f}x",
            "-" if r["fwd_over_floor"] is None else f"{r['fwd_over_floor']:.2f}",
            _f(r["compile_s"], ".2f"), _f(r["mem_mb"], ".1f"), r.get("note", "")))
    return "\n".join(out)


def summary(rows, shapes):
    """Geometric mean of the train-step ratio against flax.linen per impl."""
    lines = []
    for impl in sorted({r["impl"] for r in rows}):
        rs = [r["train_vs_flax_linen"] for r in rows
              if r["impl"] == impl and tuple(r["shape"]) in shapes and r["train_vs_flax_linen"]]
        if rs:
            g = math.exp(sum(map(math.log, rs)) / len(rs))
            lines.append(f"- {impl}: train step {g:.2f}x flax.linen "
                         f"(geometric mean over {len(rs)} shapes)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- memory


MEM_CONFIGS = {
    "gru_jax": dict(impl="auto", remat=False),
    "gru_jax remat": dict(impl="auto", remat=True),
    "gru_jax[ref]": dict(impl="reference", remat=False),
    "gru_jax[ref] remat": dict(impl="reference", remat=True),
    "flax.linen": None,
}


def _mem_case(name, B, T, IN, H):
    if name == "flax.linen":
        return case_flax_linen(B, T, IN, H)
    return case_gru_jax(B, T, IN, H, name=name, **MEM_CONFIGS[name])


def run_rss(config: str):
    """Child process: build one train step, run it once, print JSON with peak RSS."""
    import resource

    name, B, T, IN, H = config.split(":")
    B, T, IN, H = map(int, (B, T, IN, H))
    c = _mem_case(name, B, T, IN, H)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    _block(c.train())
    sec = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": peak / 1024, "rss_before_step_mb": before / 1024,
                      "step_s": sec, "compile_s": c.compile_s,
                      "xla_mb": None if c.mem_bytes is None else c.mem_bytes / 2**20}))


def run_memory(Ts, B=16, IN=2, H=128, rss_limit_mb=6000):
    """Per config and T: XLA's memory analysis (compile only) and, where the
    analysis says it fits, the peak RSS of a fresh process running one step."""
    rows = []
    for T in Ts:
        for name in MEM_CONFIGS:
            row = {"T": T, "B": B, "I": IN, "H": H, "impl": name}
            c = _mem_case(name, B, T, IN, H)
            row["xla_mb"] = None if c.mem_bytes is None else c.mem_bytes / 2**20
            row["compile_s"] = c.compile_s
            del c
            if row["xla_mb"] is not None and row["xla_mb"] < rss_limit_mb:
                cmd = [sys.executable, os.path.abspath(__file__), "--mode=rss",
                       f"--rss_config={name}:{B}:{T}:{IN}:{H}", f"--dtype={FLAGS.dtype}"]
                out = subprocess.run(cmd, capture_output=True, text=True)
                try:
                    row.update(json.loads(out.stdout.strip().splitlines()[-1]))
                except (IndexError, json.JSONDecodeError):
                    row["error"] = out.stderr[-500:]
            rows.append(row)
            print(row, flush=True)
    return rows


def memory_markdown(rows):
    out = ["| T (B=16, I=2, H=128) | impl | XLA temp+out MB | peak RSS MB | step s | compile s |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['T']} | {r['impl']} | {_f(r.get('xla_mb'), '.1f')} | "
                   f"{_f(r.get('peak_rss_mb'), '.0f')} | {_f(r.get('step_s'), '.2f')} | "
                   f"{_f(r.get('compile_s'), '.2f')} |")
    return "\n".join(out)


# --------------------------------------------------------------------------- ablation


def ablation_forward(B, T, IN, H, repeats):
    """Forward formulations of the same GRU step (time-major, no mask), us/step."""
    import jax
    import jax.numpy as jnp

    import gru_jax
    from gru_jax.cells.gru import gru_update, reset_after_gates
    from gru_jax.fused import fuse_params

    xs = jnp.swapaxes(_data(B, T, IN, H)[0], 0, 1)
    p = gru_jax.init_gru(jax.random.key(1), IN, H)
    w_i, b_i, w_h, b_hn = fuse_params(p)
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
    compiled = {k: _compile(f, xs)[0] for k, f in forms.items()}
    ref = compiled[next(iter(compiled))](xs)
    for k, c in compiled.items():  # same function (loosely: TF32 on GPU)
        if k != "floor" and not jnp.allclose(c(xs), ref, atol=2e-2):
            raise AssertionError(f"{k} disagrees with the first formulation")
    med = time_cases([Case(k, (lambda c=c: c(xs)), None) for k, c in compiled.items()], repeats)
    fl = med[("floor", "fwd")]
    return [{"shape": [B, T, IN, H], "form": k, "us_per_step": v * 1e3 / T, "over_floor": v / fl}
            for (k, _), v in med.items()]


def ablation_train(B, T, IN, H, repeats):
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
    cases = [case_flax_linen(B, T, IN, H)]
    for k, kw in variants.items():
        c = case_gru_jax(B, T, IN, H, name=k, **kw)
        c.fwd = None
        cases.append(c)
    cases[0].fwd = None
    dt = FLAGS.dtype
    FLAGS.dtype = "bfloat16"
    c = case_gru_jax(B, T, IN, H, name="bf16 products (f32 accumulation)", plan=plan0)
    c.fwd = None
    cases.append(c)
    FLAGS.dtype = dt
    med = time_cases(cases, repeats)
    base = med[("flax.linen", "train")]
    return [{"shape": [B, T, IN, H], "variant": n, "train_ms": v, "vs_flax_linen": base / v}
            for (n, _), v in med.items()]


# --------------------------------------------------------------------------- ensemble

# The trainer's step (gru_jax.harness.steps.train_program, data sampled inside the step) on the
# adding problem at hidden 32, T 50, batch 64: a small GRU, where a seed sweep is many
# runs that each leave most of the machine idle.
ENSEMBLE_CONFIG = {"model.hidden_size": 32, "task.seq_len": 50, "train.batch_size": 64,
                   "train.schedule": "constant", "train.warmup_steps": 0}


def ensemble_worker(members: int, packed: bool, steps: int) -> None:
    """Builds `members` train states of ENSEMBLE_CONFIG (seeds 0..members-1), warms
    up, prints "ready"; then for every "go" line on stdin trains each for `steps`
    steps (packed: one vmapped program; else one after another, one jitted step
    shared by all) and prints "done <seconds>". The devices are the process's own
    (XLA_FLAGS set by the parent); batches are split over them as in the trainer."""
    import jax
    import jax.numpy as jnp

    from gru_jax.harness import steps as harness_steps
    from gru_jax.harness.config import apply_overrides, base_config, make_task

    config = apply_overrides(base_config("adding"), ENSEMBLE_CONFIG)
    task = make_task(config)
    roots = [jax.random.key(seed) for seed in range(members)]
    init_keys = [jax.random.fold_in(r, 0) for r in roots]
    data_keys = [jax.random.fold_in(r, 1) for r in roots]
    _, replicated = harness_steps.data_mesh()
    groups = [list(range(members))] if packed else [[i] for i in range(members)]
    # One state for all (one set of static fields, so one program serves every group).
    every = harness_steps.create_train_state(jnp.stack(init_keys), config, task)
    jobs = [jax.device_put((harness_steps.stack([harness_steps.unstack(every, i) for i in g]),
                            jnp.stack([data_keys[i] for i in g]),
                            jnp.ones((len(g),), jnp.float32)), replicated) for g in groups]
    # The trainer's own program (a pack of K, or of one reused for every member).
    program = harness_steps.train_program(*jobs[0], task, config.train.batch_size)

    def run(jobs, n):
        out = []
        for st, keys, scales in jobs:
            for _ in range(n):
                st, _metrics = program(st, keys, scales)
            out.append((st, keys, scales))
        return jax.block_until_ready(out)

    t = time.perf_counter()
    jobs = run(jobs, 2)
    print(f"ready {time.perf_counter() - t:.3f}", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        t = time.perf_counter()
        jobs = run(jobs, steps)
        print(f"done {time.perf_counter() - t:.6f}", flush=True)


class _Worker:
    """An ensemble_worker subprocess (optionally with fake host devices)."""

    def __init__(self, members: int, packed: bool, steps: int, devices: int = 1):
        env = dict(os.environ)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_force_host_platform_device_count={devices}").strip()
        cmd = [sys.executable, os.path.abspath(__file__), "--mode=ensemble_worker",
               f"--ens_members={members}", f"--ens_packed={packed}", f"--ens_steps={steps}"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        self.compile_s = None

    def wait_ready(self) -> None:
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"ensemble worker did not start: {line!r}")
        self.compile_s = float(line.split()[1])

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def done(self) -> float:
        return float(self.proc.stdout.readline().split()[1])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def run_ensemble(K: int, steps: int, repeats: int, dp: bool = False) -> list[dict]:
    """Each variant trains K seeds for `steps` steps per round; rounds interleave
    the variants (load on a shared machine hits all alike); medians of the wall
    time from "go" to the last process's "done"."""
    half = K // 2
    variants = {  # name -> (worker specs (members, packed, devices), note)
        "apart": ([(K, False, 1)], f"{K} runs one after another, one process"),
        "packed": ([(K, True, 1)], f"one vmapped program of {K}, one process"),
        "2 procs x packed": ([(half, True, 1)] * 2,
                             f"2 processes at once, each a vmapped program of {half}"),
        "2 procs x apart": ([(half, False, 1)] * 2,
                            f"2 processes at once, each {half} runs one after another"),
    }
    if dp:  # data parallel on fake host devices: the same 2 cores, only split 4 ways
        variants["dp 1 device"] = ([(1, False, 1)], "one run, 1 CPU device")
        variants["dp 4 devices"] = ([(1, False, 4)], "one run, batch split over 4 fake CPU "
                                    "devices (XLA_FLAGS; no effect on a GPU)")
    workers = {n: [_Worker(m, p, steps, d) for m, p, d in specs]
               for n, (specs, _) in variants.items()}
    for ws in workers.values():  # compile all at once (the machine is idle otherwise)
        for w in ws:
            w.wait_ready()
    times = {n: [] for n in variants}
    for r in range(repeats):
        for n, ws in workers.items():
            t = time.perf_counter()
            for w in ws:
                w.go()
            for w in ws:
                w.done()
            times[n].append(time.perf_counter() - t)
        print(f"round {r + 1}/{repeats}: " + ", ".join(
            f"{n} {v[-1]:.2f}s" for n, v in times.items()), flush=True)
    for ws in workers.values():
        for w in ws:
            w.close()
    base = statistics.median(times["apart"])
    rows = []
    for n, (specs, note) in variants.items():
        med = statistics.median(times[n])
        runs = sum(m for m, _, _ in specs)
        rows.append({"variant": n, "note": note, "runs": runs, "steps": steps,
                     "median_s": med, "times_s": times[n],
                     "run_steps_per_s": runs * steps / med,
                     "vs_apart": (base / K) / (med / runs),
                     "compile_s": max(w.compile_s for w in workers[n])})
    return rows


def ensemble_markdown(rows) -> str:
    out = ["| variant | what | runs x steps | median s | run-steps/s | vs apart |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['variant']} | {r['note']} | {r['runs']} x {r['steps']} | "
                   f"{r['median_s']:.2f} | {r['run_steps_per_s']:.0f} | "
                   f"{r['vs_apart']:.2f}x |")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def machine():
    import jax

    dev = jax.devices()[0]
    info = {"backend": jax.default_backend(), "device": str(getattr(dev, "device_kind", dev)),
            "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__}
    try:
        import flax

        info["flax"] = flax.__version__
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    try:
        with open("/proc/loadavg") as f:
            info["loadavg_start"] = f.read().split()[:3]
    except OSError:
        pass
    return info


def main(argv):
    del argv
    if FLAGS.mode == "rss":
        run_rss(FLAGS.rss_config)
        return
    if FLAGS.mode == "ensemble_worker":
        ensemble_worker(FLAGS.ens_members, FLAGS.ens_packed, FLAGS.ens_steps)
        return
    repeats = FLAGS.repeats or (3 if FLAGS.quick else 5)
    cmd = "python " + " ".join(sys.argv)
    result = {"command": cmd, "machine": machine(), "dtype": FLAGS.dtype, "mode": FLAGS.mode}
    md = [f"Command: `{cmd}`", "", f"Machine: {result['machine']}", ""]

    if FLAGS.mode == "compare":
        if FLAGS.shapes:
            shapes = [tuple(int(v) for v in s.split(":")) for s in FLAGS.shapes]
        elif FLAGS.preset == "gpu":
            shapes = GPU_SHAPES
        else:
            long = (16, 10_000, 2, 128) if FLAGS.quick else (16, 20_000, 2, 128)
            shapes = CPU_SHAPES + [long]
        impls = FLAGS.impls or ALL_IMPLS
        print(markdown([], header=True), flush=True)
        rows = run_compare(shapes, impls, repeats)
        result["rows"] = rows
        core = [s for s in shapes if s[1] < 10_000] or shapes
        result["summary"] = summary(rows, core)
        md += [markdown(rows), "", result["summary"]]
    elif FLAGS.mode == "memory":
        Ts = [int(t) for t in (FLAGS.mem_T or ["1000", "10000", "100000"])]
        rows = run_memory(Ts)
        result["rows"] = rows
        md.append(memory_markdown(rows))
    elif FLAGS.mode == "ensemble":
        rows = run_ensemble(FLAGS.ens_members, FLAGS.ens_steps, repeats, FLAGS.ens_dp)
        result["rows"] = rows
        md += [f"{FLAGS.ens_members} seeds of a GRU (hidden 32, adding task T 50, batch 64, "
               f"AdamW), {FLAGS.ens_steps} train steps each per round; medians of "
               f"{repeats} interleaved rounds. vs apart = run-steps/s over the apart "
               "row's (dp rows: one run, so per run-step too).", "",
               ensemble_markdown(rows)]
    elif FLAGS.mode == "ablation":
        shapes = ([tuple(int(v) for v in s.split(":")) for s in FLAGS.shapes] if FLAGS.shapes
                  else CPU_SHAPES)
        fwd_rows, train_rows = [], []
        for s in shapes:
            if not FLAGS.train_only:
                fwd_rows += ablation_forward(*s, repeats)
            train_rows += ablation_train(*s, repeats)
            print(json.dumps(fwd_rows[-9:], indent=0), json.dumps(train_rows[-10:], indent=0),
                  flush=True)
        result["forward"], result["train"] = fwd_rows, train_rows
        md += ["| B, T, I, H | forward formulation | us/step | / floor |", "|---|---|---|---|"]
        md += [f"| {', '.join(map(str, r['shape']))} | {r['form']} | {r['us_per_step']:.1f} | "
               f"{r['over_floor']:.2f} |" for r in fwd_rows]
        md += ["", "| B, T, I, H | train-step variant | ms | vs flax.linen |", "|---|---|---|---|"]
        md += [f"| {', '.join(map(str, r['shape']))} | {r['variant']} | {r['train_ms']:.1f} | "
               f"{r['vs_flax_linen']:.2f}x |" for r in train_rows]
    try:
        with open("/proc/loadavg") as f:
            result["machine"]["loadavg_end"] = f.read().split()[:3]
    except OSError:
        pass
    text = "\n".join(md)
    print("\n" + text)
    if FLAGS.json:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.json)), exist_ok=True)
        with open(FLAGS.json, "w") as f:
            json.dump(result, f, indent=1)
    if FLAGS.md:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.md)), exist_ok=True)
        with open(FLAGS.md, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    app.run(main)
