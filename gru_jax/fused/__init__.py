"""Hand-written kernels behind `gru_jax.scan(impl="fused")`.

    plan.py     Plan, default_plan: how the fused GRU runs on each backend;
                packing_pays: whether a jax.vmap over runs beats them one by one
    gru.py      the time loop of K GRUs with a hand-written backward (jax.custom_vjp)
    lstm.py     the LSTM's time loop with a hand-written backward
    members.py  members_vmap: a jax.vmap folded into the kernels' member axis
"""

from gru_jax.fused.gru import FusedParams, fuse_params, fused_core, fused_run
from gru_jax.fused.lstm import fuse_lstm_params, fused_lstm_run, lstm_core
from gru_jax.fused.members import members_vmap
from gru_jax.fused.plan import Plan, default_plan, packing_pays

__all__ = ["FusedParams", "Plan", "default_plan", "fuse_params", "fused_core", "fused_run",
           "fuse_lstm_params", "fused_lstm_run", "lstm_core",
           "members_vmap", "packing_pays"]
