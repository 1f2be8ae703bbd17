"""Multi-host start-up: one run across the processes of a cluster job.

`maybe_initialize()` calls `jax.distributed.initialize()` when this process is
one of several of a job, and does nothing otherwise. The launchers
(scripts/train.py, scripts/sweep.py) call it first, before anything asks JAX
for its devices (initialize must come before the backend starts).

A job counts as multi-process when

* ``JAX_COORDINATOR_ADDRESS`` is set (host:port of process 0; with
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``, unless a cluster JAX knows
  fills them in), or
* it runs under ``srun`` with more than one task (``SLURM_NTASKS`` > 1 and
  ``SLURM_STEP_NODELIST`` set): JAX's SLURM detection finds the coordinator
  (the first node of the step), the process count and this process's id.

``GRU_JAX_DISTRIBUTED=0`` turns it off (e.g. several independent sweeps
started as tasks of one SLURM step). After initialize, `jax.devices()` lists
every process's devices: the trainer's 1-D mesh spans them all, the batch is
split over them and the state replicated; Orbax coordinates the checkpoint
saves of all processes itself; the summary, config.json and the TensorBoard
events are written by process 0 only (`is_primary`). The trainer places its
state with `replicated_global` and agrees on stopping with `any_process`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def cluster_kwargs(environ: Mapping[str, str] | None = None) -> dict | None:
    """Arguments for jax.distributed.initialize, or None for a single-process job."""
    env = os.environ if environ is None else environ
    if env.get("GRU_JAX_DISTRIBUTED", "1") == "0":
        return None
    if env.get("JAX_COORDINATOR_ADDRESS"):
        kw = {}
        if env.get("JAX_NUM_PROCESSES"):
            kw["num_processes"] = int(env["JAX_NUM_PROCESSES"])
        if env.get("JAX_PROCESS_ID"):
            kw["process_id"] = int(env["JAX_PROCESS_ID"])
        return kw  # the coordinator address is read from the environment by JAX
    try:
        ntasks = int(env.get("SLURM_NTASKS", "1"))
    except ValueError:
        ntasks = 1
    if ntasks > 1 and "SLURM_STEP_NODELIST" in env:
        return {}  # JAX's SLURM cluster detection fills in everything
    return None


def maybe_initialize(environ: Mapping[str, str] | None = None) -> bool:
    """jax.distributed.initialize() if this is a multi-process job; True if it was."""
    kw = cluster_kwargs(environ)
    if kw is None:
        return False
    import jax

    if not jax.distributed.is_initialized():  # a launcher and its worker both call this
        jax.distributed.initialize(**kw)
    return True


def is_primary() -> bool:
    """True on the process that writes a run's files (process 0; the only one alone)."""
    import jax

    return jax.process_index() == 0


def broadcast_json(obj):
    """Process 0's JSON-able `obj` on every process (a collective: call it on all).

    Sent as bytes in two broadcasts (the length, then the bytes padded to it)."""
    import json

    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    if jax.process_count() == 1:
        return obj
    data = json.dumps(obj).encode() if jax.process_index() == 0 else b""
    n = int(multihost_utils.broadcast_one_to_all(np.asarray(len(data), np.int64)))
    buf = np.zeros(n, np.uint8)
    if jax.process_index() == 0:
        buf[:] = np.frombuffer(data, np.uint8)
    buf = np.asarray(multihost_utils.broadcast_one_to_all(buf))
    return json.loads(buf.tobytes().decode())


def any_process(flag: bool) -> bool:
    """`flag` of any process of a multi-host job (a collective: call it on all); alone: flag."""
    import jax
    import numpy as np

    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))


def replicated_global(a, sharding):
    """A replicated global array from this process's copy of `a` (multi-host)."""
    import jax
    import numpy as np

    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):  # typed keys: via their data
        data = jax.make_array_from_process_local_data(sharding, np.asarray(jax.random.key_data(a)))
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
    return jax.make_array_from_process_local_data(sharding, np.asarray(a))
