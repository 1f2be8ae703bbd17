"""gru_jax: a GRU as pure JAX functions, scanned over time, and a harness that
studies how recurrent networks learn long-range dependencies.

    >>> import jax, gru_jax
    >>> params = gru_jax.init_gru(jax.random.key(0), input_size=2, hidden_size=8)
    >>> h_last, hs = gru_jax.gru_scan(params, jax.numpy.ones((4, 10, 2)))
    >>> h_last.shape, hs.shape
    ((4, 8), (4, 10, 8))
"""

from gru_jax.cells import (
    CELLS,
    Cell,
    count_params,
    get_cell,
    gru_step,
    gru_variant,
    init_gru,
    init_lstm,
    init_mingru,
    init_rnn,
    lstm_step,
    mingru_step,
    register_cell,
    rnn_step,
)
from gru_jax.scan import (
    Impl,
    gru_scan,
    lstm_scan,
    mingru_scan,
    resolve_impl,
    rnn_scan,
    scan,
)
from gru_jax.stacked import bidirectional, init_stacked, merge, stacked_scan

__version__ = "0.1.0"


_FLAX_MODULES = ("GRU", "GRUCell", "Recurrent")  # gru_jax.modules: flax.linen wrappers


def __getattr__(name):
    # The Flax wrappers on first use (`gru_jax.GRUCell`, `gru_jax.nnx`): the pure-JAX
    # library imports without flax, which `pip install gru_jax[flax]` adds.
    if name in _FLAX_MODULES or name == "nnx":
        import importlib

        try:
            module = importlib.import_module("gru_jax.modules" if name != "nnx" else "gru_jax.nnx")
        except ModuleNotFoundError as e:
            if e.name != "flax":
                raise
            raise ImportError(f"gru_jax.{name} needs flax: pip install 'gru_jax[flax]'") from None
        return module if name == "nnx" else getattr(module, name)
    raise AttributeError(f"module 'gru_jax' has no attribute {name!r}")

__all__ = [
    "CELLS", "Cell", "GRU", "GRUCell", "Impl", "Recurrent", "bidirectional", "count_params",
    "get_cell", "gru_scan", "gru_step", "gru_variant", "init_gru", "init_lstm", "init_mingru",
    "init_rnn", "init_stacked", "lstm_scan", "lstm_step", "merge", "mingru_scan", "mingru_step",
    "register_cell", "resolve_impl", "rnn_scan", "rnn_step", "scan", "stacked_scan",
]
