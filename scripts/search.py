"""`python scripts/search.py`: the command line of gru_jax/commands/search.py (see its --help)."""

from gru_jax.commands.search import run

if __name__ == "__main__":
    run()
