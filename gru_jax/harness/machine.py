"""Where a run ran and how much memory it took (for its summary)."""

from __future__ import annotations

import resource
import sys

import jax

from gru_jax.bench.machine import machine_info

__all__ = ["machine_info", "peak_memory"]


def peak_memory() -> tuple[int, str]:
    """(bytes, source): the device allocator's peak if it reports one, else
    this process's peak resident set size (CPU)."""
    try:
        stats = jax.local_devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - some backends do not implement it
        stats = {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) * (1 if sys.platform == "darwin" else 1024), "maxrss"
