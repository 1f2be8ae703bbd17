"""The sweep engine with real parts: scripts/sweep.py processes, the real trainer,
real storages (SQLite file, Optuna journal file, a PostgreSQL server started here).

- two local workers (--workers=2) on the default SQLite storage run every point of a
  small grid exactly once;
- a worker killed with SIGKILL mid-run leaves its point to another worker (the dead
  process is noticed, or its heartbeat goes stale), which resumes it from the
  checkpoint and finishes with the metrics of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, subprocess_env

optuna = pytest.importorskip("optuna")

EXPERIMENT = '''
from gru_jax.harness.config import apply_overrides, base_config

def get_config():
    return apply_overrides(base_config("adding"), {
        "model.hidden_size": 8, "task.seq_len": 8, "train.batch_size": 16,
        "train.steps": STEPS, "train.warmup_steps": 2, "train.checkpoint_every": 10,
        "train.keep_checkpoints": 2, "train.eval_every": 50, "train.log_every": 10,
        "train.eval_size": 32, "train.progress": False})

def get_sweep():
    return POINTS
'''


def experiment(tmp_path, steps: int, points: list) -> Path:
    path = tmp_path / "exp.py"
    path.write_text(EXPERIMENT.replace("STEPS", str(steps)).replace("POINTS", repr(points)))
    return path


def sweep_cmd(exp, out, *extra) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "sweep.py"), f"--config={exp}",
            f"--workdir={out}", *extra]


def trials(out, storage=None):
    from gru_jax.harness.sweep import storage as storage_

    return storage_.open_study(storage_.open_storage(storage, out)).get_trials()


def test_two_local_workers_run_every_point_once(tmp_path):
    points = [{"seed": s, "model.cell": c} for c in ("gru", "rnn") for s in (0, 1)]
    exp, out = experiment(tmp_path, 20, points), tmp_path / "sweep"
    # The default compilation cache (no JAX_COMPILATION_CACHE_DIR): the spawned
    # workers, not only the launcher, must write to it.
    env = {**subprocess_env(), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("JAX_COMPILATION_CACHE_DIR")
    proc = subprocess.run(sweep_cmd(exp, out, "--workers=2"), capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert list((tmp_path / "xdg" / "gru_jax" / "jax").glob("jit_loop-*")), \
        "the workers' training loops are not in the persistent compilation cache"
    assert "4 points: 0 waiting, 0 running, 4 done, 0 failed" in proc.stdout
    done = [t for t in trials(out) if t.state.name == "COMPLETE"]
    assert sorted(t.user_attrs["dir"] for t in done) == sorted(
        f"cell={p['model.cell']},seed={p['seed']}" for p in points)  # each exactly once
    assert len({t.system_attrs["gru_jax:owner"]["pid"] for t in done}) == 2  # both worked
    for t in done:
        s = json.loads((out / t.user_attrs["dir"] / "summary.json").read_text())
        assert s["status"] == "done" and s["step"] == 20 and s["resumed_from"] is None
        assert t.value == pytest.approx(s["final"]["mse"])
    again = subprocess.run(sweep_cmd(exp, out), capture_output=True, text=True,
                           env=subprocess_env(), cwd=ROOT, timeout=200)
    assert again.returncode == 0 and len(trials(out)) == 4  # nothing enqueued or trained again


def ckpt_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in run_dir.glob("checkpoints/*") if p.name.isdigit()) \
        if (run_dir / "checkpoints").is_dir() else \
        sorted(int(p.name) for p in run_dir.glob("*") if p.name.isdigit())


def killed_worker_is_retried(tmp_path, storage: str | None):
    """Worker A is SIGKILLed after a checkpoint; worker B (heartbeat 1 s, grace 3 s)
    resumes the point: same final metrics as the run trained in one go."""
    from gru_jax.harness.config import apply_overrides
    from gru_jax.harness.sweep import load_experiment
    from gru_jax.harness.train import train_and_evaluate

    exp, out = experiment(tmp_path, 200, [{"seed": 3}]), tmp_path / "sweep"
    extra = ["--heartbeat=1", "--grace=3"] + ([f"--storage={storage}"] if storage else [])
    a = subprocess.Popen(sweep_cmd(exp, out, *extra), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=subprocess_env(), cwd=ROOT, text=True)
    run_dir = out / "seed=3"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and a.poll() is None and \
            not [s for s in ckpt_steps(run_dir) if s >= 30]:
        time.sleep(0.05)
    assert a.poll() is None, a.communicate()[0][-3000:]
    a.kill()
    a.communicate(timeout=30)
    killed_at = max(ckpt_steps(run_dir))
    assert killed_at < 200
    b = subprocess.run(sweep_cmd(exp, out, *extra), capture_output=True, text=True,
                       env=subprocess_env(), cwd=ROOT, timeout=300)
    assert b.returncode == 0, b.stdout[-3000:] + b.stderr[-3000:]
    ts = trials(out, storage)
    assert [t.state.name for t in ts] == ["FAIL", "COMPLETE"]  # the lost try, its retry
    assert ts[1].system_attrs["failed_trial"] == 0
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "done" and s["step"] == 200 and s["resumed_from"] >= 30
    config = apply_overrides(load_experiment(exp).get_config(), {"seed": 3})
    alone = train_and_evaluate(config, str(tmp_path / "alone"))
    assert s["final"] == pytest.approx(alone["final"], rel=1e-5)
    assert [e["mse"] for e in s["eval_history"]] == pytest.approx(
        [e["mse"] for e in alone["eval_history"]], rel=1e-5)


def test_a_worker_killed_mid_sweep_leaves_it_finished_by_the_other(tmp_path):
    """One of two local workers is SIGKILLed (the OOM killer's way) after its point
    checkpoints: the other retries that point after the grace, the launcher waits for
    it and, with nothing left, exits 0 (not "preempted")."""
    exp, out = experiment(tmp_path, 200, [{"seed": 3}, {"seed": 4}]), tmp_path / "sweep"
    proc = subprocess.Popen(sweep_cmd(exp, out, "--workers=2", "--heartbeat=1", "--grace=3"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=subprocess_env(), cwd=ROOT, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and \
            not [s for s in ckpt_steps(out / "seed=3") if s >= 30]:
        time.sleep(0.05)
    owner = [t for t in trials(out) if t.user_attrs.get("dir") == "seed=3"
             and t.state.name == "RUNNING"][0].system_attrs["gru_jax:owner"]["pid"]
    os.kill(owner, 9)
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, log[-3000:]
    assert "2 points: 0 waiting, 0 running, 2 done, 0 failed" in log
    assert "1 worker(s) killed by signal 9" in log
    s = json.loads((out / "seed=3" / "summary.json").read_text())
    assert s["status"] == "done" and s["step"] == 200 and s["resumed_from"] >= 30


def test_killed_worker_is_retried_sqlite(tmp_path):
    killed_worker_is_retried(tmp_path, None)


def test_killed_worker_is_retried_journal(tmp_path):
    killed_worker_is_retried(tmp_path, f"journal:{tmp_path / 'journal.log'}")


# ---------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return None


@pytest.fixture
def postgres():
    """A PostgreSQL server on loopback in a temporary folder (as user `postgres`
    when we are root: the server refuses to run as root); yields its URL."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl); .ci/run installs them")
    pytest.importorskip("psycopg")
    import tempfile

    # Not under pytest's own (0700, root's) folder: the server's user must reach it.
    root = Path(tempfile.mkdtemp(prefix="gru_jax_pg_"))
    data = root / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres") if "postgres" in {p.pw_name for p in pwd.getpwall()} \
            else pwd.getpwnam("nobody")
        os.chown(root, user.pw_uid, user.pw_gid)
        root.chmod(0o777)
        prefix = ["runuser", "-u", user.pw_name, "--"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "gru", "--auth=trust", "-E",
                    "UTF8"], check=True, capture_output=True, env=env, cwd=root)
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, env=env, cwd=root)
    try:
        yield f"postgresql+psycopg://gru@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, env=env, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


def test_killed_worker_is_retried_postgres(tmp_path, postgres):
    killed_worker_is_retried(tmp_path, postgres)
