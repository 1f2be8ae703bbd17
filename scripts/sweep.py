"""`python scripts/sweep.py`: the command line of gru_jax/commands/sweep.py (see its --help)."""

from gru_jax.commands.sweep import run

if __name__ == "__main__":
    run()
