"""`python scripts/predict.py`: the command line of gru_jax/commands/predict.py (see its --help)."""

from gru_jax.commands.predict import run

if __name__ == "__main__":
    run()
