"""The long-range study's first protocol (cosine to zero at the step budget, one
learning rate, pruning across seeds), kept so its committed results under
results/long_range/{adding,copy} re-render. Superseded by the second protocol
(gru_jax.proj.long_range.design); issue 15 says why."""
