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


SWEEP_EXPERIMENT = '''
from gru_jax.harness.config import apply_overrides, base_config

def get_config():
    return apply_overrides(base_config("adding"), TINY)

def get_sweep():
    return [{"seed": 0}, {"seed": 1}]
'''


def test_multihost_sweep_trains_each_point_once(tmp_path):
    """scripts/sweep.py on 2 processes (one job, one worker): process 0 alone talks to
    the storage and broadcasts each point; both train it (the run spans both
    processes' devices); each point is one trial, trained once; both processes
    report the same points with the same results."""
    import re
    import sys

    from conftest import ROOT

    exp = tmp_path / "exp.py"
    exp.write_text(SWEEP_EXPERIMENT.replace("TINY", repr(TINY)))
    port, out = free_port(), tmp_path / "sweep"
    procs = []
    for i in range(2):
        env = {**subprocess_env(), "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
               "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)}
        procs.append(subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "sweep.py"), f"--config={exp}",
             f"--workdir={out}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, cwd=ROOT))
    logs = [p.communicate(timeout=300)[0] for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    line = re.compile(r"^(seed=\d): (done, step \d+, mse [\d.e+-]+)", re.M)
    seen = [sorted(line.findall(log)) for log in logs]
    assert [name for name, _ in seen[0]] == ["seed=0", "seed=1"]  # each once, on each
    assert seen[0] == seen[1]  # the same results on both processes
    assert "2 points: 0 waiting, 0 running, 2 done, 0 failed" in logs[0]
    assert "points:" not in logs[1]  # process 1 never opened the storage

    import optuna

    trials = optuna.load_study(study_name="sweep",
                               storage=f"sqlite:///{out / 'study.db'}").trials
    assert sorted(t.user_attrs["dir"] for t in trials) == ["seed=0", "seed=1"]
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert {t.system_attrs["gru_jax:owner"]["pid"] for t in trials} == {procs[0].pid}
    for name in ("seed=0", "seed=1"):
        s = json.loads((out / name / "summary.json").read_text())
        assert s["status"] == "done" and s["num_devices"] == 2
        assert s["step"] == TINY["train.steps"]
