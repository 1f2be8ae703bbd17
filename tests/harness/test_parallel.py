"""Data parallel: the same tiny run on 4 (fake CPU) devices and on 1 gives the
same numbers; a batch that does not split over the devices is a config error;
the multi-host switch reads the cluster environment.

The runs are real scripts/train.py processes: XLA_FLAGS must be set before JAX
starts, so the device count cannot change inside this process.
"""

from __future__ import annotations

import json

import pytest
from conftest import TINY, subprocess_env, train_command
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gru_jax.harness.distributed import cluster_kwargs

RTOL = 1e-4  # the all-reduce sums the per-device gradients in another order


def run_on(devices: int, workdir, overrides: dict):
    import subprocess

    env = subprocess_env()
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.run(train_command(workdir, overrides), capture_output=True, text=True,
                          env=env, timeout=180)


def train_losses(workdir) -> list[float]:
    acc = EventAccumulator(str(workdir), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.value for e in acc.Scalars("train/loss")]


def test_four_devices_equal_one(tmp_path):
    runs = {}
    for n in (1, 4):
        proc = run_on(n, tmp_path / f"dev{n}", TINY)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[n] = json.loads((tmp_path / f"dev{n}" / "summary.json").read_text())
    one, four = runs[1], runs[4]
    assert one["num_devices"] == 1 and four["num_devices"] == 4
    assert one["status"] == four["status"] == "done" and one["step"] == four["step"] == 6
    assert [e["step"] for e in four["eval_history"]] == [3, 6]
    for a, b in zip(one["eval_history"], four["eval_history"], strict=True):
        assert b == pytest.approx(a, rel=RTOL)
    assert four["final"] == pytest.approx(one["final"], rel=RTOL)
    assert four["grad_norms"] == pytest.approx(one["grad_norms"], rel=RTOL)
    assert len(train_losses(tmp_path / "dev1")) == 6  # log_every 1: every step's loss
    assert train_losses(tmp_path / "dev4") == pytest.approx(train_losses(tmp_path / "dev1"),
                                                            rel=RTOL)


def test_batch_not_divisible_by_devices_is_one_line_exit_2(tmp_path):
    workdir = tmp_path / "run"
    proc = run_on(4, workdir, {**TINY, "train.batch_size": 18})
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["error: train.batch_size: must be divisible by the 4 devices, got 18"]
    assert not workdir.exists()


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"SLURM_NTASKS": "1", "SLURM_STEP_NODELIST": "n1"}, None),  # e.g. a sweep array task
    ({"SLURM_NTASKS": "4", "SLURM_STEP_NODELIST": "n[1-4]"}, {}),  # JAX's SLURM detection
    ({"SLURM_NTASKS": "4"}, None),  # sbatch's shell, not an srun step
    ({"SLURM_NTASKS": "4", "SLURM_STEP_NODELIST": "n[1-4]", "GRU_JAX_DISTRIBUTED": "0"}, None),
    ({"JAX_COORDINATOR_ADDRESS": "h0:1234", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"},
     {"num_processes": 2, "process_id": 1}),
])
def test_multihost_switch_reads_the_cluster_environment(env, expected):
    assert cluster_kwargs(env) == expected
