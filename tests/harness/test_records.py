"""The summary schema and its versions (harness.summary), the JSON files, metrics, keys."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gru_jax.harness import files, keys, metrics, status, summary
from gru_jax.harness.summary import RunSummary, SummaryError

DATA = Path(__file__).resolve().parents[1] / "data"  # tests/data
ROOT = Path(__file__).resolve().parents[2]


def test_reads_a_schema_1_summary_written_by_the_trainer_unchanged(tmp_path):
    # tests/data/summary_v1.json: written by the trainer of commit 1513723 (schema 1).
    shutil.copy(DATA / "summary_v1.json", tmp_path / files.SUMMARY_FILE)
    raw = json.loads((DATA / "summary_v1.json").read_text())
    s = summary.read_summary(tmp_path)
    assert raw["schema_version"] == s.schema_version == 1
    assert (s.status, s.stop_reason, s.solved) == (raw["status"], "solved", raw["solved"])
    assert s.metric == raw["task"]["metric"] == "mse"
    assert s.final_value == raw["final"]["mse"] == raw["eval_history"][-1]["mse"]
    assert s.grad_horizons == raw["grad_horizons"] and s.machine == raw["machine"]
    assert s.grad_horizon_init == raw["grad_horizon_init"]
    assert s.grad_horizon_median == raw["grad_horizon_median"]
    # written back, nothing is lost or changed
    assert s.to_dict() == raw


def test_reads_every_committed_result_unchanged():
    # The study results under results/ were written by the trainer; reading and writing
    # them back through RunSummary must give the same JSON.
    paths = sorted((ROOT / "results").glob(f"**/{files.SUMMARY_FILE}"))
    assert len(paths) > 10
    for path in paths:
        raw = json.loads(path.read_text())
        s = summary.read_summary(path.parent)
        assert s.to_dict() == {**raw, "schema_version": summary.SCHEMA_VERSION}, path
        assert s.status in status.STATUSES and s.metric in metrics.METRICS


def test_version_0_is_migrated():
    old = {"status": "done", "final": {"loss": 0.2, "accuracy": 0.95},
           "eval_history": [{"step": 10, "loss": 0.2, "accuracy": 0.95}], "step": 10}
    s = RunSummary.from_dict(old)
    assert s.schema_version == summary.SCHEMA_VERSION and s.metric == "accuracy"
    assert s.final_value == 0.95 and s.stop_reason is None and s.eval_history[0]["step"] == 10
    failed_early = RunSummary.from_dict({"status": "failed", "error": "x",
                                         "eval_history": [{"step": 5, "mse": 0.3}]})
    assert failed_early.metric == "mse" and failed_early.final_value is None


@pytest.mark.parametrize("bad, match", [
    ({"status": "done", "finall": {}}, "unknown field.*finall"),
    ({"status": "finished"}, "status must be one of"),
    ({"status": "done", "schema_version": 7}, "schema_version 7"),
    ([], "not a JSON object"),
])
def test_bad_summaries_are_named(bad, match):
    with pytest.raises(SummaryError, match=match):
        RunSummary.from_dict(bad)


def test_unreadable_file_and_absent_file(tmp_path):
    assert summary.read_summary(tmp_path) is None
    (tmp_path / files.SUMMARY_FILE).write_text("{half")
    with pytest.raises(SummaryError, match=files.SUMMARY_FILE):
        summary.read_summary(tmp_path)


def test_write_is_atomic_json_with_the_umask(tmp_path):
    s = RunSummary(status="diverged", step=3, final={"mse": float("nan"), "loss": 1.5},
                   diverged_at=4, task=summary.TaskInfo(metric="mse"))
    old = os.umask(0o022)
    try:
        summary.write_summary(tmp_path, s)
    finally:
        os.umask(old)
    path = tmp_path / files.SUMMARY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # as open(..., "w") would give
    d = json.loads(path.read_text())
    assert d["final"] == {"mse": None, "loss": 1.5} and d["diverged_at"] == 4
    assert "error" not in d and d["schema_version"] == summary.SCHEMA_VERSION
    assert summary.read_summary(tmp_path) == dataclasses.replace(s, final={"mse": None,
                                                                           "loss": 1.5})
    assert [p.name for p in tmp_path.iterdir()] == [files.SUMMARY_FILE]  # no temp left


def test_metric_direction():
    assert metrics.reached("mse", 0.01, 0.01) and not metrics.reached("mse", 0.02, 0.01)
    assert metrics.reached("accuracy", 0.99, 0.99) and not metrics.reached("accuracy", 0.5, 0.9)
    assert metrics.minimised("accuracy", 0.9) == -0.9 and metrics.minimised("mse", 0.1) == 0.1


def test_flatten_unflatten_round_trip():
    nested = {"seed": 1, "model": {"cell": "gru", "hidden_size": 8}, "task": {"name": "adding"}}
    flat = keys.flatten(nested)
    assert flat == {"seed": 1, "model.cell": "gru", "model.hidden_size": 8,
                    "task.name": "adding"}
    assert keys.unflatten(flat) == nested


BLOCKED = ("orbax", "tensorboard", "tensorboardX", "matplotlib", "ml_collections")


def test_library_runs_without_the_harness_dependencies():
    # A finder that refuses the harness's dependencies: the library must not need them.
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {BLOCKED!r}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import jax, jax.numpy as jnp, numpy as np
import gru_jax, gru_jax.interop, gru_jax.modules, gru_jax.nnx, gru_jax.stacked
params = gru_jax.init_gru(jax.random.key(0), 2, 3)
h, hs = gru_jax.gru_scan(params, jnp.ones((1, 4, 2)))
assert hs.shape == (1, 4, 3) and np.isfinite(np.asarray(hs)).all()
assert not any(m.startswith('gru_jax.harness') for m in sys.modules)
print('ok')
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]
