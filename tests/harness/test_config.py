"""Config: every bad value is a ConfigError naming its key; the command line turns it
into one line on stderr, exit 2, no traceback and nothing written."""

from __future__ import annotations

import subprocess
import sys

import jax
import ml_collections
import pytest
from conftest import ROOT, experiment_config, run_train, subprocess_env

from gru_jax.harness import config as cfgmod
from gru_jax.harness.config import apply_overrides, base_config, flatten, make_task
from gru_jax.harness.errors import ConfigError
from gru_jax.harness.tasks import TASK_DEFAULTS


def _free(overrides: dict) -> ml_collections.ConfigDict:
    """The base config as a fresh, unlocked, untyped ConfigDict with `overrides` set:
    what a hand-written get_config() may return (ConfigDict's own type checks do
    not stand between a bad value and `validate`)."""
    d = base_config().to_dict()
    for key, value in overrides.items():
        node = d
        *path, leaf = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return ml_collections.ConfigDict(d)


_DELETE = object()


def test_defaults_and_experiment_validate():
    task = make_task(base_config())
    assert task.name == "adding" and task.seq_len == TASK_DEFAULTS["adding"]["seq_len"]
    config = experiment_config()
    assert make_task(config).seq_len == 50
    assert (config.model.cell, config.model.hidden_size) == ("gru", 64)
    for name in TASK_DEFAULTS:  # every task's defaults are a valid config
        if name in ("adding", "copy", "forecast"):  # the others load datasets: test_tasks' job
            assert make_task(base_config(name)).name == name


def test_contract_keys_present():
    keys = set(flatten(base_config()))
    for k in ("model.cell", "model.hidden_size", "model.num_layers", "task.name",
              "task.seq_len", "train.steps", "train.batch_size", "train.learning_rate",
              "train.eval_every", "train.checkpoint_every", "seed"):
        assert k in keys
    assert base_config().model.num_layers == 1


BAD = [
    # (dotted key, value, what the message must say after "KEY: ")
    ("model.hidden_size", -3, "must be a positive int, got -3"),
    ("model.hidden_size", 0, "must be a positive int"),
    ("model.hidden_size", 2.5, "must be a positive int"),
    ("model.hidden_size", True, "must be a positive int"),
    ("model.hidden_size", "64", "must be a positive int"),
    ("model.num_layers", 0, "must be a positive int"),
    ("model.cell", "gruu", "must be one of gru, lstm, mingru, rnn"),
    ("model.variant", "after", "must be one of reset_after, reset_before"),
    ("model.chrono", 1, "must be a bool"),
    ("model.dtype", "float16", "must be one of float32, bfloat16"),
    ("model.remat", 0, "must be False, True or a positive int"),
    ("model.remat", "yes", "must be False, True or a positive int"),
    ("model.unroll", 0, "must be a positive int"),
    ("model.impl", "cuda", "must be one of auto, reference, fused"),
    ("train.steps", 0, "must be a positive int"),
    ("train.steps", -5, "must be a positive int"),
    ("train.batch_size", 0, "must be a positive int"),
    ("train.learning_rate", 0.0, "must be a float > 0"),
    ("train.learning_rate", -1e-3, "must be a float > 0"),
    ("train.learning_rate", float("nan"), "must be a float > 0"),
    ("train.learning_rate", "fast", "must be a float > 0"),
    ("train.optimizer", "sgdd", "must name an optax optimiser"),  # sgd itself is one (optax)
    ("train.weight_decay", -0.1, "must be a float >= 0"),
    ("train.warmup_steps", -1, "must be an int >= 0"),
    ("train.schedule", "linear", "must be one of cosine, constant"),
    ("train.clip_norm", -1.0, "must be a float >= 0"),
    ("train.eval_every", 0, "must be a positive int"),
    ("train.eval_size", 0, "must be a positive int"),
    ("train.checkpoint_every", 0, "must be a positive int"),
    ("train.keep_checkpoints", 0, "must be a positive int"),
    ("train.log_every", 0, "must be a positive int"),
    ("train.progress", "no", "must be a bool"),
    ("seed", -1, "must be an int >= 0"),
    ("task.name", "addition", "unknown task 'addition'"),
    ("task.seq_len", 1, "must be an int >= 2, got 1"),  # the adding task's own minimum
    ("task.seq_len", 2.0, "must be an int"),
    ("task.copy_len", 3, "unknown key for task 'adding'"),
    ("model.foo", 1, "unknown key; model takes cell, chrono"),
    ("train.lr", 1e-3, "unknown key; train takes batch_size"),
    ("foo", 1, "unknown key; the config takes model, seed, task, train"),
    ("model.cell", _DELETE, "missing"),
]


@pytest.mark.parametrize("key, value, says", BAD, ids=[
    f"{k}={'<deleted>' if v is _DELETE else repr(v)}" for k, v, _ in BAD])
