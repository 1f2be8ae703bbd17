"""scripts/bench.py smoke tests on tiny shapes: the modes run and report numbers;
the ensemble worker trains with the trainer's own compiled program."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, subprocess_env

BENCH = str(ROOT / "scripts" / "bench.py")


@pytest.mark.parametrize("packed", [True, False])
def test_ensemble_worker_trains_with_the_trainers_program(packed):
    p = subprocess.run([sys.executable, BENCH, "--mode=ensemble_worker", "--ens_members=2",
                        "--ens_steps=2", f"--ens_packed={packed}"], input="go\n",
                       capture_output=True, text=True, env=subprocess_env(), cwd=ROOT,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    ready, done = p.stdout.split("\n")[:2]
    assert ready.startswith("ready ") and float(ready.split()[1]) > 0
    assert done.startswith("done ") and float(done.split()[1]) > 0


def test_compare_on_a_tiny_shape(tmp_path):
    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, BENCH, "--shapes=2:5:2:4", "--repeats=1",
                        "--impls=gru_jax", f"--json={out}"],
                       capture_output=True, text=True, env=subprocess_env(), cwd=ROOT,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "compare"
    (row,) = result["rows"]
    assert row["impl"] == "gru_jax" and row["shape"] == [2, 5, 2, 4]
    assert row["fwd_ms"] > 0 and row["train_ms"] > 0 and row["compile_s"] > 0
    # memory: XLA's account of the compiled program, as the trainer reports it
    assert row["mem_mb"] > 0
