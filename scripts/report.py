"""`python scripts/report.py`: the command line of gru_jax/commands/report.py (see its --help)."""

from gru_jax.commands.report import run

if __name__ == "__main__":
    run()
