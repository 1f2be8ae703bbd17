"""Where a measurement ran: one description for the benchmarks, the trainer's
run summaries (`gru_jax.harness.machine` re-exports it) and the study's cost table."""

from __future__ import annotations

import functools
import os


@functools.cache
def machine_info() -> dict:
    """CPU model and cores, JAX backend and device, versions, commit. Results from
    different machines may differ (a chaotic run amplifies kernel rounding)."""
    import platform
    import subprocess

    import jax

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


def load_average() -> list[str] | None:
    """The 1, 5 and 15 minute load averages (None where /proc has none): how shared
    the machine was while a benchmark ran."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return None


def describe() -> dict:
    """machine_info() plus the peers' versions (flax, torch; where installed) and the
    load average now: what a benchmark result records of where it ran."""
    import platform

    info = dict(machine_info(), platform=platform.platform())
    for mod in ("flax", "torch"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            pass
    info["loadavg_start"] = load_average()
    return info
