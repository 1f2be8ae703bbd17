"""One trainer per run folder: a sweep worker waits for the folder's lock while
another live process holds it (a trial reaped and retried while its first worker
still runs), and a tell on a reaped trial does not crash the worker."""

from __future__ import annotations

import subprocess
import sys
import time

import optuna

from gru_jax.harness.summary import RunSummary
from gru_jax.harness.sweep.training import folder_lock
from gru_jax.harness.sweep.worker import tell

HOLD = """
import sys, time
from pathlib import Path
from gru_jax.harness.sweep.training import folder_lock
with folder_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(1.5)
    Path(sys.argv[1], "released").write_text("1")
"""


def test_folder_lock_waits_for_the_live_holder(tmp_path):
    run_dir = tmp_path / "gru" / "T10"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    with folder_lock(run_dir):
        # the holder's last act inside its lock is visible: we ran after it
        assert (run_dir / "released").exists()
        assert time.monotonic() - start > 0.5
    holder.wait(timeout=30)
    with folder_lock(run_dir):  # free again at once
        pass


def test_tell_on_a_reaped_trial_returns_quietly():
    study = optuna.create_study()
    trial = study.ask()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # the reaper's doing
    frozen = study.trials[0]
    assert tell(study, frozen, RunSummary(status="done")) is False
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
