"""Recurrent cells as pure functions, all following `gru_jax.cells.base.Cell`.

`CELLS` maps a name to its cell: the four built in, then any a user adds with
`register_cell(cell)`; from then on the name works wherever a cell is chosen
by name (`gru_jax.scan`, the Flax modules' ``cell=``, ``model.cell`` in every
experiment, sweep and report).
"""

from gru_jax.cells.base import Cell, count_params
from gru_jax.cells.gru import GRU, gru_step, gru_variant, init_gru
from gru_jax.cells.lstm import LSTM, init_lstm, lstm_step
from gru_jax.cells.mingru import MINGRU, init_mingru, mingru_step
from gru_jax.cells.rnn import RNN, init_rnn, rnn_step

CELLS: dict[str, Cell] = {c.name: c for c in (GRU, LSTM, RNN, MINGRU)}
CHRONO_CELLS = ("gru", "lstm")  # cells whose init takes chrono_t_max (a gate keeps the state)


_BUILTIN = frozenset(CELLS)


def get_cell(name: str) -> Cell:
    """The cell called `name` (gru, lstm, rnn, mingru, or a registered one)."""
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose one of {sorted(CELLS)}")
    return CELLS[name]


def register_cell(cell: Cell) -> Cell:
    """Add `cell` to `CELLS` under ``cell.name``, and return it.

    Registering a name again replaces the earlier cell (re-running an experiment
    file is harmless); the built-in names cannot be taken.
    """
    if not isinstance(cell, Cell):
        raise TypeError(f"register_cell: expected a gru_jax.Cell, got {type(cell).__name__}")
    if not isinstance(cell.name, str) or not cell.name.isidentifier():
        raise ValueError(f"register_cell: cell.name must be an identifier, got {cell.name!r}")
    if cell.name in _BUILTIN and CELLS[cell.name] is not cell:
        raise ValueError(f"register_cell: {cell.name!r} is a built-in cell; choose another name")
    for fn in ("init", "project", "step", "zero_carry", "hidden_of"):
        if not callable(getattr(cell, fn)):
            raise TypeError(f"register_cell: {cell.name}.{fn} must be callable")
    CELLS[cell.name] = cell
    return cell


__all__ = [
    "CELLS", "CHRONO_CELLS", "Cell", "GRU", "LSTM", "MINGRU", "RNN", "count_params", "get_cell",
    "gru_step", "gru_variant", "init_gru", "init_lstm", "init_mingru", "init_rnn",
    "lstm_step", "mingru_step", "register_cell", "rnn_step",
]
