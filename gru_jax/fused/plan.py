"""How the fused GRU runs: a `Plan` per backend (`default_plan`).

Measured with the ablation mode of the bench (input products inside the
step or hoisted per block, block length, unroll, what the forward saves);
the reasons are in `gru_jax.fused.gru`'s docstring.
"""

from __future__ import annotations

import dataclasses

import jax


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
    """

    proj: str = "step"
    block: int | None = None
    unroll: int = 1
    save: str = "auto"
    block_elems: int = 1 << 18
    gh_bytes: int = 1 << 30

    def __post_init__(self):
        if self.proj not in ("step", "block"):
            raise ValueError(f"proj must be 'step' or 'block', got {self.proj!r}")
        if self.block is not None and not (isinstance(self.block, int) and self.block > 0):
            raise ValueError(f"block must be None or a positive int, got {self.block!r}")
        if self.save not in ("h", "gh", "auto"):
            raise ValueError(f"save must be 'h', 'gh' or 'auto', got {self.save!r}")

    def saves_gh(self, T: int, B: int, H: int, itemsize: int = 4) -> bool:
        """Whether the forward stores h_{t-1} W_h ([T, B, 3H]) for the backward."""
        if self.save != "auto":
            return self.save == "gh"
        return B * H >= 1 << 15 and T * B * 3 * H * itemsize <= self.gh_bytes

    def block_len(self, T: int, B: int, H: int) -> int:
        """Steps per block: `block`, or (None) the most steps with
        block * batch * hidden <= block_elems, between 4 and 1024; at most T."""
        C = self.block or max(4, min(1024, self.block_elems // max(1, B * H)))
        return max(1, min(C, T))


def default_plan(backend: str | None = None) -> Plan:
    """The plan measured fastest on `backend` (default: jax.default_backend()).

    CPU: input products inside the step, backward blocks of ~2^18 elements,
    h W_h stored at large steps (save="auto").
    GPU/TPU: input products hoisted per block (fewer kernel launches per
    step), blocks of ~2^24 elements, loops unrolled 4x (kernel-launch bound at
    small batch); h W_h recomputed (on the H100 storing it ran 2-3% slower).
    """
    backend = backend or jax.default_backend()
    if backend == "cpu":
        return Plan(proj="step")
    return Plan(proj="block", block_elems=1 << 24, unroll=4, save="h")


def packing_pays(backend: str | None, hidden_size: int, batch: int, num_members: int) -> bool:
    """Whether `jax.vmap` over `num_members` runs of the fused GRU's training step
    beats running them one by one, per member, on `backend` (default: the
    current one): True packs, False runs apart.

    Measured (``python scripts/bench.py --mode=vmap``: K = 8, batch 32, T = 200,
    input 2; medians, interleaved, one process):

    - GPU (H100, the trainer's ensemble mode, hidden 32, batch 64): 8.25x; a GPU
      is launch-bound at these sizes, so packing pays everywhere.
    - CPU (2-core EPYC shared with other jobs, load 6-12 throughout): with the
      member-native kernels and their vmap rule (`gru_jax.fused.members`), the
      per-member speed-up over one by one in three runs at hidden 16 / 32 / 64
      / 128 was 0.57, 0.71, 0.46 / 0.92, 0.80, 0.49 / 1.44, 0.44, 1.27 / 0.70,
      1.09, 1.00 (medians 0.57x / 0.80x / 1.27x / 1.00x; before them 0.49x /
      0.63x / 0.58x / 0.70x in one run). Only hidden sizes near 64 gain: at 16
      and 32 the packed backward's batched block products still cost more than
      the per-step overhead they save, and at 128 one member's products
      already keep the two cores busy.

    So on CPU it packs for 48 <= hidden <= 96 and batches up to 64 (the measured
    regime); a single member never packs.
    """
    if num_members < 2:
        return False
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return True
    return 48 <= hidden_size <= 96 and batch <= 64
