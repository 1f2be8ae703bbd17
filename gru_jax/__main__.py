"""`python -m gru_jax COMMAND`: the `gru-jax` command line (gru_jax.commands)."""

from gru_jax.commands import main

main()
