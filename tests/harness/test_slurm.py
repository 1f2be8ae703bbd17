"""The SLURM path without a cluster: submitit's real executors.

- the parameters: submitit's SlurmExecutor built by `executor.slurm_executor` (a stub
  `srun` on PATH: submitit only checks that one exists) renders the sbatch script it
  would submit; its lines are the ones asked for, and its ``--signal`` is the trainer's
  stop signal;
- the jobs: `executor.run_slurm` with submitit's local cluster runs 2 workers as 2
  submitit jobs (each a `SlurmWorker`, the object a SLURM job array runs) on a small
  sweep; USR2, the signal SLURM sends before the time limit, sent to the worker that
  trains the long point, makes it checkpoint, put its point back, and submitit
  requeue the job; the point resumes from its checkpoint and every point is trained
  once.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from conftest import CACHE_ENV, ROOT, TINY

submitit = pytest.importorskip("submitit")
optuna = pytest.importorskip("optuna")

from gru_jax.harness.sweep import executor  # noqa: E402


def test_slurm_parameters(tmp_path, monkeypatch):
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "srun").write_text("#!/bin/sh\nexit 1\n")
    (stub / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub}{os.pathsep}{os.environ['PATH']}")
    ex = executor.slurm_executor(tmp_path / "slurm" / "%j", "slurm", partition="gpu",
                                 time=240, mem_gb=16, cpus_per_task=4, gpus_per_node=1,
                                 array_parallelism=3, exclude="node7")
    from submitit.slurm.slurm import SlurmExecutor, SlurmJobEnvironment, _make_sbatch_string

    assert isinstance(ex._executor, SlurmExecutor)
    script = _make_sbatch_string(command=ex._executor._submitit_command_str,
                                 folder=ex._executor.folder, map_count=5,
                                 **ex._executor.parameters)
    lines = set(script.splitlines())
    for want in ("--array=0-4%3", "--partition=gpu", "--time=240", "--mem=16GB",
                 "--cpus-per-task=4", "--gpus-per-node=1", "--exclude=node7",
                 "--job-name=gru_jax-sweep", "--signal=USR2@90"):
        assert f"#SBATCH {want}" in lines, script
    # SLURM's warning signal is the one the worker's trainer stops on
    assert SlurmJobEnvironment._usr_sig() == signal.SIGUSR2 in executor.SLURM_STOP_SIGNALS
    with pytest.raises(ValueError, match="doesn't know"):
        executor.slurm_executor(tmp_path, "nosuchcluster")


EXPERIMENT = '''
from gru_jax.harness.config import apply_overrides, base_config

def get_config():
    return apply_overrides(base_config("adding"), TINY)

def get_sweep():
    return [{"seed": 1},
            {"seed": 2, "train.steps": 1000, "train.checkpoint_every": 20,
             "train.eval_every": 1000, "train.log_every": 500}]
'''


def ckpt_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in run_dir.rglob("*") if p.name.isdigit())


@pytest.mark.slow  # 3 job processes start JAX (2 workers, 1 requeued): ~95 s on 2 busy cores
def test_local_jobs_run_the_sweep_and_requeue_on_usr2(tmp_path, monkeypatch):
    from gru_jax.harness import sweep
    from gru_jax.harness.sweep import storage as storage_

    # The jobs' processes inherit this environment (submitit's local controller).
    for k, v in {**CACHE_ENV, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    exp = tmp_path / "exp.py"
    exp.write_text(EXPERIMENT.replace("TINY", repr(TINY)))
    out = tmp_path / "sweep"
    spec = executor.WorkerSpec(sweep.load_experiment(exp).get_config(), str(exp), None,
                               str(out), None, poll=0.2)
    sweep.open_sweep(spec.config, executor.source_of(spec), out)  # as scripts/sweep.py
    jobs = executor.run_slurm(spec, 2, tmp_path / "slurm" / "%j", cluster="local", time=10)
    assert len(jobs) == 2 and all(isinstance(j, submitit.local.local.LocalJob) for j in jobs)

    study = storage_.open_study(storage_.open_storage(None, out))
    deadline, long = time.monotonic() + 240, None
    while time.monotonic() < deadline:
        long = next((t for t in study.get_trials() if t.user_attrs["dir"] != "seed=1"
                     and t.state.name == "RUNNING"), None)
        if long is not None and [s for s in ckpt_steps(out / long.user_attrs["dir"])
                                 if s >= 20]:
            break
        assert not all(j.done() for j in jobs), [j.stderr() for j in jobs]
        time.sleep(0.05)
    else:
        pytest.fail("the long point never reached its first checkpoint")
    os.kill(long.system_attrs["gru_jax:owner"]["pid"], signal.SIGUSR2)  # as SLURM would

    results = [j.result() for j in jobs]
    assert all(r["failed"] == 0 for r in results), results
    logs = "".join((j.stderr() or "") + (j.stdout() or "") for j in jobs)
    assert "Requeued job" in logs, logs[-3000:]
    by_dir: dict[str, list] = {}
    for t in study.get_trials():
        by_dir.setdefault(t.user_attrs["dir"], []).append(t)
    assert [t.state.name for t in by_dir.pop("seed=1")] == ["COMPLETE"]
    (name, trials), = by_dir.items()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[0].user_attrs["status"] == "preempted"
    assert trials[1].system_attrs["gru_jax:preempted"] is True
    s = json.loads((out / name / "summary.json").read_text())
    assert s["status"] == "done" and s["step"] == 1000 and s["resumed_from"] >= 20


@pytest.mark.slow  # a job process starts JAX and trains: ~30 s on 2 busy cores
def test_search_as_slurm_jobs(tmp_path, monkeypatch):
    """search.submit_search (scripts/search.py --executor=slurm) on submitit's local
    cluster: the job (a SlurmWorker running the search's SearchWorker) trains the
    search's candidates; the log read back from the study says done."""
    from conftest import make_tiny_config

    from gru_jax.harness import search

    for k, v in {**CACHE_ENV, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    space = {"train.learning_rate": (1e-3, 3e-2, "log", float)}
    jobs = search.submit_search(make_tiny_config(), tmp_path / "search", space, "random", 2, 2,
                                0, workers=1, cluster="local", time=10)
    assert [j.result()["ran"] for j in jobs] == [2]
    (log_, _, study), = search.search_logs(tmp_path / "search")
    assert log_["status"] == "done" and [c["status"] for c in log_["candidates"]] == \
        ["done", "done"]
    assert {t.system_attrs["gru_jax:owner"]["pid"] for t in study.trials} != {os.getpid()}
