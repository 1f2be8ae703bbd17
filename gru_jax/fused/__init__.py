"""Hand-written kernels behind `gru_jax.scan(impl="fused")`.

    plan.py   Plan, default_plan: how the fused GRU runs on each backend
    gru.py    the GRU time loop with a hand-written backward (jax.custom_vjp)
"""

from gru_jax.fused.gru import FusedParams, fuse_params, fused_core, fused_run
from gru_jax.fused.plan import Plan, default_plan

__all__ = ["FusedParams", "Plan", "default_plan", "fuse_params", "fused_core", "fused_run"]
