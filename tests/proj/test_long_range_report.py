"""The second protocol's analysis and report: re-reading runs at a budget or threshold,
brackets, the censored power-law fits against the equations that generated the data,
computed verdicts, and the README's section re-rendered from the committed runs."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from gru_jax.proj.long_range import analysis, design, published, report, searches, solve

ROOT = Path(__file__).resolve().parents[2]


def run(arm="gru", hidden=64, seed=0, T=40, steps_to_solve=None, cap=4000, last=None,
        history=(), diverged=False):
    """A run whose held streak starts at `steps_to_solve` (3 evals, 100 steps apart)."""
    held = None if steps_to_solve is None else solve.Solve(steps_to_solve, steps_to_solve + 200)
    return searches.Run(
        task="adding", arm=arm, hidden=hidden, seed=seed, seq_len=T, cap=cap, lr=1e-2,
        layers=1, copy_len=None, held=held, last_step=last or (held and held.held) or cap,
        diverged=diverged, metric="mse", threshold=0.01,
        baseline=1 / 6, history=tuple(history), num_params=0, step_time_ms=1.0,
        wall_time_sec=1.0, grad_horizon_init=None, grad_horizon=None,
        folder=f"{arm}/H{hidden}/seed{seed}/T{T}")


def test_reread_at_a_budget_and_a_threshold():
    # held at 0.01 from step 200 (200, 300, 400): the trainer stopped it at 400
    hist = [{"step": s, "mse": m} for s, m in ((100, 0.1), (200, 0.008), (300, 0.004),
                                             (400, 0.003))]
    r = run(steps_to_solve=200, history=hist)
    assert r.last_step == 400 and r.solved
    assert searches.reread(r) is True and searches.reread(r, budget=400) is True
    assert searches.reread(r, budget=300) is False  # through step 300, not held yet
    assert searches.first_solve(r, 0.009) == 200
    # two evals at 0.005 and then it stopped (solved at 0.01) before the cap: undecided
    assert searches.reread(r, threshold=0.005) is None
    assert searches.reread(run(), budget=8000) is None  # capped at 4000, unsolved
    assert searches.reread(run(), budget=2000) is False
    # diverged at step 3000 of 4000: failed at its cap and beyond (it cannot go on)
    assert searches.reread(run(last=3000, diverged=True)) is False
    assert searches.reread(run(last=3000, diverged=True), budget=8000) is False
    assert searches.reread(run(last=3000), budget=4000) is None  # stopped, not diverged


def test_a_solve_is_a_held_streak_not_a_touch():
    """solve's rule: SOLVED_EVALS evals in a row at the threshold; one that is lost
    again, or a lone final eval, is not a solve (the search and report agree on it)."""
    ev = [{"step": 100 * (i + 1), "accuracy": a}
          for i, a in enumerate((0.995, 0.7, 0.99, 0.999, 0.98, 0.99, 0.991, 0.995))]
    assert solve.first_solve(ev, "accuracy", 0.99) == solve.Solve(600, 800)
    assert solve.first_solve(ev, "accuracy", 0.99, evals=2) == solve.Solve(300, 400)
    assert solve.first_solve(ev[:7], "accuracy", 0.99) is None  # final eval at it, alone
    assert solve.first_solve([{"step": 1, "mse": math.nan}] * 3, "mse", 0.01) is None


def test_each_committed_run_says_where_it_ran():
    """runs.csv's device: "cpu", or the GPU's name from the summary's machine."""
    import json

    folder = ROOT / "results" / "long_range" / "search" / "adding"
    runs = searches.load(folder)
    for r in runs:
        machine = json.loads((folder / r.folder / "summary.json").read_text())["machine"]
        assert r.device == ("cpu" if machine["backend"] == "cpu" else machine["device_kind"])
    assert {"cpu", "NVIDIA H200"} <= {r.device for r in runs}


