"""Shared fixtures: a tiny config, a way to run scripts/train.py, and a compile cache.

Training runs in these tests compile the same few programs again and again
(each `train_and_evaluate` builds fresh jitted closures, and subprocesses
start cold). A persistent JAX compilation cache, private to the test process
(each pytest-xdist worker has its own), turns every compilation after the first
into a disk read. It changes no number: the cache holds the executable XLA would
build anyway.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parents[1]

_CACHE = tempfile.mkdtemp(prefix="gru_jax_test_jit_cache_")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
CACHE_ENV = {
    "JAX_COMPILATION_CACHE_DIR": _CACHE,
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# The tiny run most tests train: GRU hidden 8 on the adding problem at T = 8.
TINY = {
    "model.hidden_size": 8,
    "task.seq_len": 8,
    "train.steps": 6,
    "train.batch_size": 16,
    "train.learning_rate": 1e-2,
    "train.warmup_steps": 2,
    # Constant: train.steps then does not enter the compiled step, so runs of
    # different lengths share one compilation through the cache.
    "train.schedule": "constant",
    "train.eval_every": 3,
    "train.eval_size": 32,
    "train.checkpoint_every": 3,
    "train.keep_checkpoints": 2,
    "train.log_every": 1,
    "train.progress": False,
}


def make_tiny_config(**overrides):
    """base_config("adding") with TINY and then `overrides` (dotted keys with "__"
    for ".", e.g. model__cell="lstm") applied."""
    from gru_jax.harness.config import apply_overrides, base_config

    dotted = {k.replace("__", "."): v for k, v in overrides.items()}
    return apply_overrides(base_config("adding"), {**TINY, **dotted})


@pytest.fixture
def tiny_config():
    """A factory: tiny_config(model__cell="lstm", train__steps=4) -> ConfigDict."""
    return make_tiny_config


def train_command(workdir, overrides: dict) -> list[str]:
    """The scripts/train.py command line for experiments/adding.py with `overrides`."""
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"),
           f"--config={ROOT / 'experiments' / 'adding.py'}", f"--workdir={workdir}"]
    return cmd + [f"--config.{k}={v}" for k, v in overrides.items()]


def subprocess_env() -> dict:
    env = {**os.environ, **CACHE_ENV, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)  # one CPU device, as in this process
    return env


def run_train(workdir, overrides: dict, *, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run scripts/train.py to the end; returns the completed process (text output)."""
    return subprocess.run(train_command(workdir, overrides), capture_output=True, text=True,
                          env=subprocess_env(), timeout=timeout, cwd=ROOT)


def start_train(workdir, overrides: dict) -> subprocess.Popen:
    """Start scripts/train.py in the background (stdout and stderr to files in workdir/..)."""
    log = Path(str(workdir) + ".log")
    f = open(log, "ab")  # noqa: SIM115 - closed by the child's exit; the file stays for reading
    return subprocess.Popen(train_command(workdir, overrides), stdout=f, stderr=subprocess.STDOUT,
                            env=subprocess_env(), cwd=ROOT)


def experiment_config(overrides: dict | None = None):
    """experiments/adding.py's get_config() with dotted `overrides`, as scripts/train.py
    builds it from --config.KEY=VALUE flags."""
    import importlib.util

    from gru_jax.harness.config import apply_overrides

    spec = importlib.util.spec_from_file_location("adding_experiment",
                                                  ROOT / "experiments" / "adding.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return apply_overrides(module.get_config(), overrides or {})


# --- live peers for parity tests (skipped where not installed) ---


@pytest.fixture(scope="session")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)  # tiny sizes; leave the other core alone
    return torch


@pytest.fixture(scope="session")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras parity runs on the jax backend (KERAS_BACKEND=jax)")
    return keras
