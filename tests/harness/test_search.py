"""gru_jax.harness.search: space mapping, random search and WOA proposers, the resumable driver.

Most tests train nothing: a fake train_fn writes summary.json with an analytic
score of the overrides. One test at the bottom runs the real trainer on two
tiny candidates.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gru_jax.harness import files, search, sweep
from gru_jax.harness.errors import ConfigError, WorkdirError

ROOT = Path(__file__).resolve().parents[2]

SPACE = {
    "train.learning_rate": (1e-4, 1e-1, "log", float),
    "model.hidden_size": (8, 64, "log", int),
    "train.clip_norm": (0.1, 10.0, "log", float),
}
OPTIMUM = {"train.learning_rate": 1e-2, "model.hidden_size": 32, "train.clip_norm": 1.0}


def fake_mse(config) -> float:
    """A smooth bowl in log space, minimum 0.001 at OPTIMUM."""
    d2 = sum((math.log10(float(_get(config, k))) - math.log10(v)) ** 2
             for k, v in OPTIMUM.items())
    return 0.001 + 0.05 * d2


def _get(config, key):
    node = config
    for part in key.split("."):
        node = node[part]
    return node


class FakeTrainer:
    """Writes a done summary.json scoring fake_mse; `fail(config)` true -> raises."""

    def __init__(self, fail=lambda config: False, metric="mse"):
        self.calls: list[str] = []
        self.fail, self.metric = fail, metric

    def __call__(self, config, workdir):
        self.calls.append(Path(workdir).name)
        if self.fail(config):
            raise RuntimeError("boom")
        value = fake_mse(config)
        if self.metric == "accuracy":
            value = 1.0 - value
        summary = {"status": "done", "step": config.train.steps,
                   "final": {self.metric: value, "loss": value},
                   "task": {"metric": self.metric}, "config": config.to_dict()}
        (Path(workdir) / "summary.json").write_text(json.dumps(summary))
        return summary


@pytest.fixture
def config():
    from gru_jax.harness.config import apply_overrides, base_config

    return apply_overrides(base_config("adding"), {"train.steps": 100})


def quiet(msg):
    pass


def journal(workdir) -> str:
    """Optuna's journal file in the search folder: the fake-trainer tests' storage
    (5-10x faster than SQLite's commits on a slow disk; the golden test below and
    the real-trainer test use the default SQLite file)."""
    return f"journal:{Path(workdir) / 'journal.log'}"


def run(config, workdir, trainer, **kw):
    kw = {"method": "woa", "budget": 12, "population": 4, "seed": 0,
          "storage": journal(workdir), **kw}
    return search.run_search(config, workdir, SPACE, train_fn=trainer, log=quiet, **kw)


# ---------------------------------------------------------------- space


def test_unit_cube_round_trips_and_clips():
    space = search.make_space(SPACE)
    for u in np.random.default_rng(0).random((50, 3)):
        ov = search.from_unit(space, u)
        assert 1e-4 <= ov["train.learning_rate"] <= 1e-1
        assert isinstance(ov["model.hidden_size"], int) and 8 <= ov["model.hidden_size"] <= 64
        # values -> unit -> values is exact (floats are kept to 3 significant digits)
        assert search.from_unit(space, search.to_unit(space, ov)) == ov
        # unit -> values -> unit: within the rounding (an int's step is
        # log(9/8) / log(64/8) = 0.057 of the cube at its low end)
        assert np.allclose(search.to_unit(space, ov)[[0, 2]], u[[0, 2]], atol=0.005)
        assert abs(search.to_unit(space, ov)[1] - u[1]) <= 0.03
    assert search.from_unit(space, [0, 0, 0]) == {
        "train.learning_rate": 1e-4, "model.hidden_size": 8, "train.clip_norm": 0.1}
    assert search.from_unit(space, [1, 1, 1]) == {
        "train.learning_rate": 0.1, "model.hidden_size": 64, "train.clip_norm": 10.0}
    # outside the cube or the bounds: clipped
    assert search.from_unit(space, [-3, 7, 0.5])["model.hidden_size"] == 64
    assert search.from_unit(space, [-3, 7, 0.5])["train.learning_rate"] == 1e-4
    u = search.to_unit(space, {"train.learning_rate": 5.0, "model.hidden_size": 2,
                               "train.clip_norm": 1.0})
    assert u[0] == 1.0 and u[1] == 0.0 and u[2] == pytest.approx(0.5)
    lin = search.make_space({"x.y": (0, 10, "linear", int)})
    assert search.from_unit(lin, [0.55]) == {"x.y": 6}


@pytest.mark.parametrize("spec, words", [
    ({"a.b": (1, 1)}, "low < high"),
    ({"a.b": (0, 1, "log")}, "low > 0"),
    ({"a.b": (1, 2, "cubic")}, "log or linear"),
    ({"a.b": (1, 2, "log", str)}, "int or float"),
    ({"a..b": (1, 2)}, "bad key"),
    ({}, "no keys"),
])
def test_bad_space_is_one_clear_error(spec, words):
    with pytest.raises(ConfigError, match=words):
        search.make_space(spec)


# ---------------------------------------------------------------- proposers


def test_proposals_reproducible_from_the_seed():
    def proposals(method, seed):
        p = search.make_proposer(method, 3, 5, 4, seed)
        out = []
        for _ in range(4):
            x = p.ask(5)
            out.append(x)
            p.tell(x, np.sum((x - 0.3) ** 2, axis=1))
        return np.concatenate(out)

    for method in search.PROPOSERS:
        assert np.array_equal(proposals(method, 3), proposals(method, 3))
        assert not np.array_equal(proposals(method, 3), proposals(method, 4))
        assert proposals(method, 3).min() >= 0 and proposals(method, 3).max() <= 1
    # same seed: WOA's initial population is random search's first generation
    assert np.array_equal(proposals("woa", 3)[:5], proposals("random", 3)[:5])


def test_woa_a_falls_linearly_from_2():
    assert [search.woa_a(g, 4) for g in range(5)] == [2.0, 1.5, 1.0, 0.5, 0.0]


def test_woa_update_branches():
    """a = 0: A = 0, so every whale lands on the leader or spirals around it;
    a whale at the leader stays there."""
    rng = np.random.default_rng(0)
    leader = np.array([0.5, 0.5])
    x = rng.random((200, 2))
    new = search.woa_update(x, leader, 0.0, np.random.default_rng(1))
    dist_old = np.linalg.norm(x - leader, axis=1)
    dist_new = np.linalg.norm(new - leader, axis=1)
    # encircling with A = 0 is X* exactly; the spiral scales |X* - X| by e^l |cos 2 pi l| <= e
    assert np.isclose(dist_new, 0).mean() > 0.3
    assert np.all(dist_new <= math.e * dist_old + 1e-12)
    assert np.allclose(search.woa_update(np.tile(leader, (5, 1)), leader, 1.0, rng), leader)
    # a = 2: |A| >= 1 happens, moves reach beyond the leader's neighbourhood, stay in the cube
    far = search.woa_update(x, leader, 2.0, np.random.default_rng(2))
    assert far.min() >= 0 and far.max() <= 1


def _sphere(x):
    return np.sum((x - 0.7) ** 2, axis=1)


def test_woa_converges_on_an_analytic_function():
    """Over 20 seeds (10 whales, 15 generations, a 4-d bowl off the centre), WOA's
    best is typically >10x better than the best of its initial population and
    beats random search with the same 150 evaluations in most seeds.

    (On a bowl centred in the cube WOA is only on a par with random search at
    this budget: its C X* term pulls towards the origin of the coordinates.)"""
    gain, woa_best, rnd_best = [], [], []
    for seed in range(20):
        p = search.WhaleSearch(4, 10, 15, seed)
        first = None
        for _ in range(15):
            x = p.ask()
            f = _sphere(x)
            first = f.min() if first is None else first
            p.tell(x, f)
        gain.append(p.best_score / first)
        woa_best.append(p.best_score)
        r = search.RandomSearch(4, seed)
        x = r.ask(150)
        r.tell(x, _sphere(x))
        rnd_best.append(r.best_score)
    gain = np.array(gain)
    assert np.median(gain) < 0.1 and np.mean(gain < 0.5) >= 0.8
    assert np.median(woa_best) < 0.5 * np.median(rnd_best)
    assert np.mean(np.array(woa_best) < np.array(rnd_best)) >= 0.7


# ---------------------------------------------------------------- driver


def test_search_respects_the_budget(tmp_path, config):
    """`budget` distinct runs, never more trainings; repeats of a run are free."""
    cases = {m: ((7, 3), (1, 4), (8, 8), (13, 4)) for m in search.PROPOSERS}
    cases.update(tpe=((7, 3),), cmaes=((1, 4), (5, 2)))  # Optuna's samplers, fewer (time)
    assert set(cases) == set(search.SAMPLERS)
    for method, sizes in cases.items():
        for budget, population in sizes:
            trainer = FakeTrainer()
            log = run(config, tmp_path / f"{method}{budget}", trainer, method=method,
                      budget=budget, population=population)
            names = [c["name"] for c in log["candidates"]]
            assert len(set(names)) == budget
            assert len(trainer.calls) == len(set(trainer.calls)) == budget
            assert sum(c["trained"] for c in log["candidates"]) == budget
            per_gen = np.bincount([c["generation"] for c in log["candidates"]])
            assert per_gen.max() <= population
    # in train steps: 1050 steps at train.steps = 100 is 10 runs
    trainer = FakeTrainer()
    log = search.run_search(config, tmp_path / "steps", SPACE, "random", population=4,
                            budget_steps=1050, train_fn=trainer, log=quiet,
                            storage=journal(tmp_path / "steps"))
    assert len(trainer.calls) == 10 and len(log["candidates"]) == 10
    assert log["steps"] * len(trainer.calls) <= 1050


def test_repeated_proposals_are_free(tmp_path, config):
    """A space with only 3 points: WOA repeats itself, trains each point once and
    stops at the generation cap instead of looping."""
    space = {"model.hidden_size": (8, 10, "linear", int)}
    trainer = FakeTrainer()
    log = search.run_search(config, tmp_path, space, "woa", budget=5, population=4,
                            train_fn=trainer, log=quiet, storage=journal(tmp_path))
    assert sorted(trainer.calls) == sorted(set(trainer.calls)) and len(trainer.calls) == 3
    assert len({c["name"] for c in log["candidates"]}) == 3
    assert log["status"] == "done"
    assert max(c["generation"] for c in log["candidates"]) < \
        search.MAX_GENERATIONS_FACTOR * math.ceil(5 / 4)


def test_search_log_and_best(tmp_path, config):
    log = run(config, tmp_path, FakeTrainer())
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["status"] == "done" and saved["metric"] == "mse" and saved["mode"] == "min"
    assert saved["candidates"] == json.loads(json.dumps(log["candidates"]))
    best = min(log["candidates"], key=lambda c: c["score"])
    assert log["best"]["index"] == best["index"]
    for c in log["candidates"]:
        run_dir = tmp_path / c["name"]
        assert c["name"] == sweep.point_name(c["overrides"])
        assert json.loads((run_dir / "summary.json").read_text())["final"]["mse"] == c["value"]
    # search.json lists every candidate's run, so scripts/report.py reads the folder
    # (and no sweep.json pretends the search was a sweep)
    assert set(files.planned_runs(tmp_path)) == {c["name"] for c in log["candidates"]}
    assert not (tmp_path / files.SWEEP_FILE).exists()
    table = search.format_table(log, top=3)
    assert table.count("\n") == 4 and "learning_rate" in table and "mse" in table
    other = run(config, tmp_path / "random", FakeTrainer(), method="random")
    summary = search.compare([tmp_path, tmp_path / "random"])
    rows = summary.splitlines()
    assert rows[2].startswith("| woa | 0 | ") and rows[2].split(" | ")[3] == "12"
    assert rows[3].startswith("| random | 0 | 12 | 12 |") and "| random | 1 |" in summary
    assert f"{other['best']['value']:.4g}" in summary


def test_accuracy_is_maximised(tmp_path, config):
    log = run(config, tmp_path, FakeTrainer(metric="accuracy"), method="random")
    assert log["mode"] == "max"
    assert log["best"]["value"] == max(c["value"] for c in log["candidates"])


def test_woa_search_improves_on_its_first_generation(tmp_path, config):
    log = run(config, tmp_path, FakeTrainer(), budget=40, population=8, seed=1)
    first = min(c["value"] for c in log["candidates"] if c["generation"] == 0)
    assert log["best"]["value"] < first


def test_search_is_reproducible_and_resumes(tmp_path, config):
    trainer = FakeTrainer()
    full = run(config, tmp_path / "a", trainer)
    assert run(config, tmp_path / "b", FakeTrainer())["candidates"] == full["candidates"]

    # Interrupted after 5 trainings (KeyboardInterrupt, as Ctrl-C would), then resumed.
    class Interrupt(FakeTrainer):
        def __call__(self, config, workdir):
            if len(self.calls) == 5:
                raise KeyboardInterrupt
            return super().__call__(config, workdir)

    first = Interrupt()
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "c", first)
    assert not (tmp_path / "c" / search.SEARCH_LOCK).exists()  # released
    second = FakeTrainer()
    resumed = run(config, tmp_path / "c", second)
    strip = [{k: v for k, v in c.items() if k != "trained"} for c in resumed["candidates"]]
    assert strip == [{k: v for k, v in c.items() if k != "trained"}
                     for c in full["candidates"]]
    assert not set(second.calls) & set(first.calls[:5])  # finished ones were reused
    assert len(first.calls[:5]) + len(second.calls) == len(trainer.calls) == 12
    # started again when done: nothing is trained, same result
    third = FakeTrainer()
    again = run(config, tmp_path / "c", third)
    assert third.calls == [] and again["best"] == resumed["best"]
    assert not any(c["trained"] for c in again["candidates"])
    # a different search in the same folder is refused
    with pytest.raises(WorkdirError, match="different search"):
        run(config, tmp_path / "c", FakeTrainer(), seed=5)
    from gru_jax.harness.config import apply_overrides

    with pytest.raises(WorkdirError, match="task.seq_len"):
        run(apply_overrides(config, {"task.seq_len": 7}), tmp_path / "c", FakeTrainer())


def test_failed_candidate_does_not_stop_the_search(tmp_path, config):
    trainer = FakeTrainer(fail=lambda c: c.model.hidden_size > 30)
    log = run(config, tmp_path, trainer, method="random", budget=10)
    failed = [c for c in log["candidates"] if c["status"] == "failed"]
    assert failed and len(log["candidates"]) == 10 == len(trainer.calls)
    assert all(c["score"] is None and c["value"] is None for c in failed)
    assert log["best"]["status"] == "done"
    assert all(c["overrides"]["model.hidden_size"] <= 30 for c in log["candidates"]
               if c["status"] == "done")
    summary = json.loads((tmp_path / failed[0]["name"] / "summary.json").read_text())
    assert summary["status"] == "failed" and "boom" in summary["error"]


def test_everything_fails_and_woa_goes_on(tmp_path, config):
    trainer = FakeTrainer(fail=lambda c: True)
    log = run(config, tmp_path, trainer, budget=8)
    assert len(trainer.calls) == 8 and log["best"] is None


def test_bad_key_fails_before_training(tmp_path, config):
    trainer = FakeTrainer()
    with pytest.raises(ConfigError, match="model.hidden_sise"):
        search.run_search(config, tmp_path, {"model.hidden_sise": (8, 64, "log", int)},
                          budget=2, train_fn=trainer, log=quiet)
    with pytest.raises(ConfigError, match="--sampler"):
        run(config, tmp_path, trainer, method="grid")
    with pytest.raises(ConfigError, match="budget"):
        run(config, tmp_path, trainer, budget=0)
    assert trainer.calls == []


# ---------------------------------------------------------------- real trainer


def test_real_trainer_two_candidates(tmp_path, tiny_config):
    """Two tiny candidates through gru_jax.harness.train.train_and_evaluate."""
    config = tiny_config()
    space = {"train.learning_rate": (1e-3, 3e-2, "log", float),
             "train.clip_norm": (0.5, 2.0, "log", float)}
    log = search.run_search(config, tmp_path, space, "random", budget=2, population=2,
                            seed=0, log=quiet)
    assert log["status"] == "done" and log["metric"] == "mse"
    assert [c["status"] for c in log["candidates"]] == ["done", "done"]
    for c in log["candidates"]:
        summary = json.loads((tmp_path / c["name"] / "summary.json").read_text())
        assert summary["final"]["mse"] == c["value"]
        assert summary["config"]["train"]["learning_rate"] == \
            c["overrides"]["train.learning_rate"]
        assert summary["config"]["model"]["hidden_size"] == 8


def test_search_script_bad_flag_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "search.py"),
         f"--config={ROOT / 'experiments' / 'search_adding.py'}", f"--workdir={tmp_path}",
         "--method=grid"],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--method" in proc.stderr


def test_search_reproduces_its_committed_result(tmp_path, config):
    """tests/data/woa_search_golden.json: the candidates (generation, overrides, value)
    of three searches on the analytic bowl, written by the driver before it ran on the
    Optuna engine (commit 31d36ce); the engine's driver proposes the same, in order."""
    golden = json.loads((ROOT / "tests" / "data" / "woa_search_golden.json").read_text())
    for name, want in golden.items():
        method, budget, population, seed = name.split("-")
        log = search.run_search(config, tmp_path / name, SPACE, method, int(budget[1:]),
                                int(population[1:]), int(seed[1:]), train_fn=FakeTrainer(),
                                log=quiet)
        got = [{"generation": c["generation"], "overrides": c["overrides"],
                "value": c["value"]} for c in log["candidates"]]
        assert got == want, name
