"""How the fused GRU runs: a `Plan` per backend (`default_plan`).

Measured with the ablation mode of the bench (input products inside the
step or hoisted per block, block length, unroll, what the forward saves);
the reasons are in `gru_jax.fused.gru`'s docstring.
"""

from __future__ import annotations

import dataclasses

import jax

MEMBER_PATHS = ("batch", "apart")
FACTORS = ("block", "step")


def cpu_member_path(K: int, B: int, H: int) -> str:
    """How K > 1 members run on XLA:CPU (Plan.members="auto"): one loop of batched
    products while a member's step is small, one member after another ("apart",
    `one_by_one`) from batch * hidden 2^12 up, where one member's products already
    fill the machine and the batched loop's K-fold block arrays only cost cache.
    vmap of K = 8 against 8 programs, batch 32, T = 200, load ~3, one process:
    hidden 64: batch 1.20x, apart 1.02x; hidden 128: batch 0.65x, apart 0.95x.
    `packing_pays` says where not to vmap at all."""
    return "apart" if B * H >= 1 << 12 else "batch"


def cpu_factors(K: int, B: int, H: int) -> str:
    """Where the CPU backward recomputes the gates (Plan.factors="auto"): inside
    each reverse step up to hidden 128, per block above. Train step vs
    flax.linen, block / step, same process: (32, 1000, 2, 128) 1.21x / 1.37x,
    1.70x / 1.77x; (64, 256, 8, 128) 1.04x / 1.13x, 1.32x / 1.54x;
    (128, 200, 32, 256) 1.01x / 0.97x, 0.79x / 0.94x (mixed: kept "block")."""
    return "step" if H <= 128 else "block"


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the fused GRU runs.

    proj: "step" computes the input terms x_t W_i inside each step (three
      small products); "block" hoists them, one large product per block.
    block: time steps per block (backward; and forward when proj="block");
      None picks it from block_elems (block * batch * hidden): the backward's
      block scratch is ~5 x block_elems floats, and on CPU it is fastest
      when it stays cache-sized (2^18: 64 steps at B=32, H=128).
    unroll: `lax.scan` unroll of the per-step loops.
    save: what the forward stores for the backward: "h" the states only
      (the backward recomputes h_{t-1} W_h per block, one large product);
      "gh" also h_{t-1} W_h of every step ([T, B, 3H] more memory, no recompute);
      "auto" (default) "gh" where one step's product is large (batch * hidden
      >= 2^15) and the stored products fit in gh_bytes, else "h". On the 2-core
      CPU at (B, T, I, H) = (128, 200, 32, 256) "gh" ran 1.29x flax.linen against
      "h"'s 1.14x (PERF_NOTES, quiet: 1.03x vs 0.93x); at batch * hidden <= 2^13
      the two are within noise (1.31x vs 1.32x, 1.24x vs 1.23x), so "h" keeps the
      memory there.
    factors: where the backward recomputes the gates' nonlinearities: "block"
      for a whole block at once (large elementwise arrays, one product per step
      in the reverse loop), "step" inside each reverse step (small ops only,
      three more small products per step; blocks of ~step_block_elems). "auto":
      `cpu_factors`. On the busy 2-core CPU (K = 8, batch 32, T = 200, input 2)
      "step" ran one member's train step 1.1-1.3x faster at hidden 16-64 and the
      vmapped 8 1.6-2.4x faster at hidden 16; at hidden 128 one member 1.05-1.17x
      (`cpu_factors`), with half the memory: XLA:CPU splits the block-wide
      fusions over both cores (each waits for the other on a loaded machine) and
      recomputes the gates once per piece of their concatenate.
    members: how K > 1 members (a `jax.vmap` folded by `gru_jax.fused.members`)
      run: "batch" one loop whose products have the member as a batch
      dimension; "apart" one loop per member, one after another, in the same
      program; "auto": `cpu_member_path`. One member is always "batch".
    """

    proj: str = "step"
    block: int | None = None
    unroll: int = 1
    save: str = "auto"
    block_elems: int = 1 << 18
    gh_bytes: int = 1 << 30
    members: str = "batch"
    factors: str = "block"
    step_block_elems: int = 1 << 16

    def __post_init__(self):
        if self.proj not in ("step", "block"):
            raise ValueError(f"proj must be 'step' or 'block', got {self.proj!r}")
        if self.block is not None and not (isinstance(self.block, int) and self.block > 0):
            raise ValueError(f"block must be None or a positive int, got {self.block!r}")
        if self.save not in ("h", "gh", "auto"):
            raise ValueError(f"save must be 'h', 'gh' or 'auto', got {self.save!r}")
        if self.factors not in FACTORS + ("auto",):
            raise ValueError(f"factors must be 'block', 'step' or 'auto', got {self.factors!r}")
        if self.members not in MEMBER_PATHS + ("auto",):
            raise ValueError(f"members must be one of {MEMBER_PATHS + ('auto',)}, "
                             f"got {self.members!r}")

    def factors_for(self, K: int, B: int, H: int) -> str:
        """Where the backward recomputes the gates (see `factors`)."""
        if self.factors != "auto":
            return self.factors
        return cpu_factors(K, B, H)

    def member_path(self, K: int, B: int, H: int) -> str:
        """How K members run (see `members`): one member always as "batch"."""
        if K == 1:
            return "batch"
        if self.members != "auto":
            return self.members
        return cpu_member_path(K, B, H)

    def saves_gh(self, T: int, B: int, H: int, itemsize: int = 4) -> bool:
        """Whether the forward stores h_{t-1} W_h ([T, B, 3H]) for the backward."""
        if self.save != "auto":
            return self.save == "gh"
        return B * H >= 1 << 15 and T * B * 3 * H * itemsize <= self.gh_bytes

    def block_len(self, T: int, B: int, H: int, factors: str = "block") -> int:
        """Steps per block: `block`, or (None) the most steps with
        block * batch * hidden <= block_elems (step_block_elems for "step"
        factors), between 4 and 1024; at most T."""
        elems = self.step_block_elems if factors == "step" else self.block_elems
        C = self.block or max(4, min(1024, elems // max(1, B * H)))
        return max(1, min(C, T))


def default_plan(backend: str | None = None) -> Plan:
    """The plan measured fastest on `backend` (default: jax.default_backend()).

    CPU: input products inside the step, backward blocks of ~2^18 elements,
    h W_h stored at large steps (save="auto"); gates recomputed per reverse step
    at small hidden sizes (factors="auto") and K members as `cpu_member_path`.
    GPU/TPU: input products hoisted per block (fewer kernel launches per
    step), blocks of ~2^24 elements, loops unrolled 4x (kernel-launch bound at
    small batch); h W_h recomputed (on the H100 storing it ran 2-3% slower).
    """
    backend = backend or jax.default_backend()
    if backend == "cpu":
        return Plan(proj="step", members="auto", factors="auto")
    return Plan(proj="block", block_elems=1 << 24, unroll=4, save="h")


def packing_pays(backend: str | None, hidden_size: int, batch: int, num_members: int) -> bool:
    """Whether `jax.vmap` over `num_members` runs of the fused GRU's training step
    beats running them one by one, per member, on `backend` (default: the
    current one): True packs, False runs apart. The sweep packs by default where
    this is True (`gru_jax.harness.sweep.worker.packing_pays_for`).

    Measured (``python scripts/bench.py --mode=vmap``: K = 8, batch 32, T = 200,
    input 2; medians, interleaved, one process):

    - GPU (H100, the trainer's ensemble mode, hidden 32, batch 64): 8.25x; a GPU
      is launch-bound at these sizes, so packing pays everywhere.
    - CPU (2-core EPYC shared with a study at higher priority, load 1.5-7): with
      the gates recomputed per reverse step (`Plan.factors`) and one joined
      input product per step, the per-member speed-up over one by one at hidden
      16 / 32 / 64 / 128 was 1.73x / 1.38x / 1.03x / 1.01x (bench_results/
      cpu_vmap.md, load ~2, hidden 128 run apart: `cpu_member_path`); another
      run 1.75x / 1.25x / 1.21x / 0.96x, earlier ones 1.35-1.51x / 1.32-1.51x /
      0.99-1.23x / 0.78-1.03x with hidden 128 batched (identical runs differ by
      up to +-15% here).

    So on CPU it packs for hidden <= 32 and batches up to 64, where it pays in
    every run (the measured regime: at larger batches a member's own products
    grow and the per-step overhead packing saves matters less); at 64 and above
    the gain is within the noise or a loss. A single member never packs.
    """
    if num_members < 2:
        return False
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return True
    return hidden_size <= 32 and batch <= 64
