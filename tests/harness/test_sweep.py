"""gru_jax.harness.sweep: grid expansion, point names, resumable runs on the Optuna queue.

A fake trainer writes summary.json, so these tests need neither JAX nor the
real trainer (one end-to-end test at the bottom uses it when it exists).
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sweep_fakes import FakeTrainer, base_config, no_validate

from gru_jax.harness import sweep
from gru_jax.harness.errors import ConfigError
from gru_jax.harness.sweep import points as points_mod

ROOT = Path(__file__).resolve().parents[2]

SWEEP = sweep.grid({"model.cell": ["gru", "lstm"], "model.hidden_size": [8, 16],
                    "task.seq_len": [10, 20]})


def test_grid_is_the_full_product_in_order():
    assert len(SWEEP) == 8
    assert SWEEP[0] == {"model.cell": "gru", "model.hidden_size": 8, "task.seq_len": 10}
    assert SWEEP[1] == {"model.cell": "gru", "model.hidden_size": 8, "task.seq_len": 20}
    assert SWEEP[-1] == {"model.cell": "lstm", "model.hidden_size": 16, "task.seq_len": 20}
    assert sweep.expand(SWEEP, base_config(), no_validate) == SWEEP
    assert sweep.expand(None) == [{}]  # no get_sweep: the base config, once


def test_apply_overrides_sets_copies_and_keeps_types():
    base = base_config()
    cfg = sweep.apply_overrides(base, {"model.cell": "lstm", "train.learning_rate": 1})
    assert cfg.model.cell == "lstm" and cfg.train.learning_rate == 1.0
    assert base.model.cell == "gru"  # the base config is left alone


@pytest.mark.parametrize("point, match", [
    ({"model.hiden_size": 8}, r"model\.hiden_size: unknown"),
    ({"modle.cell": "gru"}, r"modle(\.cell)?: unknown"),
    ({"model.cell.x": 1}, r"model\.cell\.x: unknown"),
    ({"model.hidden_size": "big"}, r"model\.hidden_size: .*int"),
    ({"model": "gru"}, r"model: "),
    ({"model.cell": {"a": 1}}, r"model\.cell: a sweep value must be"),
    ({"": 1}, r"bad key"),
])
def test_expand_names_the_bad_key(point, match):
    with pytest.raises(ConfigError, match=r"sweep point 1\b.*" + match):
        sweep.expand([{"model.cell": "gru"}, point], base_config(), no_validate)


def test_points_are_validated_by_default():
    config = pytest.importorskip("gru_jax.harness.config")
    with pytest.raises(ConfigError, match=r"sweep point 0 \(cell=nope\): model\.cell"):
        sweep.expand([{"model.cell": "nope"}], config.base_config())
    calls = []
    sweep.expand([{"model.cell": "lstm"}], base_config(), calls.append)
    assert calls[0].model.cell == "lstm"


@pytest.mark.parametrize("bad, match", [
    ([], "no points"),
    ({"model.cell": ["gru"]}, "list of dicts"),
    (["gru"], "sweep point 0: must be a dict"),
    ([{"model.cell": "gru"}, {"model.cell": "gru"}], "same overrides as point 0"),
])
def test_expand_rejects_malformed_sweeps(bad, match):
    with pytest.raises(ConfigError, match=match):
        sweep.expand(bad, base_config(), no_validate)


# ---------------------------------------------------------------- names


def test_point_names_are_readable_deterministic_and_order_free():
    assert sweep.point_name({"model.cell": "gru", "model.hidden_size": 64,
                             "task.seq_len": 50}) == "cell=gru,hidden_size=64,seq_len=50"
    assert sweep.point_name({"task.seq_len": 50, "model.cell": "gru"}) == \
        sweep.point_name({"model.cell": "gru", "task.seq_len": 50})
    assert sweep.point_name({"train.learning_rate": 0.001}) == "learning_rate=0.001"
    assert sweep.point_name({}) == "base"
    # the same leaf name under two groups keeps the full keys
    assert sweep.point_name({"model.dropout": 0.1, "train.dropout": 0.2}) == \
        "model.dropout=0.1,train.dropout=0.2"


def test_point_names_unique_and_filesystem_safe(tmp_path):
    points = SWEEP + [
        {"task.name": "a/b"}, {"task.name": "a_b"}, {"task.name": "a b"},  # '/', ' ' -> hash
        {"model.cell": "gru", "train.learning_rate": 1e-5, "seed": 3},
        {"model.cell": "x" * 300},  # long -> truncated + hash
        {"model.cell": "x" * 299},
        {"model.cell": "../../etc"},
        {"model.cell": "gru", "encoder.cell": "gru"},  # hypothetical clashing leaves
    ]
    names = sweep.point_names(points)
    assert len(set(names)) == len(points)
    assert names == sweep.point_names(points)  # deterministic
    for name in names:
        assert len(name) <= sweep.MAX_NAME
        assert set(name) <= set(points_mod._SAFE) | {",", "="}, name
        assert name not in (".", "..") and not name.startswith(".")
        (tmp_path / name).mkdir()  # really a folder name


def test_point_names_disambiguate_equal_short_names():
    names = sweep.point_names([{"model.cell": "gru"}, {"encoder.cell": "gru"}])
    assert names[0] != names[1] and all(n.startswith("cell=gru-") for n in names)


# ---------------------------------------------------------------- shards


def run(workdir, train, points=SWEEP):
    return sweep.run_sweep(base_config(), points, workdir, train_fn=train,
                           validate=no_validate, progress=False, log=lambda msg: None,
                           poll=0.05)


def test_run_sweep_runs_each_point_in_its_folder_and_writes_sweep_json(tmp_path):
    train = FakeTrainer()
    results = run(tmp_path, train)
    names = sweep.point_names(SWEEP)
    assert [r["name"] for r in results] == names
    assert sorted(train.calls) == sorted(str(tmp_path / n) for n in names)
    assert all(r["status"] == "done" and r["action"] == "ran" for r in results)
    for r in results:  # each point got its own overrides
        cfg = json.loads((Path(r["dir"]) / "summary.json").read_text())["config"]
        assert cfg["model"]["cell"] == r["overrides"]["model.cell"]
        assert cfg["task"]["seq_len"] == r["overrides"]["task.seq_len"]
    grid = json.loads((tmp_path / "sweep.json").read_text())
    assert grid["num_points"] == 8
    assert [p["name"] for p in grid["points"]] == names
    assert grid["points"][3]["overrides"] == SWEEP[3]


def test_finished_points_are_not_run_again(tmp_path):
    run(tmp_path, FakeTrainer())
    # a diverged run is finished too
    diverged = tmp_path / sweep.point_names(SWEEP)[0] / "summary.json"
    diverged.write_text(json.dumps({"status": "diverged", "diverged_at": 5}))
    again = FakeTrainer()
    results = run(tmp_path, again)
    assert again.calls == []
    assert all(r["action"] == "skipped" for r in results)
    assert results[0]["status"] == "diverged"


def test_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    train = FakeTrainer(fail={"lstm"})
    results = run(tmp_path, train)
    assert len(train.calls) == 8  # every point was tried
    by_cell = {}
    for r in results:
        by_cell.setdefault(r["overrides"]["model.cell"], set()).add(r["status"])
    assert by_cell == {"gru": {"done"}, "lstm": {"failed"}}
    failed = [r for r in results if r["status"] == "failed"][0]
    on_disk = json.loads((Path(failed["dir"]) / "summary.json").read_text())
    assert on_disk["status"] == "failed"
    assert on_disk["error"] == "RuntimeError: boom in lstm"
    assert "Traceback" in on_disk["traceback"]
    assert on_disk["config"]["model"]["cell"] == "lstm"
    # failed points are tried again next time, finished ones are not
    retry = FakeTrainer()
    results = run(tmp_path, retry)
    assert len(retry.calls) == 4 and all("cell=lstm" in c for c in retry.calls)
    assert all(r["status"] == "done" for r in results)


def test_trainers_own_failed_summary_is_kept(tmp_path):
    def train(config, workdir):
        (Path(workdir) / "summary.json").write_text(
            json.dumps({"status": "failed", "error": "ConfigError: from the trainer", "step": 3}))
        raise ValueError("ignored")

    (r,) = run(tmp_path, train, points=[{"model.cell": "gru"}])
    assert r["status"] == "failed" and r["summary"].error == "ConfigError: from the trainer"


def test_preempted_point_stops_the_worker_and_resumes_in_the_same_folder(tmp_path):
    points = [{"model.cell": "lstm"}, {"model.cell": "gru"}]
    train = FakeTrainer(preempt={"lstm"})
    results = run(tmp_path, train, points=points)
    assert [r["status"] for r in results] == ["preempted", "waiting"]  # gru not started
    results = run(tmp_path, train, points=points)
    assert [r["status"] for r in results] == ["done", "done"]
    assert train.calls.count(str(tmp_path / "cell=lstm")) == 2  # same workdir: resumed


@pytest.mark.parametrize("pack, pays, groups", [
    (None, True, [3, 1]),  # the default: packs where packing_pays says so...
    (None, False, [1, 1, 1, 1]),  # ...and runs one by one where it does not
    (True, False, [3, 1]),  # --pack wins
    (False, True, [1, 1, 1, 1]),  # --nopack wins
])
def test_packing_by_default_follows_packing_pays(tmp_path, monkeypatch, pack, pays, groups):
    from gru_jax.harness.sweep import worker

    asked = []

    def fake_pays(config, n):
        asked.append((config.model.hidden_size, config.train.batch_size, n))
        return pays

    monkeypatch.setattr(worker, "packing_pays_for", fake_pays)
    train, sizes = FakeTrainer(), []

    def pack_fn(configs, workdirs):
        sizes.append(len(configs))
        return [train(c, w) for c, w in zip(configs, workdirs, strict=True)]

    points = [{"seed": s} for s in range(3)] + [{"model.cell": "lstm"}]
    results = sweep.run_sweep(base_config(), points, tmp_path, train_fn=train, pack=pack,
                              pack_fn=pack_fn, validate=no_validate, progress=False,
                              log=lambda msg: None, poll=0.05)
    assert [r["status"] for r in results] == ["done"] * 4
    assert sorted(sizes + [1] * (len(train.calls) - sum(sizes)), reverse=True) == groups
    assert bool(asked) == (pack is None) and all(a[:2] == (8, 4) for a in asked)


def test_a_pack_gathers_its_points_from_anywhere_in_the_queue(tmp_path):
    """An adaptive source enqueues the seeds of one program apart: a worker still
    packs them (and only them)."""
    train, packs = FakeTrainer(), []

    def pack_fn(configs, workdirs):
        packs.append(sorted((c.model.cell, c.seed) for c in configs))
        return [train(c, w) for c, w in zip(configs, workdirs, strict=True)]

    points = [{"seed": 0}, {"model.cell": "lstm"}, {"seed": 1},
              {"model.cell": "lstm", "seed": 1}, {"seed": 2}]
    results = sweep.run_sweep(base_config(), points, tmp_path, train_fn=train, pack=True,
                              pack_fn=pack_fn, validate=no_validate, progress=False,
                              log=lambda msg: None, poll=0.05)
    assert [r["status"] for r in results] == ["done"] * 5
    assert packs == [[("gru", 0), ("gru", 1), ("gru", 2)], [("lstm", 0), ("lstm", 1)]]


def test_a_signal_that_ends_a_pack_fails_none_of_its_members(tmp_path):
    """A stop signal ends a packed group: the member that finished at that step keeps
    its final summary, the one it preempted and the one not reached yet (members run
    one after another) go back in the queue; none is recorded as failed."""
    from gru_jax.harness.train import Preempted

    train, signalled = FakeTrainer(), []

    def pack_fn(configs, workdirs):
        if signalled:
            return [train(c, w) for c, w in zip(configs, workdirs, strict=True)]
        signalled.append(True)
        train(configs[0], workdirs[0])  # solved at the step the signal came
        (Path(workdirs[1]) / "summary.json").write_text(json.dumps(
            {"status": "preempted", "step": 10, "config": configs[1].to_dict()}))
        raise Preempted("preempted at step 10; run the same command to resume")

    def sweep_once():
        return sweep.run_sweep(base_config(), [{"seed": s} for s in range(3)], tmp_path,
                               train_fn=train, pack=True, pack_fn=pack_fn,
                               validate=no_validate, progress=False, log=lambda msg: None,
                               poll=0.05)

    first = sweep_once()
    assert [r["status"] for r in first] == ["done", "preempted", "preempted"]
    assert json.loads((tmp_path / "seed=0" / "summary.json").read_text())["status"] == "done"
    assert [r["status"] for r in sweep_once()] == ["done"] * 3
    assert train.calls.count(str(tmp_path / "seed=0")) == 1  # not trained again


def test_packing_by_default_needs_a_packed_trainer(tmp_path, monkeypatch):
    """A custom train_fn without a pack_fn has no packed version: the default
    runs it one by one even where packing pays."""
    from gru_jax.harness.sweep import worker

    monkeypatch.setattr(worker, "packing_pays_for", lambda config, n: True)
    train = FakeTrainer()
    run(tmp_path, train, points=[{"seed": s} for s in range(3)])
    assert len(train.calls) == 3


def test_packing_pays_for_reads_the_configs_hidden_size_and_batch():
    from gru_jax.fused import packing_pays
    from gru_jax.harness.sweep.worker import packing_pays_for

    c = base_config()  # hidden 8, batch 4
    assert packing_pays_for(c, 8) == packing_pays(None, 8, 4, 8)
    assert not packing_pays_for(c, 1)


def test_concurrent_runners_never_run_a_point_twice(tmp_path):
    train = FakeTrainer(sleep=0.05)
    threads = [threading.Thread(target=run, args=(tmp_path, train)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(train.calls) == sorted(str(tmp_path / n) for n in sweep.point_names(SWEEP))


def test_two_launchers_enqueue_a_point_once_and_duplicates_are_dropped(tmp_path):
    """Enqueue is idempotent by the point's identity; a copy enqueued in a race (here:
    by hand) is dropped by the worker that claims it, so the point trains once."""
    from gru_jax.harness.sweep import queue

    source = sweep.FixedSource(SWEEP[:2])
    study = sweep.open_sweep(base_config(), source, tmp_path, validate=no_validate)
    sweep.open_sweep(base_config(), source, tmp_path, validate=no_validate)
    assert len(study.trials) == 2
    study.enqueue_trial({}, user_attrs=dict(study.trials[0].user_attrs))  # the race's copy
    train = FakeTrainer()
    run(tmp_path, train, points=SWEEP[:2])
    assert sorted(train.calls) == sorted(str(tmp_path / n) for n in sweep.point_names(SWEEP[:2]))
    dropped = [t for t in study.get_trials() if queue.DUPLICATE_ATTR in t.user_attrs]
    assert [t.user_attrs[queue.DUPLICATE_ATTR] for t in dropped] == [0]
    assert queue.counts(study) == {"waiting": 0, "running": 0, "done": 2, "failed": 0}
    assert sweep.status(tmp_path).endswith("2 points: 0 waiting, 0 running, 2 done, 0 failed")


def test_a_point_source_extends_the_sweep_from_finished_points(tmp_path):
    """get_source's interface: next() sees every finished (point, summary) and its new
    points are enqueued; a point may reuse an earlier point's folder (workdir key)."""

    class Doubling:
        def initial(self):
            return [{"task.seq_len": 10}]

        def next(self, finished):
            self.seen = sorted(p["task.seq_len"] for p, s in finished if s["status"] == "done")
            top = max(self.seen)
            return [{"task.seq_len": 2 * top}] if top < 40 else [
                {"task.seq_len": 40, "train.steps": 30, "workdir": "seq_len=40"}]

    source = Doubling()
    train = FakeTrainer()
    results = sweep.run_sweep(base_config(), None, tmp_path, train, source=source,
                              validate=no_validate, log=lambda m: None, poll=0.05)
    assert [Path(c).name for c in train.calls] == [
        "seq_len=10", "seq_len=20", "seq_len=40", "seq_len=40"]
    assert source.seen == [10, 20, 40, 40]
    assert [r["action"] for r in results] == ["ran"] * 4
    summary = json.loads((tmp_path / "seq_len=40" / "summary.json").read_text())
    assert summary["step"] == 30  # the second point resumed the first one's folder