@pytest.mark.parametrize("task", ["copy", "adding"])
def test_the_search_and_the_report_decide_every_committed_run_alike(task):
    """The adaptive search's decision on each committed run (LengthSearch.outcomes, on
    the summaries as the engine hands them over) is the report's (searches.reread)."""
    import json

    from gru_jax.proj.long_range.adaptive import LengthSearch, Lineage

    folder = ROOT / "results" / "long_range" / "search" / task
    runs = searches.load(folder)
    src = LengthSearch(task, [Lineage(*k) for k in searches.lineages(runs)],
                       lambda arm, h: 0.0, base_cap=design.CAP[task], top=20)
    finished = []
    for r in runs:
        summary = json.loads((folder / r.folder / "summary.json").read_text())
        finished.append(({"model.hidden_size": r.hidden, "seed": r.seed,
                          "task.seq_len": r.seq_len, "train.steps": r.cap}, summary))
    searched = {(ln.arm, ln.hidden, ln.seed, o.rung, o.cap): o.solved
                for ln, outs in src.outcomes(finished).items() for o in outs}
    reported = {(*r.key, r.rung, r.cap): searches.reread(r) for r in runs}
    assert len(runs) > 100 and searched == reported


def test_bracket_ignores_solves_above_the_first_failure_and_undecided_lengths():
    assert searches.bracket({10: True, 20: True, 40: False, 80: True}) == (20, 40)
    assert searches.bracket({10: True, 20: None, 40: False}) == (10, 40)
    assert searches.bracket({10: True, 20: True}) == (20, None)
    assert searches.bracket({10: False}) == (None, 10)
    assert analysis.bracket_text((20, 40)) == "20-40"
    assert analysis.seeds_text([(20, 28), (20, None), (20, 28)]) == "20-28 x2, >=20"


def _power_law_runs(alpha, beta, rng, cap=4000, hiddens=(16, 32, 64, 128), seeds=(0, 1, 2)):
    """Runs whose steps to solve are exp(a) T^alpha H^beta x lognormal noise, seen as the
    trainer sees them: at the next eval (every 100 steps), unsolved past the cap."""
    runs = []
    for h in hiddens:
        for seed in seeds:
            for T in design.LADDER[:12]:
                s = math.exp(4.5 + alpha * math.log(T) + beta * math.log(h)
                             + 0.3 * rng.standard_normal())
                at = int(math.ceil(s / 100) * 100)
                runs.append(run(hidden=h, seed=seed, T=T,
                                steps_to_solve=at if at + 200 <= cap else None, cap=cap))
    return runs


def test_alpha_fit_recovers_the_generating_exponents_under_censoring():
    runs = _power_law_runs(1.1, -0.4, np.random.default_rng(0))
    censored = sum(r.steps_to_solve is None for r in runs)
    assert 0.2 * len(runs) < censored < 0.6 * len(runs)  # the cap binds
    fit = analysis.alpha_fit(runs)
    assert fit.censored == censored and fit.lineages == 12
    assert fit.alpha.low < 1.1 < fit.alpha.high and abs(fit.alpha.value - 1.1) < 0.1
    assert fit.beta.low < -0.4 < fit.beta.high
    assert fit.steps(100, 64) == pytest.approx(
        math.exp(fit.intercept + fit.alpha.value * math.log(100)
                 + fit.beta.value * math.log(64)))


def test_growth_fit_over_bracketed_lineages_recovers_b():
    ladder = np.array(design.LADDER, float)
    brackets = {}
    rng = np.random.default_rng(1)
    for h in (16, 32, 64, 128, 256):
        for seed in range(4):
            t_star = 3.0 * h ** 0.8 * math.exp(0.15 * rng.standard_normal())
            lo = int(ladder[ladder <= t_star].max())
            hi = int(ladder[ladder > t_star].min())
            brackets[("gru", h, seed)] = (lo, hi)
    brackets[("gru", 16, 9)] = (None, 10)  # open brackets are left out
    g = analysis.growth_fit(brackets)
    assert g.n == 20 and g.b.low < 0.8 < g.b.high and abs(g.b.value - 0.8) < 0.1


class _Study:
    """What published.py reads of a report.Study."""

    def __init__(self, runs):
        self.runs = runs
        self.lineages = searches.lineages(runs)
        self.hiddens = sorted({r.hidden for r in runs})

    def seeds_of(self, arm, hidden):
        return [k for k in self.lineages if k[:2] == (arm, hidden)]


