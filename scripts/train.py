"""`python scripts/train.py`: the command line of gru_jax/commands/train.py (see its --help)."""

from gru_jax.commands.train import run

if __name__ == "__main__":
    run()
