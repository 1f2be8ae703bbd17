"""Robustness: SIGKILL at random moments, SIGTERM, damaged or half-written
checkpoints, NaN, a workdir of another run, an unwritable workdir.

The runs under signals are real `scripts/train.py` processes; every resumed
run must end with exactly the numbers of one uninterrupted run.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from pathlib import Path

import jax.numpy as jnp
import pytest
from conftest import experiment_config, make_tiny_config, run_train, start_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gru_jax.harness.errors import WorkdirError
from gru_jax.harness.steps import train_step
from gru_jax.harness.train import EXIT_PREEMPTED, train_and_evaluate

# 60 steps with a checkpoint every 5: long enough to interrupt, short enough to run often.
FAULT = {
    "model.hidden_size": 8, "task.seq_len": 8, "train.batch_size": 16, "train.steps": 60,
    "train.warmup_steps": 2, "train.checkpoint_every": 5, "train.keep_checkpoints": 2,
    "train.eval_every": 10, "train.log_every": 5, "train.eval_size": 32,
    "train.progress": False,
}


def ckpt_steps(workdir) -> list[int]:
    d = Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def summary_of(workdir) -> dict:
    return json.loads((Path(workdir) / "summary.json").read_text())


def same_numbers(a: dict, b: dict) -> None:
    assert a["status"] == b["status"] == "done"
    assert a["eval_history"] == b["eval_history"]  # every eval, bit for bit
    assert a["final"] == b["final"]
    assert a["grad_norms"] == b["grad_norms"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run: (workdir, summary)."""
    workdir = tmp_path_factory.mktemp("faults") / "reference"
    proc = run_train(workdir, FAULT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, summary_of(workdir)


def _wait_for_checkpoint(proc, workdir, step, timeout=120.0) -> bool:
    """Poll until a checkpoint >= step exists (True) or the process has ended (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        steps = ckpt_steps(workdir)
        if steps and steps[-1] >= step:
            return True
        time.sleep(0.005)
    proc.kill()
    raise AssertionError(f"no checkpoint >= {step} within {timeout} s")


@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_random_moments_then_resume(tmp_path, reference, seed):
    """Kill -9 twice at random points (after some checkpoint, plus a random delay
    that often lands inside the next save), then run to the end: same numbers."""
    rng = random.Random(seed)
    workdir = tmp_path / "run"
    kills = 0
    for target in sorted(rng.sample(range(5, 50, 5), 2)):
        proc = start_train(workdir, FAULT)
        if _wait_for_checkpoint(proc, workdir, target):
            time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGKILL)
        rc = proc.wait(timeout=60)
        kills += rc == -signal.SIGKILL
        assert rc in (0, -signal.SIGKILL), Path(str(workdir) + ".log").read_text()[-3000:]
    assert kills >= 1, "no kill landed before the run ended"
    before = ckpt_steps(workdir)
    proc = run_train(workdir, FAULT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = summary_of(workdir)
    assert summary["resumed_from"] == before[-1]
    same_numbers(summary, reference[1])
    # TensorBoard drops what the killed sessions logged past their last checkpoint.
    acc = EventAccumulator(str(workdir), size_guidance={"scalars": 0})
    acc.Reload()
    evals = acc.Scalars("eval/mse")
    assert [e.step for e in evals] == list(range(10, 61, 10))
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(5, 61, 5))
    assert [e.value for e in evals] == pytest.approx(
        [e["mse"] for e in reference[1]["eval_history"]], rel=1e-6)


def test_sigterm_saves_and_exits_preempted(tmp_path, reference):
    workdir = tmp_path / "run"
    proc = start_train(workdir, FAULT)
    assert _wait_for_checkpoint(proc, workdir, 10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == EXIT_PREEMPTED
    summary = summary_of(workdir)
    assert summary["status"] == "preempted"
    stopped = summary["step"]
    assert 10 <= stopped < 60 and ckpt_steps(workdir)[-1] == stopped
    assert "preempted at step" in Path(str(workdir) + ".log").read_text()
    # The same command again: resumes at the preemption step and ends as if never stopped.
    proc = run_train(workdir, FAULT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = summary_of(workdir)
    assert summary["resumed_from"] == stopped
    same_numbers(summary, reference[1])


def _config():
    """FAULT exactly as scripts/train.py builds it (so the workdir's config.json matches)."""
    return experiment_config(FAULT)


# After a failed read, tensorstore's late callbacks hit Orbax's closed event loop
# ("Event loop is closed", ignored by Python): noise from inside Orbax, not a fault.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_damaged_latest_checkpoint_falls_back(tmp_path, reference, caplog):
    workdir = tmp_path / "run"
    shutil.copytree(reference[0], workdir)
    assert ckpt_steps(workdir) == [55, 60]
    for f in (workdir / "checkpoints" / "60" / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":  # truncate the array data files
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    summary = train_and_evaluate(_config(), str(workdir))
    assert "checkpoint at step 60 cannot be restored" in caplog.text
    assert summary["resumed_from"] == 55
    same_numbers(summary, reference[1])
    assert ckpt_steps(workdir) == [55, 60]  # 60 written again
    moved = list((workdir / "checkpoints_corrupt").iterdir())
    assert len(moved) == 1 and moved[0].name.startswith("60-")  # kept, not deleted


def test_half_written_checkpoint_is_ignored(tmp_path, reference):
    """A save cut off before Orbax's final rename leaves a temporary folder:
    it is not a checkpoint, the previous one is used, and it is cleaned up."""
    workdir = tmp_path / "run"
    shutil.copytree(reference[0], workdir)
    ckpts = workdir / "checkpoints"
    partial = ckpts / "60.orbax-checkpoint-tmp"
    (ckpts / "60").rename(partial)
    for f in list(partial.rglob("*"))[::2]:
        if f.is_file():
            f.unlink()
    summary = train_and_evaluate(_config(), str(workdir))
    assert summary["resumed_from"] == 55
    same_numbers(summary, reference[1])
    assert not partial.exists() and ckpt_steps(workdir) == [55, 60]


def test_nan_at_step_k_stops_as_diverged(tmp_path):
    k = 7
    def poisoned(state, batch, lr_scale):  # NaN inputs at (1-based) step k only
        x = jnp.where(state.step == k - 1, jnp.nan, batch["x"])
        return train_step(state, {**batch, "x": x}, lr_scale)

    config = make_tiny_config(**{"train.steps": 20, "train.log_every": 5})
    summary = train_and_evaluate(config, str(tmp_path), train_step=poisoned)
    assert summary["status"] == "diverged"
    assert summary["diverged_at"] == k and summary["step"] == k - 1
    assert [e["step"] for e in summary["eval_history"]] == [3, 6]
    assert summary["final"]["mse"] is not None  # the params of step k - 1 are intact
    assert ckpt_steps(tmp_path) == [3, 6]  # nothing saved past the last good step
    assert summary_of(tmp_path) == summary


def test_huge_learning_rate_diverges(tmp_path):
    config = make_tiny_config(**{"train.learning_rate": 1e30, "train.warmup_steps": 0,
                                 "train.steps": 10})
    summary = train_and_evaluate(config, str(tmp_path))
    # Step 1 moves every parameter by ~1e30; the loss at step 2 overflows float32.
    assert summary["status"] == "diverged" and summary["diverged_at"] == 2
    assert summary["step"] == 1


def test_different_config_is_refused(tmp_path):
    train_and_evaluate(make_tiny_config(**{"train.steps": 2}), str(tmp_path))
    other = make_tiny_config(**{"train.steps": 2, "model.hidden_size": 16, "seed": 3})
    with pytest.raises(WorkdirError) as e:
        train_and_evaluate(other, str(tmp_path))
    msg = str(e.value)
    assert "model.hidden_size: 8 -> 16" in msg and "seed: 0 -> 3" in msg
    assert "use a new --workdir" in msg and "\n" not in msg
    # The command line: one line, exit 2, and the old run untouched.
    before = (tmp_path / "summary.json").read_text()
    proc = run_train(tmp_path, {"model.hidden_size": 16}, timeout=60)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: workdir {tmp_path} holds a run")
    assert (tmp_path / "summary.json").read_text() == before


def test_unwritable_workdir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(WorkdirError, match=r"cannot write there"):
        train_and_evaluate(make_tiny_config(), str(blocker / "run"))


def test_unexpected_error_writes_failed_summary(tmp_path):
    def broken(state, batch):  # the first evaluation (step 3) fails
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        train_and_evaluate(make_tiny_config(), str(tmp_path), eval_step=broken)
    summary = summary_of(tmp_path)
    assert summary["status"] == "failed" and summary["step"] == 3
    assert summary["error"] == "RuntimeError: disk on fire"
