"""Recurrent cells as pure functions, all following `gru_jax.cells.base.Cell`."""

from gru_jax.cells.base import Cell, count_params
from gru_jax.cells.gru import GRU, gru_step, gru_variant, init_gru
from gru_jax.cells.lstm import LSTM, init_lstm, lstm_step
from gru_jax.cells.mingru import MINGRU, init_mingru, mingru_step
from gru_jax.cells.rnn import RNN, init_rnn, rnn_step

CELLS: dict[str, Cell] = {c.name: c for c in (GRU, LSTM, RNN, MINGRU)}
CHRONO_CELLS = ("gru", "lstm")  # cells whose init takes chrono_t_max (a gate keeps the state)


def get_cell(name: str) -> Cell:
    """The cell called `name` (one of gru, lstm, rnn, mingru)."""
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose one of {sorted(CELLS)}")
    return CELLS[name]


__all__ = [
    "CELLS", "CHRONO_CELLS", "Cell", "GRU", "LSTM", "MINGRU", "RNN", "count_params", "get_cell",
    "gru_step", "gru_variant", "init_gru", "init_lstm", "init_mingru", "init_rnn",
    "lstm_step", "mingru_step", "rnn_step",
]
