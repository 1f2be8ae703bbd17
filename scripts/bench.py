"""`python scripts/bench.py`: the command line of gru_jax/commands/bench.py (see its --help)."""

from gru_jax.commands.bench import run

if __name__ == "__main__":
    run()
