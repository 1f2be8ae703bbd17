"""What the launchers in scripts/ share: one-line errors, quiet logs, the config flag.

All of the absl / config_flags glue lives here (gru_jax.harness.config knows
nothing of command lines).

The contract for bad input is one line on stderr and exit code 2, never a
traceback; absl's own flag parsing exits 1 (with a traceback for some config
errors), hence `flags_parser`.
"""

from __future__ import annotations

import logging as py_logging
import sys

import ml_collections
from absl import flags, logging

from gru_jax.harness.config import _type_name, _unknown, describe
from gru_jax.harness.errors import ConfigError


def run_command(main, module, flags_parser) -> None:
    """`app.run(main)` for a command defined in `module` (a gru_jax.commands module),
    whichever file is ``__main__`` (scripts/NAME.py, or the gru-jax entry point):
    --help shows the module's docstring and its flags."""
    from absl import app

    sys.modules["__main__"].__doc__ = module.__doc__  # absl's usage text
    # absl lists the flags of the main module, which it names by sys.argv[0]
    for flag in flags.FLAGS.get_key_flags_for_module(module.__name__):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main, flags_parser=flags_parser)


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
    no number (the cache holds the executable XLA would build). Every process that
    trains calls it (a spawned or submitted sweep worker does not inherit the
    launcher's jax.config); JAX's own environment variables, where set, win."""
    import os

    import jax

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        jax.config.update("jax_compilation_cache_dir", os.path.join(base, "gru_jax", "jax"))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


class _TqdmHandler(py_logging.Handler):
    """Writes log records through `tqdm.write`, which clears the progress bars
    first and draws them again after: a log line never shares a bar's row."""

    def emit(self, record: py_logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


class _Format(py_logging.Formatter):
    """Our own INFO lines as they are; everything else with its level and source."""

    def format(self, record: py_logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno == py_logging.INFO and record.name.startswith("gru_jax"):
            return msg
        return f"{record.levelname.lower()}: {record.name}: {msg}"


def setup(argv: list[str], prog: str | None = None, *, run_logs: bool = True) -> None:
    """Every log line through the progress bars (`_TqdmHandler`, in place of
    absl's handler), quiet unless --verbosity is given (Orbax logs every save at
    INFO through absl; gru_jax's own lines stay, the trainer's per-eval lines only
    with `run_logs`), and refuse positional arguments."""
    handler = _TqdmHandler()
    handler.setFormatter(_Format())
    py_logging.getLogger().handlers = [handler]
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
        py_logging.getLogger("gru_jax").setLevel(py_logging.INFO)
        if not run_logs:
            py_logging.getLogger("gru_jax.harness.train").setLevel(py_logging.WARNING)
    if len(argv) > 1:
        die(f"unexpected arguments: {' '.join(argv[1:])}", prog)


# --- config_flags errors as one line ---

def _config_path_from_argv(argv, name: str = "config") -> str | None:
    for i, a in enumerate(argv):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _override_keys(argv, name: str = "config") -> list[str]:
    prefix = f"--{name}."
    return [a[len(prefix):].split("=", 1)[0] for a in argv if a.startswith(prefix)]


def _load_config_file(argv):
    """The config file named by --config in `argv`, loaded without overrides (None if it fails)."""
    from ml_collections.config_flags import config_flags

    path = _config_path_from_argv(argv)
    try:
        cfg = config_flags.ConfigFileFlagParser(name="config").parse(path) if path else None
        cfg.keys()
        return cfg
    except Exception:  # noqa: BLE001
        return None


def flag_error_line(exc: BaseException, argv) -> str:
    """One line for an error raised while absl parses `argv` with an
    ml_collections config file flag named --config (unknown override key,
    unparsable value, broken config file, unknown flag)."""
    import re

    from absl import flags

    msg = str(exc)
    if isinstance(exc, (AttributeError, KeyError)):
        # config_flags reports an unknown override key by its last part only: find it.
        cfg = _load_config_file(argv)
        if cfg is not None:
            try:
                for key in _override_keys(argv):
                    node, parts = cfg, key.split(".")
                    for i, part in enumerate(parts):
                        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                            return _unknown(".".join(parts[: i + 1]), node)
                        node = node[part]
            except Exception:  # noqa: BLE001 - fall through to the generic line
                pass
        return f"--config: unknown key {msg.strip(chr(34)).strip(chr(39))}"
    m = re.match(r"flag --config\.([\w.]+)=(.*?): (.*)", msg, re.S)
    if m:
        key, value, why = m.groups()
        cfg = _load_config_file(argv)
        try:
            node = cfg
            for part in key.split("."):
                node = node[part]
            return f"{key}: must be {_type_name(node)}, got {value!r}"
        except Exception:  # noqa: BLE001 - no config to ask: say what the parser said
            return f"{key}: cannot use {value!r} ({why.splitlines()[0]})"
    m = re.match(r"flag --config=(.*?): (.*)", msg, re.S)
    if m:
        lines = [ln for ln in m.group(2).splitlines() if ln.strip()]
        return f"--config={m.group(1)}: cannot load it ({lines[-1].strip() if lines else 'error'})"
    if isinstance(exc, flags.Error):
        return msg.splitlines()[0] if msg else type(exc).__name__
    return f"{type(exc).__name__}: {msg.splitlines()[0] if msg else ''}"


def config_from_flag(flag_holder):
    """The ConfigDict behind a config_flags flag; ConfigError if the file is missing or
    did not load (config_flags defers that error to the first access)."""
    try:
        config = flag_holder.value
        if config is None:
            raise ConfigError("--config: required (a config file with get_config())")
        config.keys()  # _ErrorConfig raises its load error on any access
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever stopped the file from loading
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise ConfigError(f"--config: cannot load the config file ({lines[-1] if lines else e})"
                          ) from None
    return config


def config_help() -> str:
    """The --config flag's help: how to override, and every key with its default,
    allowed values and meaning (so ``--help`` lists them)."""
    return ("experiment config file (get_config()); override any key with "
            "--config.KEY=VALUE. Keys (default, allowed values, meaning):\n" + describe())


def print_config_and_exit(flag_holder) -> None:
    """--print_config: the keys of SCHEMA (and the loaded config's values, with
    --config) on stdout, exit 0."""
    print(describe())
    if flag_holder.value is not None:
        print("\n# --config as loaded:\n" + config_from_flag(flag_holder).to_yaml())
    sys.exit(0)


# The executor flags scripts/sweep.py and scripts/search.py share (each declares them
# key flags, so its --help lists them).
EXECUTOR_FLAGS = ("executor", "slurm_partition", "slurm_time", "slurm_mem_gb",
                  "slurm_cpus_per_task", "slurm_gpus_per_node", "slurm_array_parallelism")


def define_executor_flags() -> None:
    """--executor=local|slurm and the --slurm_* parameters of the job array."""
    flags.DEFINE_enum("executor", "local", ["local", "slurm"], "Where the workers run.")
    flags.DEFINE_string("slurm_partition", None, "SLURM partition.")
    flags.DEFINE_integer("slurm_time", 240, "Minutes per job (then requeued).")
    flags.DEFINE_integer("slurm_mem_gb", 16, "Memory per job, GB.")
    flags.DEFINE_integer("slurm_cpus_per_task", 4, "CPUs per job.")
    flags.DEFINE_integer("slurm_gpus_per_node", 0, "GPUs per job.")
    flags.DEFINE_integer("slurm_array_parallelism", None,
                         "At most this many jobs of the array at once.")


def slurm_kwargs() -> dict:
    """The parsed --slurm_* flags as `sweep.executor.run_slurm`'s keyword arguments."""
    f = flags.FLAGS
    return {"partition": f.slurm_partition, "time": f.slurm_time, "mem_gb": f.slurm_mem_gb,
            "cpus_per_task": f.slurm_cpus_per_task,
            "gpus_per_node": f.slurm_gpus_per_node or None,
            "array_parallelism": f.slurm_array_parallelism}
