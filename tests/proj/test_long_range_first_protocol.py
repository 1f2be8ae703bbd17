"""The long-range study's first protocol report: grid states, boundaries and their fit,
verdicts, and its committed report.md re-rendered from the committed runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sweep_fakes import base_config, no_validate

from gru_jax.harness import sweep
from gru_jax.proj.long_range.first_protocol import costs as study_costs
from gru_jax.proj.long_range.first_protocol import report as study_report

ROOT = Path(__file__).resolve().parents[2]
BOUNDARY = {"gru": lambda h: 4 * h, "rnn": lambda h: 40}  # solves T <= this


class StudyTrainer:
    """A summary.json as the trainer writes it; solved iff T <= BOUNDARY[cell](H)."""

    def __call__(self, config, workdir):
        cell, h, t = config.model.cell, config.model.hidden_size, config.task.seq_len
        solved = t <= BOUNDARY[cell](h)
        norms = [0.5 ** (t - 1 - i) for i in range(t)]
        summary = {
            "schema_version": 1, "status": "done", "step": 100, "solved": solved,
            "steps_to_solve": 50 + h if solved else None, "num_params": 3 * h * h,
            "stop_reason": "solved" if solved else "budget", "final": {"mse": 0.001},
            "eval_history": [{"step": 50, "loss": 0.1, "mse": 0.1},
                             {"step": 100, "loss": 0.001, "mse": 0.001}],
            "grad_norms": norms, "grad_norms_init": norms, "grad_horizon_init": 9,
            "grad_horizon_median": 9, "wall_time_sec": 1.0, "step_time_ms": 1.0,
            "step_memory_bytes": 1024,
            "task": {"metric": "mse", "solved_at": 0.01, "baseline": 0.167},
            "config": {**config.to_dict(), "task": {"name": "adding", "seq_len": t}},
            "machine": {"cpu": "test cpu", "cpu_count": 2, "backend": "cpu", "commit": "abc"},
        }
        (Path(workdir) / "summary.json").write_text(json.dumps(summary))
        return summary


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    points = [{"model.cell": c, "model.hidden_size": h, "task.seq_len": t, "seed": s}
              for t in (20, 40, 80, 160) for h in (8, 16, 32) for c in ("gru", "rnn")
              for s in (0, 1)]
    results = sweep.run_sweep(base_config(), points, root / "adding", train_fn=StudyTrainer(),
                              validate=no_validate, progress=False, prune_along="task.seq_len")
    return root, results


def test_points_boundaries_and_pruning(study):
    root, results = study
    tr = study_report.load_task(root / "adding")
    assert tr.arms == ["gru", "rnn"] and tr.lengths == [20, 40, 80, 160]
    pruned = {(r["overrides"]["model.cell"], r["overrides"]["model.hidden_size"],
               r["overrides"]["task.seq_len"]) for r in results if r["action"] == "pruned"}
    assert pruned == {k for k, p in tr.points.items() if p.state == "pruned"}
    # Pruned after the first length that no seed solved (gru: T > 4H; rnn: T > 40).
    assert pruned == {("gru", 8, 80), ("gru", 8, 160), ("gru", 16, 160),
                      *(("rnn", h, 160) for h in (8, 16, 32))}
    # gru solves T <= 4H: 32 at H=8 (-> 20), 64 (-> 40), 128 (-> 80), inside the grid.
    assert study_report.boundaries(tr)["gru"] == [(8, 20, False), (16, 40, False),
                                                  (32, 80, False)]
    assert study_report.boundaries(tr)["rnn"] == [(h, 40, False) for h in (8, 16, 32)]
    a, b = study_report.boundary_fits(tr)["gru"]
    assert b == pytest.approx(1.0) and 2 ** a == pytest.approx(2.5)  # T* = 2.5 H on the grid
    assert study_report.boundary_fits(tr)["rnn"][1] == pytest.approx(0.0, abs=1e-9)
    assert tr.points[("gru", 8, 20)].median_steps == 58


def test_pending_points_leave_the_boundary_open(study, tmp_path):
    root, _ = study
    import shutil

    shutil.copytree(root / "adding", tmp_path / "adding")
    # Take away the gru's H=32 runs at T=160: that point becomes pending, not unsolved.
    for d in (tmp_path / "adding").glob("cell=gru,hidden_size=32,seed=*,seq_len=160"):
        shutil.rmtree(d)
    tr = study_report.load_task(tmp_path / "adding")
    assert tr.points[("gru", 32, 160)].state == "pending"
    assert tr.boundary("gru", 32) == (80, True)
    assert study_report._bound_text(*tr.boundary("gru", 32)) == ">= 80"


def test_report_writes_files_and_renders_its_markdown(study):
    root, _ = study
    text = study_report.write_study_report(root, readme_dir=root)
    for name in ("phase_adding.png", "boundary_adding.png", "gradients_adding.png",
                 "curves_adding.png", "runs.csv", "manifest.json", "report.md"):
        assert (root / name).is_file(), name
    assert "| gru | 20 | 40 | 80 | H^1.00 |" in text
    verdicts = {row[0]: row[-1] for row in study_report.published_rows(
        {"adding": study_report.load_task(root / "adding")})}
    assert verdicts["The tanh RNN fails the adding problem from about T = 100-200"] == "agrees"
    assert json.loads((root / "manifest.json").read_text())["runs"] == 2 * (24 - 6)
    assert text == study_report.study_markdown(root, study_report.load_study(root),
                                               readme_dir=root)


def test_committed_first_protocol_report_re_renders(monkeypatch):
    """The retired first protocol stays under results/long_range, labelled, and its
    report.md is what the code renders from the committed runs."""
    monkeypatch.chdir(ROOT)  # the report names folders as the command line did
    study = Path("results/long_range")
    committed = (study / "report.md").read_text()
    expected = study_report.study_markdown(study, study_report.load_study(study))
    assert committed == f"# {study_report.REPORT_TITLE}\n\n{expected}", (
        "results/long_range/report.md differs from the committed runs: run "
        "python scripts/report.py --study=results/long_range --first_protocol")


def test_measure_costs_times_every_pair_side_by_side():
    from conftest import make_tiny_config

    costs = study_costs.measure_costs(make_tiny_config(), [("gru", 8), ("chrono-gru", 8),
                                                            ("rnn", 8)], repeats=2, steps=2)
    assert [(r["arm"], r["hidden"]) for r in costs["rows"]] == [
        ("gru", 8), ("chrono-gru", 8), ("rnn", 8)]
    for r in costs["rows"]:
        assert len(r["step_ms_all"]) == 2 and r["step_ms"] > 0 and r["memory_bytes"] > 0
    # Chrono changes the initial biases only: the same program, the same memory.
    assert costs["rows"][0]["memory_bytes"] == costs["rows"][1]["memory_bytes"]
    assert costs["rows"][2]["memory_bytes"] < costs["rows"][0]["memory_bytes"]


@pytest.mark.parametrize("a, b, sign", [
    ((80, False), (40, False), 1), ((40, False), (40, False), 0),
    ((40, False), (160, True), -1),   # b solved at least 160: a is shorter
    ((200, False), (160, True), None),  # b may still reach beyond 200
    ((None, False), (None, False), None), ((None, False), (20, False), -1),
])
def test_boundaries_are_ordered_only_where_the_grid_decides(a, b, sign):
    assert study_report._compare(a, b) == sign