def test_bad_value_names_the_key(key, value, says):
    with pytest.raises(ConfigError) as e:
        make_task(_free({key: value}))
    msg = str(e.value)
    assert msg.startswith(f"{key}: "), msg
    assert says in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("overrides, key, says", [
    ({"model.cell": "rnn", "model.chrono": True}, "model.chrono", "only for cell gru or lstm"),
    ({"model.cell": "mingru", "model.chrono": True}, "model.chrono", "only for cell gru or lstm"),
    ({"model.cell": "lstm", "model.impl": "fused"}, "model.impl", "needs model.cell=gru"),
    ({"model.variant": "reset_before", "model.impl": "fused"}, "model.impl", "reset_after"),
    ({"task.name": "copy", "task.num_symbols": 1}, "task.num_symbols", "must be an int >= 2"),
])
def test_options_that_do_not_combine(overrides, key, says):
    with pytest.raises(ConfigError, match=rf"^{key}: .*{says}"):
        make_task(_free(overrides))


def test_batch_must_split_over_devices(monkeypatch):
    monkeypatch.setattr(jax, "device_count", lambda: 3)
    with pytest.raises(ConfigError, match=r"^train\.batch_size: must be divisible by the 3 "
                                          r"devices, got 64$"):
        make_task(base_config())
    make_task(_free({"train.batch_size": 63}))  # 63 = 3 * 21


def test_good_variants_pass():
    for overrides in ({"model.cell": "lstm", "model.chrono": True},
                      {"model.remat": True}, {"model.remat": 5}, {"model.dtype": "bfloat16"},
                      {"model.variant": "reset_before", "model.impl": "reference"},
                      {"train.schedule": "constant", "train.warmup_steps": 0},
                      {"train.learning_rate": 1}):  # an int is a fine float
        make_task(_free(overrides))


def test_apply_overrides():
    c = apply_overrides(base_config(), {"model.cell": "lstm", "train.learning_rate": 3e-3,
                                        "model.remat": 8})
    assert (c.model.cell, c.train.learning_rate, c.model.remat) == ("lstm", 3e-3, 8)
    assert base_config().model.cell == "gru"  # a copy: the input is untouched
    c = apply_overrides(base_config(), {"task.name": "copy", "task.copy_len": 5})
    assert c.task.to_dict() == {**TASK_DEFAULTS["copy"], "name": "copy", "copy_len": 5}
    make_task(c)
    with pytest.raises(ConfigError, match=r"^model\.foo: unknown key; model takes cell"):
        apply_overrides(base_config(), {"model.foo": 1})
    with pytest.raises(ConfigError, match=r"^nope: unknown key; the config takes model, seed"):
        apply_overrides(base_config(), {"nope.x": 1})
    with pytest.raises(ConfigError, match=r"^model\.hidden_size: must be an int, got 'big'"):
        apply_overrides(base_config(), {"model.hidden_size": "big"})


def test_resolved_fills_task_defaults():
    c = _free({"task.name": "copy"})
    del c.task["seq_len"]
    r = cfgmod.resolved(c)
    assert r.task.to_dict() == {"name": "copy", **TASK_DEFAULTS["copy"]}


# --- the command line -------------------------------------------------------------------

CLI_BAD = [
    # argv overrides, the line stderr must hold
    (["--config.model.foo=3"], "error: model.foo: unknown key; model takes cell, chrono"),
    (["--config.model.hidden_size=-3"], "error: model.hidden_size: must be a positive int, got -3"),
    (["--config.train.learning_rate=abc"],
     "error: train.learning_rate: must be a float, got 'abc'"),
]


@pytest.mark.parametrize("args, line", CLI_BAD, ids=[a[0] for a, _ in CLI_BAD])
def test_cli_bad_config_one_line(tmp_path, args, line):
    workdir = tmp_path / "run"
    overrides = dict(a[len("--config."):].split("=", 1) for a in args)
    proc = run_train(workdir, overrides, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(line), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not workdir.exists()


def test_schema_gives_the_defaults_and_the_checks():
    from gru_jax.harness.config import SCHEMA

    flat = flatten(base_config())
    assert {k.name for k in SCHEMA} == {k for k in flat if not k.startswith("task.")}
    for k in SCHEMA:
        assert flat[k.name] == k.default and k.check(k.default) is None, k.name


def test_validate_builds_nothing_and_starts_no_backend():
    # mnist1d's maker would load its data set; validate must not, nor start JAX.
    code = """
import sys
from gru_jax.harness.config import base_config, validate
validate(base_config("mnist1d"))
from jax._src import xla_bridge
assert not xla_bridge._backends, xla_bridge._backends
assert "mnist1d.data" not in sys.modules and "sklearn" not in sys.modules
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, env=subprocess_env(), timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]


@pytest.mark.parametrize("flag", ["--help", "--print_config"])
def test_train_help_lists_every_key_with_default_and_allowed(flag):
    from gru_jax.harness.config import SCHEMA

    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), flag],
                       capture_output=True, text=True, cwd=ROOT, env=subprocess_env(),
                       timeout=120)
    assert p.returncode == (1 if flag == "--help" else 0), p.stderr[-2000:]  # absl: 1
    text = " ".join(p.stdout.split())  # absl wraps long help lines
    assert "model.hidden_size=64 (int > 0)" in text
    assert "model.cell='gru' (gru | lstm | mingru | rnn)" in text
    for k in SCHEMA:
        assert f"{k.name}={k.default!r} ({k.allows})" in text, k.name
