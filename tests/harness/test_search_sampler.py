"""The search's samplers on Optuna with real parts: the state rebuilt from the study.

- WOA's ReplaySampler in a plain `study.optimize` proposes the committed search's runs;
- two workers on one study (threads, each with its own storage connection) give the
  same candidates as one worker, each run trained once;
- a worker process SIGKILLed in the middle of a generation loses nothing: a second
  worker retries its run and the search ends with the committed candidates;
- TPE and CMA-ES improve on their first generation; the report compares the samplers of
  several searches sharing one storage.

The trainer is the fake one of test_search.py (an analytic bowl, no JAX).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT
from test_search import SPACE, FakeTrainer, fake_mse, journal, quiet

optuna = pytest.importorskip("optuna")

from gru_jax.harness import search  # noqa: E402
from gru_jax.harness.config import apply_overrides, base_config  # noqa: E402

GOLDEN = json.loads((ROOT / "tests" / "data" / "woa_search_golden.json").read_text())


@pytest.fixture
def config():
    return apply_overrides(base_config("adding"), {"train.steps": 100})


def golden_runs(name: str) -> list[dict]:
    """The distinct runs of a committed search, in the order first proposed."""
    seen: dict[str, dict] = {}
    for c in GOLDEN[name]:
        seen.setdefault(json.dumps(c["overrides"], sort_keys=True), c["overrides"])
    return list(seen.values())


def candidates(log_) -> list[dict]:
    return [{"generation": c["generation"], "overrides": c["overrides"], "value": c["value"]}
            for c in log_["candidates"]]


def test_replay_sampler_in_plain_optuna(config):
    """No engine: study.optimize with the sampler alone asks the committed search's
    runs in order; once the budget is spent a trial gets no candidate."""
    space = search.make_space(SPACE)
    sampler = search.ReplaySampler("woa", space, 16, 4, 0)
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        point = {k: trial.suggest_float(k, d.low, d.high, log=d.log) if not d.step
                 or isinstance(d, optuna.distributions.FloatDistribution)
                 else trial.suggest_int(k, d.low, d.high, log=d.log)
                 for k, d in search.distributions(space).items()}
        return fake_mse(apply_overrides(config, point))

    study.optimize(objective, n_trials=17)
    asked = [t.params for t in study.trials]
    assert asked[:16] == golden_runs("woa-b16-p4-s0")
    assert study.trials[16].system_attrs[search.CANDIDATE_ATTR] is None
    assert sampler.plan(study).finished


def test_two_workers_share_one_search(tmp_path, config):
    """Two SearchWorkers on one SQLite study at once: every run once, both busy, and
    the log is the one-worker search's (the plan depends on scores, not timing)."""
    spec = search.prepare(config, tmp_path, SPACE, "woa", 16, 4, 0)
    search.open_search(config, tmp_path, spec)
    trainer, errors = FakeTrainer(), []
    by_thread: dict[str, list] = {}

    def work(tag):
        try:
            study = search.open_search(config, tmp_path, spec)  # its own connection
            w = search.SearchWorker(study, tmp_path, config, spec, trainer, log=quiet,
                                    poll=0.05)
            by_thread[tag] = w.run()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(trainer.calls) == len(set(trainer.calls)) == 16
    assert all(by_thread[t] for t in "ab")  # both trained some
    log_ = search.search_log(search.open_search(config, tmp_path, spec))
    assert log_["status"] == "done"
    assert candidates(log_) == GOLDEN["woa-b16-p4-s0"]


@pytest.mark.parametrize("method", ["woa", "tpe"])
def test_every_partial_write_is_readable(tmp_path, config, method):
    """A worker's claim writes a trial's attributes one by one; another worker may
    read the study between any two writes (CI once caught one reading a run's
    point before its folder). Read the plan and the log after every write."""
    spec = search.prepare(config, tmp_path, SPACE, method, 8, 4, 0)
    study = search.open_search(config, tmp_path, spec)
    storage, reads = study._storage, []
    write = storage.set_trial_user_attr

    def write_then_read(*args):
        write(*args)
        reads.append(len(search.outcomes_of(study.get_trials(deepcopy=False))))
        search.search_log(study)

    storage.set_trial_user_attr = write_then_read
    search.SearchWorker(study, tmp_path, config, spec, FakeTrainer(), log=quiet,
                        poll=0.01).run()
    assert len(reads) >= 16 and reads[-1] == 8  # two writes a run, at least


KILLER = """
import os, signal, sys
sys.path[:0] = [{tests!r}, {root!r}]
from test_search import SPACE, FakeTrainer
from gru_jax.harness import search
from gru_jax.harness.config import apply_overrides, base_config

class Killed(FakeTrainer):
    def __call__(self, config, workdir):
        if len(self.calls) == 5:  # generation 1, its second run: die mid-training
            print("dying", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(config, workdir)

config = apply_overrides(base_config("adding"), {{"train.steps": 100}})
search.run_search(config, {workdir!r}, SPACE, "woa", 16, 4, 0, train_fn=Killed(),
                  log=lambda m: None)
"""


