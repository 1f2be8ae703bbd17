"""Where a run ran and how much memory it took (for its summary)."""

from __future__ import annotations

import functools
import os
import resource
import sys

import jax


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


@functools.cache
def machine_info() -> dict:
    """Where a run ran: CPU model and cores, JAX backend and device, versions, commit.
    Results from different machines may differ (a chaotic run amplifies kernel rounding)."""
    import platform
    import subprocess

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(__file__), timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    dev = jax.devices()[0]
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "backend": jax.default_backend(),
            "device_kind": dev.device_kind, "device_count": jax.device_count(),
            "jax": jax.__version__, "python": platform.python_version(), "commit": commit}
