"""Errors the command lines turn into one clear line (no traceback)."""


class ConfigError(ValueError):
    """A config key is unknown, of the wrong type, or holds an impossible value.

    The message names the key and what is allowed, e.g.
    ``model.hidden_size: must be a positive int, got -3``.
    """


class WorkdirError(RuntimeError):
    """The workdir cannot be used: it holds a different run, or cannot be written."""