def test_killed_worker_loses_nothing(tmp_path, config):
    """A worker process SIGKILLed while training generation 1 leaves its trial
    RUNNING; the next worker sees its process gone, retries that run, and the search
    ends with the committed candidates (every run trained once, the lost one twice)."""
    code = KILLER.format(tests=str(ROOT / "tests" / "harness"), root=str(ROOT),
                         workdir=str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**env, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr[-3000:]
    study = optuna.load_study(study_name="search-woa-seed0",
                              storage=f"sqlite:///{tmp_path / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE"] * 5 + ["RUNNING"], states
    trainer = FakeTrainer()
    log_ = search.run_search(config, tmp_path, SPACE, "woa", 16, 4, 0, train_fn=trainer,
                             log=quiet)
    assert log_["status"] == "done" and candidates(log_) == GOLDEN["woa-b16-p4-s0"]
    lost = study.trials[5]
    assert optuna.load_study(study_name="search-woa-seed0", storage=f"sqlite:///"
                             f"{tmp_path / 'study.db'}").trials[5].state.name == "FAIL"
    assert trainer.calls[0] == Path(lost.user_attrs["dir"]).name  # retried first
    assert len(trainer.calls) == len(set(trainer.calls)) == 16 - 5


@pytest.mark.parametrize("method", ["tpe", "cmaes"])
def test_optuna_samplers_learn(tmp_path, config, method):
    """Over 3 seeds (24 runs each, 4 per generation) TPE and CMA-ES each improve on
    their first generation, and their median best beats random search's; a search
    run again is resumed (nothing trained)."""
    if method == "cmaes":
        pytest.importorskip("cmaes")
    best = {}
    for m in ("random", method):
        for seed in range(3):
            wd, trainer = tmp_path / f"{m}{seed}", FakeTrainer()
            log_ = search.run_search(config, wd, SPACE, m, 24, 4, seed, train_fn=trainer,
                                     log=quiet, storage=journal(wd))
            assert log_["status"] == "done" and len(set(trainer.calls)) == 24
            first = min(c["value"] for c in log_["candidates"] if c["generation"] == 0)
            assert log_["best"]["value"] < first or m == "random"
            best.setdefault(m, []).append(log_["best"]["value"])
    assert sorted(best[method])[1] < sorted(best["random"])[1], best
    trainer = FakeTrainer()
    again = search.run_search(config, wd, SPACE, method, 24, 4, 2, train_fn=trainer,
                              log=quiet, storage=journal(wd))
    assert trainer.calls == [] and again["best"]["value"] == log_["best"]["value"]


def test_report_compares_samplers_in_one_storage(tmp_path, config):
    """Three searches in three folders on one journal file: the report over the
    storage has a row per study and a row per sampler."""
    shared = journal(tmp_path)
    logs = {m: search.run_search(config, tmp_path / m, SPACE, m, 8, 4, 0,
                                 train_fn=FakeTrainer(), log=quiet, storage=shared)
            for m in ("woa", "random", "tpe")}
    table = search.compare([shared])
    rows = table.splitlines()
    assert [r.split(" | ")[0] for r in rows[2:5]] == ["| woa", "| random", "| tpe"]
    for m, log_ in logs.items():
        assert f"| {m} | 1 | {log_['best']['value']:.4g} | {log_['best']['value']:.4g} |" \
            in table
    study = optuna.load_study(study_name="search-tpe-seed0", storage=search.open_search(
        config, tmp_path / "tpe", search.prepare(config, tmp_path / "tpe", SPACE, "tpe", 8, 4,
                                                 0), shared)._storage)
    trials = search.trials_table(study)
    assert trials.count("| complete |") == 8 and "learning_rate" in trials
    # a folder as the source reads its own study only
    assert search.compare([tmp_path / "woa"]).count("| woa |") == 2


SCRIPT_EXPERIMENT = '''
from gru_jax.harness.config import apply_overrides, base_config

def get_config():
    return apply_overrides(base_config("adding"), TINY)

def get_search_space():
    return {"train.learning_rate": (1e-3, 3e-2, "log", float)}
'''


@pytest.mark.slow  # two worker processes start JAX and train: ~45 s on 2 busy cores
def test_search_script_with_two_workers(tmp_path):
    """scripts/search.py --workers=2: two spawned workers (the SearchSpec pickled to
    them) train the first generation's two runs with the real trainer."""
    from conftest import TINY, subprocess_env

    exp = tmp_path / "exp.py"
    exp.write_text(SCRIPT_EXPERIMENT.replace("TINY", repr(TINY)))
    out = tmp_path / "search"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "search.py"), f"--config={exp}",
         f"--workdir={out}", "--sampler=woa", "--budget=2", "--population=2", "--workers=2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
        cwd=ROOT)
    stdout, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    study = optuna.load_study(study_name="search-woa-seed0",
                              storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 2 and len({t.user_attrs["dir"] for t in done}) == 2
    # trained by the spawned workers (which of them took which run is up to timing)
    assert proc.pid not in {t.system_attrs["gru_jax:owner"]["pid"] for t in done}
    log_ = json.loads((out / "search.json").read_text())
    assert log_["status"] == "done" and [c["status"] for c in log_["candidates"]] == \
        ["done", "done"]
    assert "best: #" in stdout
