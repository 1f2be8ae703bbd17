"""The command lines: ``gru-jax train|sweep|search|report|predict|bench`` (installed with
the package; ``python scripts/NAME.py`` runs the same code from a checkout).

    gru-jax --help                  the subcommands
    gru-jax train --help            one subcommand's flags
    gru-jax train --config=experiments/adding.py --workdir=runs/adding_gru

Each subcommand is a module with a ``run()`` (absl flags, one-line errors), so they
all work from an installed package; ``scripts/NAME.py`` is a thin wrapper over it.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module with run(), what it does)
COMMANDS = {
    "train": ("gru_jax.commands.train", "train one run (resumes from its checkpoints)"),
    "sweep": ("gru_jax.commands.sweep", "train every point of an experiment's get_sweep()"),
    "search": ("gru_jax.commands.search", "a hyperparameter search over an experiment"),
    "report": ("gru_jax.commands.report", "tables and figures of a sweep, study or series"),
    "predict": ("gru_jax.commands.predict", "forecast with a trained series run"),
    "bench": ("gru_jax.commands.bench", "speed and memory side by side"),
}
_EXTRAS_HINT = "the harness extra: pip install 'gru_jax[harness]'"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: gru-jax COMMAND [--flags]  (gru-jax COMMAND --help: its flags)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if len(argv) >= 2 else 2)
    name, rest = argv[1], argv[2:]
    if name not in COMMANDS:
        sys.exit(f"gru-jax: error: unknown command {name!r}; choose one of "
                 f"{', '.join(COMMANDS)} (gru-jax --help)")
    module = COMMANDS[name][0]
    sys.argv = [f"gru-jax {name}", *rest]
    try:
        command = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and not e.name.startswith("gru_jax"):
            sys.exit(f"gru-jax: error: {name} needs {e.name}: install {_EXTRAS_HINT}")
        raise
    command.run()
