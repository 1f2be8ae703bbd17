"""Packed seed ensembles: K runs that differ only in seed / learning rate trained
as one vmapped program, each with its own files and the numbers of a run alone.

On CPU the packed numbers are not bit-identical to a run alone (vmap batches
the matrix products into other kernels: differences in the last float32 bits),
so they are compared to a tight tolerance.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import pytest
from conftest import ROOT, make_tiny_config, subprocess_env
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gru_jax.harness import sweep
from gru_jax.harness.errors import ConfigError
from gru_jax.harness.steps import train_step
from gru_jax.harness.train import EXIT_PREEMPTED, train_and_evaluate, train_packed

RTOL = 1e-5
MEMBERS = [{"seed": 0}, {"seed": 1}, {"seed": 2, "train.learning_rate": 2e-2}]


def summary_of(workdir) -> dict:
    return json.loads((Path(workdir) / "summary.json").read_text())


def ckpt_steps(workdir) -> list[int]:
    d = Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def train_losses(workdir) -> list[float]:
    acc = EventAccumulator(str(workdir), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.value for e in acc.Scalars("train/loss")]


def same_run(packed: dict, alone: dict) -> None:
    assert packed["status"] == alone["status"] and packed["step"] == alone["step"]
    assert [e["step"] for e in packed["eval_history"]] == \
        [e["step"] for e in alone["eval_history"]]
    for a, b in zip(packed["eval_history"], alone["eval_history"], strict=True):
        assert a == pytest.approx(b, rel=RTOL)
    assert packed["final"] == pytest.approx(alone["final"], rel=RTOL)
    assert packed["grad_norms"] == pytest.approx(alone["grad_norms"], rel=RTOL)
    assert packed.get("diverged_at") == alone.get("diverged_at")


@pytest.fixture(scope="module")
def packed_and_alone(tmp_path_factory):
    root = tmp_path_factory.mktemp("pack")
    configs = [make_tiny_config(**{k.replace(".", "__"): v for k, v in m.items()})
               for m in MEMBERS]
    dirs = [root / f"packed{k}" for k in range(len(configs))]
    packed = train_packed(configs, [str(d) for d in dirs])
    alone = [train_and_evaluate(c, str(root / f"alone{k}")) for k, c in enumerate(configs)]
    return root, configs, dirs, packed, alone


def test_packed_members_equal_runs_alone(packed_and_alone):
    root, _, dirs, packed, alone = packed_and_alone
    for k, (p, a) in enumerate(zip(packed, alone, strict=True)):
        assert p == summary_of(dirs[k])
        assert p["pack_size"] == 3 and a["pack_size"] == 1
        assert p["config"]["seed"] == MEMBERS[k]["seed"]
        same_run(p, a)
        assert train_losses(dirs[k]) == pytest.approx(train_losses(root / f"alone{k}"), rel=RTOL)
    # Different seeds, different runs.
    assert packed[0]["final"]["mse"] != pytest.approx(packed[1]["final"]["mse"], rel=1e-3)


def test_each_member_has_its_own_files_and_resumes_alone(packed_and_alone):
    _, configs, dirs, packed, _ = packed_and_alone
    for d, c in zip(dirs, configs, strict=True):
        assert ckpt_steps(d) == [3, 6]
        assert len(list(d.glob("events.out.tfevents.*"))) == 1
        assert json.loads((d / "config.json").read_text()) == summary_of(d)["config"]
        assert summary_of(d)["config"]["train"]["learning_rate"] == c.train.learning_rate
    # Member 2 (its own learning rate) goes on alone from the packed checkpoint.
    longer = configs[2].copy_and_resolve_references()
    longer.train.steps = 9
    s = train_and_evaluate(longer, str(dirs[2]))
    assert s["status"] == "done" and s["resumed_from"] == 6 and s["step"] == 9
    assert s["eval_history"][:2] == packed[2]["eval_history"]


def test_nan_in_one_member_diverges_it_alone(tmp_path):
    k = 7

    def poisoned(state, batch, lr_scale):  # NaN inputs at step k, member lr 2e-2 only
        hit = (state.step == k - 1) & (lr_scale > 1.5e-2)  # the scale is the lr
        return train_step(state, {**batch, "x": jnp.where(hit, jnp.nan, batch["x"])}, lr_scale)

    common = {"train__steps": 12, "train__log_every": 4}
    configs = [make_tiny_config(seed=0, **common),
               make_tiny_config(seed=1, train__learning_rate=2e-2, **common)]
    ok, bad = train_packed(configs, [str(tmp_path / "ok"), str(tmp_path / "bad")],
                           train_step=poisoned)
    assert bad["status"] == "diverged" and bad["diverged_at"] == k and bad["step"] == k - 1
    assert [e["step"] for e in bad["eval_history"]] == [3, 6]
    assert bad["final"]["mse"] is not None  # the params of step k - 1 are intact
    assert ckpt_steps(tmp_path / "bad") == [3, 6]  # nothing saved past the last good step
    assert summary_of(tmp_path / "bad") == bad
    assert ok["status"] == "done" and ok["step"] == 12 and "diverged_at" not in ok
    assert [e["step"] for e in ok["eval_history"]] == [3, 6, 9, 12]
    assert ckpt_steps(tmp_path / "ok") == [9, 12]


def test_members_at_different_steps_run_one_after_another(tmp_path, caplog):
    configs = [make_tiny_config(seed=s) for s in (0, 1)]
    early = configs[0].copy_and_resolve_references()
    early.train.steps = 3
    train_and_evaluate(early, str(tmp_path / "a"))
    out = train_packed(configs, [str(tmp_path / "a"), str(tmp_path / "b")])
    assert "checkpoints at different steps [0, 3]" in caplog.text
    assert [s["status"] for s in out] == ["done", "done"]
    assert [s["resumed_from"] for s in out] == [3, None]
    assert [s["pack_size"] for s in out] == [1, 1]


def test_unpackable_configs_are_refused(tmp_path):
    configs = [make_tiny_config(), make_tiny_config(seed=1, model__hidden_size=16)]
    with pytest.raises(ConfigError, match=r"cannot pack runs that differ in model.hidden_size"):
        train_packed(configs, [str(tmp_path / "a"), str(tmp_path / "b")])
    assert not (tmp_path / "a").exists()


def test_pack_groups():
    points = [{"seed": 0, "model.cell": "gru"}, {"seed": 0, "model.cell": "lstm"},
              {"seed": 1, "model.cell": "gru", "train.learning_rate": 0.1},
              {"seed": 2, "model.cell": "gru"}, {"seed": 1, "model.cell": "lstm"}]
    assert sweep.pack_groups(points, 8) == [[0, 2, 3], [1, 4]]
    assert sweep.pack_groups(points, 2) == [[0, 2], [3], [1, 4]]
    assert sweep.pack_groups(points, 1) == [[0], [2], [3], [1], [4]]


# --- a packed sweep under signals (real scripts/sweep.py processes) ------------------------

EXPERIMENT = '''
from gru_jax.harness.config import apply_overrides, base_config

def get_config():
    return apply_overrides(base_config("adding"), {
        "model.hidden_size": 8, "task.seq_len": 8, "train.batch_size": 16, "train.steps": 300,
        "train.warmup_steps": 2, "train.checkpoint_every": 10, "train.keep_checkpoints": 2,
        "train.eval_every": 50, "train.log_every": 10, "train.eval_size": 32,
        "train.progress": False})

def get_sweep():
    return [{"seed": 0}, {"seed": 1, "train.learning_rate": 0.02}]
'''


def test_killed_and_preempted_packed_sweep_resumes(tmp_path):
    exp = tmp_path / "exp.py"
    exp.write_text(EXPERIMENT)
    out = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "scripts" / "sweep.py"), f"--config={exp}",
           f"--workdir={out}", "--pack", "--progress=false"]
    names = ["seed=0", "seed=1,learning_rate=0.02"]

    def start():
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=subprocess_env(), cwd=ROOT, text=True)

    def wait_ckpt(proc, step):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if all((ckpt_steps(out / n) or [0])[-1] >= step for n in names):
                return
            time.sleep(0.01)
        raise AssertionError(f"no checkpoint >= {step}: {proc.poll()}")

    proc = start()  # SIGTERM: every member saves and is preempted
    wait_ckpt(proc, 20)
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=60)[0]
    assert proc.returncode == EXIT_PREEMPTED, log[-3000:]
    assert "packing 2 points into one program" in log
    stopped = [summary_of(out / n) for n in names]
    assert [s["status"] for s in stopped] == ["preempted"] * 2
    assert stopped[0]["step"] == stopped[1]["step"] == ckpt_steps(out / names[0])[-1]

    proc = start()  # SIGKILL: no goodbye at all
    wait_ckpt(proc, stopped[0]["step"] + 30)
    proc.kill()
    proc.communicate(timeout=60)

    proc = start()
    log = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, log[-3000:]
    for n, point in zip(names, sweep.expand(sweep.load_sweep(exp)), strict=True):
        s = summary_of(out / n)
        assert s["status"] == "done" and s["resumed_from"] >= stopped[0]["step"] + 30
        config = sweep.apply_overrides(sweep.load_experiment(exp).get_config(), point)
        same_run(s, train_and_evaluate(config, str(tmp_path / "alone" / n)))