# ---------------------------------------------------------------- command line


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "sweep.py"), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    exp = tmp_path / "exp.py"
    exp.write_text(
        "import ml_collections\n"
        "def get_config():\n"
        "    return ml_collections.ConfigDict({'model': {'cell': 'gru', 'hidden_size': 8}})\n"
        "def get_sweep():\n"
        "    return [{'model.cell': 'gru'}, {'model.hidden_sise': 4}]\n"
    )
    for args, expected in [
        ([f"--config={exp}", f"--workdir={tmp_path}/w", "--workers=0"], "workers"),
        ([f"--workdir={tmp_path}/w", "--status", "--storage=mysql"], "--storage"),
        ([f"--workdir={tmp_path}/w", "--status"], "no sweep there"),
        ([f"--config={exp}", f"--workdir={tmp_path}/w", "--config.model.cel=x"],
         "model.cel: unknown key"),
        ([f"--config={exp}", f"--workdir={tmp_path}/w"],
         "sweep point 1 (hidden_sise=4): model.hidden_sise: unknown"),
    ]:
        p = _cli(*args)
        assert p.returncode == 2, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
        assert expected in p.stderr, p.stderr
    assert not (tmp_path / "w").exists()  # nothing started


# ---------------------------------------------------------------- end to end


def test_end_to_end_with_the_real_trainer(tmp_path):
    """Two tiny points through gru_jax.harness.train, then the report."""
    pytest.importorskip("gru_jax.harness.train", reason="trainer not written yet")
    experiment = ROOT / "experiments" / "adding.py"
    if not experiment.exists():
        pytest.skip("experiments/adding.py not written yet")
    from gru_jax.harness import report

    config = sweep.load_experiment(experiment).get_config()
    tiny = {"model.hidden_size": 4, "task.seq_len": 5, "train.steps": 2,
            "train.batch_size": 8, "train.eval_every": 2, "train.checkpoint_every": 2,
            "train.eval_size": 16, "train.progress": False}
    config = sweep.apply_overrides(config, tiny)
    points = [{"model.cell": "rnn"}]
    (result,) = sweep.run_sweep(config, points, tmp_path, progress=False)
    assert result["status"] == "done", result["summary"].error
    assert (tmp_path / "cell=rnn" / "summary.json").exists()
    (again,) = sweep.run_sweep(config, points, tmp_path, progress=False)
    assert again["action"] == "skipped"
    text = report.write_report(tmp_path)
    assert "| rnn |" in text and (tmp_path / "results.csv").exists()