def test_censored_pairs_say_how_far_under_the_cap_they_solved_at_the_top():
    """A pair is censored when every seed's finished search solved the ladder's top; the
    text gives the steps it took there per arm (not bracketed pairs: not named)."""
    top = design.top_rung("adding", 16)
    grow = design.LADDER[:top + 1:2]  # x2 per trial from the bottom rung to the top
    assert grow[-1] == 20480
    runs = [run("gru", 16, seed, T, s if T == 20480 else 100)
            for seed, s in ((0, 300), (1, 200), (2, 600)) for T in grow]
    runs += [run("lstm", 16, 0, T, 100) for T in grow[:-1]] + [run("lstm", 16, 0, 20480)]
    study = report.Study.__new__(report.Study)
    study.task, study.reduced, study.runs = "adding", False, runs
    study.lineages = searches.lineages(runs)
    study.base_cap, study.arms, study.hiddens = 4000, ["gru", "lstm"], [16]
    text = report.censored_text(study, analysis.brackets(study.lineages))
    assert text.startswith("Censored by the ladder's top, not bracketed: gru H=16. ")
    assert "searched at its size (T=20480;" in text
    assert "there in gru 200-600 steps of the 4000-step cap" in text
    assert "lstm" not in text


def test_extended_pairs_are_censored_at_their_top_and_gpu_rows_counted_apart():
    """A pair that climbed past the top is censored at the extended grid's top (the
    base top does not end its search); rows from a GPU are named, and their hours are
    not CPU core-hours."""
    cpu_top, ext_top = (design.top_rung("adding", 128, extended=e) for e in (False, True))
    assert design.LADDER[ext_top] == 4 * design.LADDER[cpu_top] == 10240
    grow = design.LADDER[:ext_top + 1:2]
    runs = [dataclasses.replace(run("gru", 128, seed, T, 200), wall_time_sec=3600.0,
                                **({"device": "NVIDIA H200", "pack_size": 2}
                                   if T > design.LADDER[cpu_top] else {}))
            for seed in (0, 1) for T in grow]
    runs += [run("lstm", 128, 0, T, 100) for T in grow[:cpu_top // 2 + 1]]  # CPU only
    study = report.Study.__new__(report.Study)
    study.task, study.reduced, study.runs = "adding", False, runs
    study.lineages = searches.lineages(runs)
    study.base_cap, study.arms, study.hiddens = 4000, ["gru", "lstm"], [128]
    assert study.extended("gru", 128) and not study.extended("lstm", 128)
    assert (study.top_of("gru", 128), study.top_of("lstm", 128)) == (10240, 2560)
    assert not any(study.searching(k) for k in study.lineages)
    text = report.censored_text(study, analysis.brackets(study.lineages))
    assert text.startswith("Censored by the ladder's top, not bracketed: gru H=128, lstm H=128.")
    assert "(T=2560; the extended grid's 10240 at H=128 (gru);" in text
    # 2 seeds x 9 CPU rungs of an hour, 9 lstm runs of a second; 2 GPU rungs, the
    # 2 seeds packed into one program (an hour each)
    assert report.core_hours(runs) == pytest.approx(18 + 9 / 3600)
    assert report.core_hours(runs, accelerator=True) == 2
    # CPU only: gru stops at 400 steps, lstm at 300, 1 ms a step
    assert report.overhead(runs) == pytest.approx((18 * 3600 + 9) / (18 * 0.4 + 9 * 0.3))
    assert "4 runs of the extended grid" in report._gpu_text([study])
    assert "2.00 GPU-hours" in report._gpu_text([study])


def test_published_verdicts_are_computed_from_the_runs():
    runs = []
    for seed in (0, 1, 2):
        runs += [run("gru", 128, seed, 640, 900), run("lstm", 128, seed, 640, 600),
                 run("chrono-lstm", 128, seed, 640, 200), run("rnn", 128, seed, 80, None),
                 run("rnn", 128, seed, 40, 2000)]
    verdicts = {(row[0], row[1].split(":")[0]): row[2]
                for row in published.published_markdown({"adding": _Study(runs)}).splitlines()[2:]
                for row in [[c.strip() for c in row.strip("|").split("|")]]}
    assert verdicts[("Bai et al. 2018, adding T=600: gru MSE 5.3e-05", "T=640, H=128")] == "agrees"
    # the LSTM solves where Bai et al. report it at the baseline
    assert verdicts[("Bai et al. 2018, adding T=600: lstm MSE 0.164", "T=640, H=128")] == \
        "disagrees"
    # the RNN failed at 80, so it fails at 640 (a longer dependency is not easier)
    assert verdicts[("Bai et al. 2018, adding T=600: rnn MSE 0.177", "T=640, H=128")] == "agrees"
    assert verdicts[("Tallec & Ollivier 2018, adding T=750: chrono-LSTM ~7x faster",
                     "T=640, H=128")] == "agrees"  # 600 / 200 = 3x >= 2
    assert verdicts[("Tallec & Ollivier 2018, adding T=750: chrono-LSTM ~7x faster",
                     "T=1280, H=128")] == "open"  # neither ran 1280
    assert ("T=640, H=128: lstm 600 (3/3 solved) / chrono-lstm 200 (3/3 solved) steps = 3.00x"
            in published.published_markdown({"adding": _Study(runs)}))
    # the sizes the study ran, the RNN failed below 113 on every seed
    assert verdicts[("Arjovsky et al. 2016, adding T>=100: tanh RNN fails", "T=113, H=128")] == \
        "agrees"


def _copy_run(arm, seed, T, best_loss, steps_to_solve=None):
    """A copy run at H=128 whose best eval loss is `best_loss` x its baseline."""
    base = 10 * math.log(8) / (T + 20)
    r = run(arm, 128, seed, T, steps_to_solve, cap=8000,
            history=[{"step": 100, "loss": base, "accuracy": 0.1},
                     {"step": 8000, "loss": best_loss * base, "accuracy": 0.5}])
    return dataclasses.replace(r, task="copy", metric="accuracy", threshold=0.99,
                               baseline=base, copy_len=10)


def test_copy_claims_read_the_plateau_from_the_loss_against_the_baseline():
    runs = []
    for seed in (0, 1, 2):
        # lstm: escapes at 320 (0.4x the baseline), stays at it at 453 (0.9x)
        runs += [_copy_run("lstm", seed, 320, 0.4), _copy_run("lstm", seed, 453, 0.9),
                 _copy_run("chrono-lstm", seed, 640, 0.0, 3000),  # solves 640: so 453
                 _copy_run("gru", seed, 226, 0.3), _copy_run("gru", seed, 640, 0.45),
                 _copy_run("rnn", seed, 20, 0.95)]
    assert published.escaped(runs[0]) and not published.escaped(runs[1])
    assert analysis.loss_ratio(runs[0]) == pytest.approx(0.4)
    study = _Study(runs)
    # the plateau bracket per lineage: [longest escaped, shortest that stayed]
    assert analysis.plateau_bracket(study.lineages[("lstm", 128, 0)]) == (320, 453)
    assert analysis.plateau_bracket(study.lineages[("gru", 128, 1)]) == (640, None)
    assert analysis.plateau_bracket(study.lineages[("rnn", 128, 2)]) == (None, 20)
    assert published.escaped_at(study, "lstm", 128, 453) == [False] * 3
    assert published.escaped_at(study, "lstm", 128, 640) == [False] * 3  # 453 stayed
    assert published.escaped_at(study, "gru", 128, 320) == [True] * 3  # 640 escaped
    assert published.escaped_at(study, "lstm", 128, 226) == [True] * 3  # 320 escaped
    assert published.escaped_at(study, "rnn", 128, 640) == [False] * 3
    verdicts = {row[0]: (row[1], row[2]) for row in (
        [c.strip() for c in line.strip("|").split("|")]
        for line in published.published_markdown({"copy": study}).splitlines()[2:])}
    assert verdicts["Tallec & Ollivier 2018, copy T=500: LSTM stays at the baseline"] == (
        "T=453, H=128: 0/3 escaped the plateau", "agrees")
    assert verdicts["Tallec & Ollivier 2018, copy T=500: chrono-LSTM solves"] == (
        "T=453, H=128: 3/3 solved", "agrees")
    # at 640 (the copy search's top) the gru escaped: T = 1000 stays open
    assert verdicts["Bai et al. 2018, copy T=1000: gru at the baseline"][1] == "open"
    assert verdicts["Bai et al. 2018, copy T=1000: lstm at the baseline"][1] == "agrees"
    assert verdicts["Bai et al. 2018, copy T=1000: rnn at the baseline"][1] == "agrees"


def test_readme_section_is_rendered_from_the_committed_results(monkeypatch):
    monkeypatch.chdir(ROOT)
    readme = Path("README.md").read_text()
    section = readme.split(report.BEGIN)[1].split(report.END)[0].strip()
    assert section == report.readme_section("results/long_range", "README.md").strip(), (
        "README's long-range section differs from the committed results: run "
        "python scripts/report.py --study=results/long_range --study_readme=README.md")
