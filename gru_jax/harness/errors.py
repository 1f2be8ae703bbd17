"""Errors the command lines turn into one clear line (no traceback)."""


class ConfigError(ValueError):
    """A config key is unknown, of the wrong type, or holds an impossible value.

    The message names the key and what is allowed, e.g.
    ``model.hidden_size: must be a positive int, got -3``.
    """


class WorkdirError(RuntimeError):
    """The workdir cannot be used: it holds a different run, or cannot be written."""


def need(module: str, extra: str, key: str):
    """`import module`, or a ConfigError naming `key` and the extra that installs it, e.g.
    ``task.name: 'digits' needs sklearn: pip install 'gru_jax[datasets]'``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{key}: needs {module.split('.')[0]}, "
                          f"which is not installed: pip install 'gru_jax[{extra}]'") from None
