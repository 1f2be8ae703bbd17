"""What the launchers in scripts/ share: one-line errors and quiet logs.

The contract for bad input is one line on stderr and exit code 2, never a
traceback; absl's own flag parsing exits 1 (with a traceback for some config
errors), hence `flags_parser`.
"""

from __future__ import annotations

import logging as py_logging
import sys

from absl import flags, logging

from gru_jax.harness.config import flag_error_line


def die(msg, prog: str | None = None):
    """Print ``[prog: ]error: msg`` on stderr and exit 2."""
    print(f"{prog}: error: {msg}" if prog else f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def flags_parser(prog: str | None = None):
    """An `app.run(flags_parser=...)` that turns every flag or config error into `die`."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except Exception as e:  # noqa: BLE001 - config_flags raises several kinds
            die(flag_error_line(e, argv), prog)

    return parse


def enable_compilation_cache() -> None:
    """JAX's persistent compilation cache, in $JAX_COMPILATION_CACHE_DIR or else
    ~/.cache/gru_jax/jax: the runs of a sweep that differ only in seed (or in chrono
    init) compile the same programs, so all but the first read them from disk. It changes
    no number (the cache holds the executable XLA would build)."""
    import os

    import jax

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        jax.config.update("jax_compilation_cache_dir", os.path.join(base, "gru_jax", "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def setup(argv: list[str], prog: str | None = None) -> None:
    """Quiet logs unless --verbosity is given (Orbax logs every save at INFO
    through absl; gru_jax's own lines stay), and refuse positional arguments."""
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        py_logging.getLogger("gru_jax").setLevel(py_logging.INFO)
    if len(argv) > 1:
        die(f"unexpected arguments: {' '.join(argv[1:])}", prog)
