"""gru_jax.harness.report: rows, tables and figures from fake summary.json files."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gru_jax.harness import report
from gru_jax.harness.errors import WorkdirError
from gru_jax.harness.summary import RunSummary

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {("gru", 8): 264, ("gru", 16): 912, ("lstm", 8): 352, ("lstm", 16): 1216}


def fake_summary(cell, hidden, seq_len, seed=0, status="done", mse=0.05):
    solved = status == "done" and mse <= 0.01
    s = {
        "status": status,
        "step": 200,
        "num_devices": 1,
        "final": {"loss": mse * 1.1, "mse": mse},
        "num_params": PARAMS[cell, hidden],
        "solved": solved,
        "steps_to_solve": 100 + seq_len + seed if solved else None,
        "steps_per_sec": 1000.0 / (hidden + seq_len),
        "step_time_ms": float(hidden + seq_len) * (2.0 if cell == "lstm" else 1.0),
        "step_memory_bytes": 2**16 * hidden * (1.25 if cell == "lstm" else 1.0),
        "peak_memory_bytes": 2**20 * hidden * (1.5 if cell == "lstm" else 1.0),
        "peak_memory_source": "maxrss",
        "grad_norms": [0.5 ** (seq_len - 1 - t) for t in range(seq_len)],
        "task": {"metric": "mse", "solved_at": 0.01, "baseline": 0.1667},
        "grad_horizon": seq_len // 2 if cell == "lstm" else seq_len // 4,
        "wall_time_sec": 3.5,
        "eval_history": [{"step": s, "loss": mse * 10 / (1 + s), "mse": mse * 10 / (1 + s)}
                         for s in (0, 100, 200)],
        "config": {"model": {"cell": cell, "hidden_size": hidden},
                   "task": {"name": "adding", "seq_len": seq_len},
                   "train": {"learning_rate": 0.01}, "seed": seed},
    }
    if status == "failed":
        s.update(final={}, error="RuntimeError: out of memory\nmore lines", eval_history=[])
    return s


def write_runs(workdir, runs):
    points = []
    for name, summary in runs.items():
        (workdir / name).mkdir(parents=True)
        (workdir / name / "summary.json").write_text(json.dumps(summary))
        points.append({"name": name, "dir": name, "overrides": {}})
    return points


@pytest.fixture
def sweep_dir(tmp_path):
    """gru and lstm over hidden {8, 16} x seq_len {10, 20}: two seeds at one point,
    a failed lstm run, and one grid point never run."""
    runs = {}
    for cell in ("gru", "lstm"):
        for h in (8, 16):
            for t in (10, 20):
                mse = 0.001 * h / t if cell == "gru" else 0.02 * t / h
                runs[f"cell={cell},hidden_size={h},seq_len={t}"] = fake_summary(cell, h, t, mse=mse)
    runs["cell=gru,hidden_size=8,seed=1,seq_len=10"] = fake_summary("gru", 8, 10, seed=1,
                                                                    mse=0.0003)
    runs["cell=lstm,hidden_size=16,seq_len=20"] = fake_summary("lstm", 16, 20, status="failed")
    points = write_runs(tmp_path, runs)
    points.append({"name": "cell=lstm,hidden_size=32,seq_len=10", "overrides": {}})
    (tmp_path / "sweep.json").write_text(json.dumps({"num_points": 10, "points": points}))
    return tmp_path, runs


def md_table(text, first_header):
    """The rows (lists of cells) of the markdown table whose header starts so."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in ln.strip("|").split(" | ")),
                             strict=True)))
    return rows


