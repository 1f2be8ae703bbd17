"""The files of a workdir: their names, and JSON written atomically (JAX-free)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"  # a run's RunSummary (only this module names it)
CONFIG_FILE = "config.json"  # the resolved config a run started with (checked on resume)
SWEEP_FILE = "sweep.json"  # a sweep's points and their folders
SEARCH_FILE = "search.json"  # a search's candidates, scores and best


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """`obj` as JSON into `path`: readers see the old file or the new one, whole.

    The file gets the permissions a plain ``open(path, "w")`` would give
    (0o666 less the umask), not mkstemp's 0o600. NaN/inf are written as null.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(json_safe(obj), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in `path`, or None if there is no such file (ValueError if it is not JSON)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def json_safe(x: Any) -> Any:
    """Plain JSON values: NaN/inf -> None, numpy scalars and tuples -> Python ones."""
    if isinstance(x, Mapping):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy scalar, 0-d array
        return json_safe(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def planned_runs(workdir: str | os.PathLike) -> list[str] | None:
    """The run folder names a sweep (sweep.json) or a search (search.json's
    candidates) planned in `workdir`, in order; None if it holds neither."""
    workdir = Path(workdir)
    sweep = read_json(workdir / SWEEP_FILE)
    if sweep is not None:
        return [p["name"] for p in sweep["points"]]
    search = read_json(workdir / SEARCH_FILE)
    if search is not None:
        return list(dict.fromkeys(c["name"] for c in search["candidates"]))
    return None
