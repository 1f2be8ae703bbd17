"""Multi-host: one run over 2 processes (jax.distributed on loopback, one CPU device
each) equals the same run in one process, to float tolerance.

Both processes run scripts/train.py into one workdir, as on two nodes sharing a
filesystem: the batch is split over the two processes' devices, the state is
replicated, process 0 writes the summary and the events.
"""

from __future__ import annotations

import json
import socket
import subprocess

import pytest
from conftest import TINY, subprocess_env, train_command

RTOL = 1e-4  # the all-reduce sums the per-process gradients in another order


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    one = subprocess.run(train_command(tmp_path / "one", TINY), capture_output=True,
                         text=True, env=subprocess_env(), timeout=180)
    assert one.returncode == 0, one.stderr[-3000:]
    port = free_port()
    procs = []
    for i in range(2):
        env = {**subprocess_env(), "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
               "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)}
        procs.append(subprocess.Popen(train_command(tmp_path / "two", TINY), env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    logs = [p.communicate(timeout=300)[0] for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    a = json.loads((tmp_path / "one" / "summary.json").read_text())
    b = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert a["num_devices"] == 1 and b["num_devices"] == 2
    assert a["status"] == b["status"] == "done" and a["step"] == b["step"] == TINY["train.steps"]
    assert len(b["eval_history"]) == len(a["eval_history"]) >= 1
    for x, y in zip(a["eval_history"], b["eval_history"], strict=True):
        assert y == pytest.approx(x, rel=RTOL)
    assert b["final"] == pytest.approx(a["final"], rel=RTOL)
    assert b["grad_norms"] == pytest.approx(a["grad_norms"], rel=RTOL)