def test_collect_reads_every_summary(sweep_dir):
    workdir, runs = sweep_dir
    rows = report.collect(workdir)
    assert len(rows) == len(runs) == 9
    assert set(rows[0]) == set(report.COLUMNS)
    assert [r["cell"] for r in rows] == ["gru"] * 5 + ["lstm"] * 4  # gru first, then lstm
    for r in rows:
        s = runs[r["run"]]
        assert (r["cell"], r["hidden_size"], r["seq_len"], r["seed"], r["task"]) == (
            s["config"]["model"]["cell"], s["config"]["model"]["hidden_size"],
            s["config"]["task"]["seq_len"], s["config"]["seed"], "adding")
        assert r["final"] == s["final"].get("mse")
        for k in ("status", "solved", "steps_to_solve", "num_params", "step_time_ms",
                  "step_memory_bytes", "peak_memory_bytes", "grad_horizon", "steps_per_sec"):
            assert r[k] == s[k], k
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"] == "RuntimeError: out of memory"


def test_write_report_files_and_numbers(sweep_dir):
    workdir, runs = sweep_dir
    text = report.write_report(workdir)
    assert (workdir / "results.md").read_text() == text

    with open(workdir / "results.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == 9 and list(csv_rows[0]) == list(report.COLUMNS)
    for row in csv_rows:
        s = runs[row["run"]]
        assert row["status"] == s["status"]
        assert row["num_params"] == str(s["num_params"])
        if s["status"] == "done":
            assert float(row["final"]) == s["final"]["mse"]  # full precision in the csv
            assert float(row["step_time_ms"]) == s["step_time_ms"]
        else:
            assert row["final"] == "" and row["error"].startswith("RuntimeError")

    # one row per run, numbers as in the summaries (4 significant digits)
    md_rows = md_table(text, "run")
    assert len(md_rows) == 9
    for row in md_rows:
        s = runs[row["run"].strip("`")]
        assert row["status"] == s["status"]
        assert int(row["params"]) == s["num_params"]
        assert float(row["step ms"]) == pytest.approx(s["step_time_ms"], rel=1e-3)
        assert float(row["peak MiB"]) == pytest.approx(s["peak_memory_bytes"] / 2**20, rel=1e-3)
        assert float(row["step MiB"]) == pytest.approx(s["step_memory_bytes"] / 2**20, rel=1e-3)
        if s["status"] == "done":
            assert float(row["final"]) == pytest.approx(s["final"]["mse"], rel=1e-3)
            assert row["solved"] == ("yes" if s["solved"] else "no")
        else:
            assert row["final"] == "—"
    assert "- `cell=lstm,hidden_size=16,seq_len=20`: RuntimeError: out of memory" in text
    assert "10 points; 1 not run yet: `cell=lstm,hidden_size=32,seq_len=10`" in text
    assert "tensorboard --logdir" in text
    assert "high-water mark (maxrss)" in text

    # the cell comparison: aggregated over each cell's runs
    comp = {r["cell"]: r for r in md_table(text, "cell")}
    assert set(comp) == {"gru", "lstm"}
    assert comp["gru"]["parameters (by hidden size)"] == "h=8: 264, h=16: 912"
    assert comp["lstm"]["parameters (by hidden size)"] == "h=8: 352, h=16: 1216"
    assert comp["gru"]["runs (solved / failed)"] == "5 (5 / 0)"
    assert comp["lstm"]["runs (solved / failed)"] == "4 (0 / 1)"
    # every gru run solved; the longest sequence at the smallest hidden size that did
    assert comp["gru"]["longest seq_len solved"] == "20 (h=8)"
    assert comp["lstm"]["longest seq_len solved"] == "none (tried up to 20)"
    # lstm step time is 2x gru's at every matched point (the failed run has its time too)
    assert comp["lstm"]["time vs gru"] == "2.00×" and comp["gru"]["time vs gru"] == "1.00×"
    assert comp["lstm"]["memory vs gru"] == "1.25×"  # the train-step memory, not the RSS
    gru_times = sorted(runs[k]["step_time_ms"] for k in runs if k.startswith("cell=gru"))
    assert comp["gru"]["step time ms, median (range)"] == (
        f"{gru_times[2]:.3g} ({gru_times[0]:.3g}–{gru_times[-1]:.3g})")
    assert comp["lstm"]["gradient horizon, median (max)"] == "7.5 (10)"  # 5, 5, 10, 10


def test_figures_are_valid_pngs(sweep_dir):
    import matplotlib.image

    workdir, _ = sweep_dir
    text = report.write_report(workdir)
    names = ["heatmap_adding_mse.png", "heatmap_adding_steps_to_solve.png", "curves_adding.png",
             "gradients_adding.png"]
    for name in names:
        image = matplotlib.image.imread(workdir / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert f"]({name})" in text  # linked from results.md


def test_heatmap_cells_average_over_seeds_and_count_failures():
    rows = [report._row(f"r{i}", RunSummary.from_dict(fake_summary("gru", 8, 10, seed=i, mse=m)))
            for i, m in enumerate([0.002, 0.004])]
    value, text = report._final_value(rows)
    assert value == pytest.approx(0.003) and text.startswith("0.003")
    failed = report._row("f", RunSummary.from_dict(fake_summary("gru", 8, 10, status="failed")))
    assert report._final_value([failed]) == (None, "1 failed")
    unsolved = RunSummary.from_dict(fake_summary("gru", 8, 10))
    value, text = report._steps_value(rows + [report._row("u", unsolved)])
    assert value == pytest.approx(110.5) and "2/3 solved" in text


def test_single_run_and_run_folder(tmp_path):
    write_runs(tmp_path, {"base": fake_summary("gru", 8, 10, mse=0.002)})
    text = report.write_report(tmp_path)
    assert len(md_table(text, "run")) == 1
    assert (tmp_path / "heatmap_adding_mse.png").exists()
    # a plain train.py workdir (summary.json at the top) works too
    run_dir = tmp_path / "base"
    assert len(md_table(report.write_report(run_dir), "run")) == 1


def test_failed_only_and_odd_summaries(tmp_path):
    write_runs(tmp_path, {"a": fake_summary("gru", 8, 10, status="failed"),
                          "b": {"status": "failed", "error": "ConfigError: x"}})
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "summary.json").write_text("{half writ")
    rows = report.collect(tmp_path)
    assert sorted(r["status"] for r in rows) == ["failed", "failed", "unreadable"]
    text = report.write_report(tmp_path)
    assert "none" in text and (tmp_path / "results.csv").exists()


def test_diverged_runs_do_not_poison_means(tmp_path):
    s = fake_summary("gru", 8, 10, status="diverged", mse=0.1)
    s["final"]["mse"] = float("nan")
    write_runs(tmp_path, {"a": s, "b": fake_summary("gru", 8, 10, seed=1, mse=0.004)})
    report.write_report(tmp_path)
    rows = report.collect(tmp_path)
    value, text = report._final_value(rows)
    assert value == pytest.approx(0.004) and "1 diverged" in text
    assert not math.isnan(value)


def test_empty_or_missing_workdir(tmp_path):
    with pytest.raises(WorkdirError, match="no \\*/summary.json"):
        report.write_report(tmp_path)
    with pytest.raises(WorkdirError, match="no such folder"):
        report.write_report(tmp_path / "nope")


def test_cli(sweep_dir, tmp_path_factory):
    workdir, _ = sweep_dir
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, str(ROOT / "scripts" / "report.py")]
    p = subprocess.run([*cmd, f"--workdir={workdir}"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "| cell |" in p.stdout and "| run |" in p.stdout
    assert f"tensorboard --logdir {workdir}" in p.stdout
    assert str(workdir) in p.stdout.splitlines()[-2]  # where the files are
    empty = tmp_path_factory.mktemp("empty")
    p = subprocess.run([*cmd, f"--workdir={empty}"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr and "no */summary.json" in p.stderr


def test_markdown_table_is_the_one_writer_with_alignment():
    from gru_jax.harness.report.tables import markdown_table

    assert markdown_table(["a", "b"], [[1, "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x|y |"
    assert markdown_table(["m", "n"], [["g", 2.5]], align="lr").splitlines()[1] == "|---|---:|"
    with pytest.raises(ValueError, match="align"):
        markdown_table(["a"], [], align="lr")
