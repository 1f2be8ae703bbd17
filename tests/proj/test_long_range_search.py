"""The adaptive search over T: grow, extend once, bisect; resumable from finished runs."""

import pytest

from gru_jax.proj.long_range import adaptive, design
from gru_jax.proj.long_range.adaptive import LengthSearch, Lineage, Outcome


def _search(solves, base_cap=100, top=16, improving=lambda r: False):
    """Run one lineage's search against an oracle solves(rung, cap) -> bool."""
    outcomes, trials = [], []
    while (nxt := adaptive.next_trial(outcomes, base_cap, top)) is not None:
        assert nxt not in trials, "a trial is never proposed twice"
        trials.append(nxt)
        r, cap = nxt
        outcomes.append(Outcome(r, cap, solves(r, cap), improving(r)))
    return adaptive.bracket(outcomes, base_cap), trials


@pytest.mark.parametrize("boundary", range(0, 16))
def test_brackets_a_monotone_boundary_to_one_rung(boundary):
    (lo, hi), trials = _search(lambda r, cap: r <= boundary)
    assert (lo, hi) == (boundary, boundary + 1)
    assert len(trials) <= boundary // 2 + 3  # climbing 2 rungs a time, one bisection


def test_censored_at_both_ends():
    assert _search(lambda r, cap: True, top=6)[0] == (6, None)  # solved to the top: a lower bound
    (lo, hi), trials = _search(lambda r, cap: False)
    assert (lo, hi) == (None, 0) and trials == [(0, 100)]  # fails at the first rung


def test_a_still_improving_failure_is_extended_once():
    # Rungs 4 and 5 solve only with the doubled cap; rung 6 improves but fails even then.
    solves = lambda r, cap: r < 4 or (r < 6 and cap == 200)  # noqa: E731
    (lo, hi), trials = _search(solves, improving=lambda r: r in (4, 5, 6))
    assert (4, 200) in trials and (6, 200) in trials
    assert (lo, hi) == (5, 6)


def test_no_extension_above_the_first_failure():
    """A still-improving run above a failed rung cannot move the bracket: the search
    is over (the committed copy lineage chrono-gru/H64/seed0: 57-80, with runs at
    160 and 226 from before the held-streak rule)."""
    outs = [Outcome(5, 200, True, False), Outcome(6, 200, False, True),
            Outcome(8, 100, False, True)]
    assert adaptive.next_trial(outs, 100, 16) is None
    assert adaptive.bracket(outs, 100) == (5, 6)
    assert adaptive.next_trial(outs[:1] + [Outcome(6, 100, False, True)], 100, 16) == (6, 200)


def test_a_diverged_run_is_failed_not_extended():
    """The report reads a diverged run as failed at every budget (searches.reread); the
    search must not extend it even while it was still improving."""
    outs = [Outcome(4, 100, True, False), Outcome(6, 100, False, True, diverged=True)]
    assert adaptive.bracket(outs, 100) == (4, 6)
    assert adaptive.next_trial(outs, 100, 16) == (5, 100)  # bisect, no extension


def test_still_improving_reads_the_last_quarter():
    hist = [{"step": s, "mse": v} for s, v in ((100, .1), (200, .08), (300, .07), (400, .03))]
    assert adaptive.still_improving(hist, "mse", 400)
    flat = [{"step": s, "accuracy": a} for s, a in ((100, .5), (200, .6), (300, .61), (400, .61))]
    assert not adaptive.still_improving(flat, "accuracy", 400)


def test_source_resumes_from_finished_points_and_is_idempotent():
    lns = [Lineage("gru", 16, 0), Lineage("lstm", 16, 0)]
    src = LengthSearch("adding", lns, lambda arm, h: 1e-2, base_cap=100, top=8)
    first = src.initial()
    assert [p["workdir"] for p in first] == ["gru/H16/seed0/T10", "lstm/H16/seed0/T10"]
    assert src.next([]) == first  # nothing finished: the same points (the engine dedups)

    def summary(p, mses):
        from gru_jax.harness.config import apply_overrides

        config = apply_overrides(design.base_config("adding"),
                                 {k: v for k, v in p.items() if k != "workdir"})
        history = [{"step": 10 * (i + 1), "mse": m} for i, m in enumerate(mses)]
        return {"status": "done", "config": config.to_dict(), "solved": mses[-1] <= 0.01,
                "task": {"metric": "mse", "solved_at": 0.01}, "eval_history": history}

    held = [0.3] * 7 + [0.005] * 3  # 3 evals in a row at the threshold by step 100
    touched = [0.005, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.005]  # never held
    assert summary(first[1], touched)["solved"]  # the final eval alone is not a solve:
    nxt = src.next([(first[0], summary(first[0], held)), (first[1], summary(first[1], touched))])
    assert [p["workdir"] for p in nxt] == ["gru/H16/seed0/T20"]  # lstm failed, flat
    assert nxt[0]["task.seq_len"] == design.LADDER[2] and nxt[0]["train.steps"] == 100


def test_points_sharing_a_program_are_queued_apart():
    lns = [Lineage(arm, 16, seed) for arm in ("gru", "lstm") for seed in (0, 1)]
    src = LengthSearch("adding", lns, lambda arm, h: 1e-2, base_cap=100, top=8)
    assert [p["workdir"] for p in src.initial()] == [
        "gru/H16/seed0/T10", "lstm/H16/seed0/T10", "gru/H16/seed1/T10", "lstm/H16/seed1/T10"]


def test_pack_seeds_queues_the_seeds_of_one_program_together():
    lns = [Lineage(arm, 16, seed) for arm in ("gru", "lstm") for seed in (0, 1)]
    src = LengthSearch("adding", lns, lambda arm, h: 1e-2, base_cap=100, top=8,
                       pack_seeds=True)
    assert [p["workdir"] for p in src.initial()] == [
        "gru/H16/seed0/T10", "gru/H16/seed1/T10", "lstm/H16/seed0/T10", "lstm/H16/seed1/T10"]


def test_the_extended_grid_climbs_past_the_top_only_where_it_censored():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "long_range_search.py"
    spec = importlib.util.spec_from_file_location("search", path)
    exp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exp)
    base, ext = exp.get_source("adding"), exp.get_source("adding:extended")
    assert set(ext.lineages) == {ln for ln in base.lineages if ln.arm in design.EXTENDED["arms"]
                                 and ln.hidden in design.EXTENDED["hidden"]}
    for h, t in ((64, 20480), (128, 10240)):
        assert design.LADDER[ext.top(h)] == t == 4 * design.LADDER[base.top(h)]
    assert ext.pack_seeds and not base.pack_seeds
    with pytest.raises(ValueError, match="adding:extended"):
        exp.get_source("copy:extended")


def test_the_cheapest_trials_are_queued_first():
    """Smaller T x H first, then smaller hidden size, then seed by seed."""
    lns = [Lineage("gru", h, seed) for h in (32, 16) for seed in (0, 1)]
    src = LengthSearch("adding", lns, lambda arm, h: 1e-2, base_cap=100, top=8)
    assert [p["workdir"] for p in src.initial()] == [
        "gru/H16/seed0/T10", "gru/H16/seed1/T10", "gru/H32/seed0/T10", "gru/H32/seed1/T10"]
    trials = [(lns[0], 4, 100), (lns[2], 6, 100), (lns[3], 2, 200), (lns[1], 2, 100)]
    assert [p["workdir"] for p in src._queued(trials)] == [
        "gru/H16/seed1/T20", "gru/H32/seed1/T20", "gru/H16/seed0/T80", "gru/H32/seed0/T40"]


def test_each_hidden_size_climbs_to_its_own_top():
    """A per-size top (a callable): a lineage solved at its size's top is done, one of
    another size with a higher top climbs on."""
    from gru_jax.harness.config import apply_overrides

    lns = [Lineage("gru", 16, 0), Lineage("gru", 32, 0)]
    src = LengthSearch("adding", lns, lambda arm, h: 1e-2, base_cap=100,
                       top=lambda h: 4 if h == 16 else 2)
    finished = []
    for p in src._queued((ln, r, 100) for ln in lns for r in (0, 2)):
        config = apply_overrides(design.base_config("adding"),
                                 {k: v for k, v in p.items() if k != "workdir"})
        finished.append((p, {"status": "done", "config": config.to_dict(), "solved": True,
                             "task": {"metric": "mse", "solved_at": 0.01},
                             "eval_history": [{"step": 10 * i, "mse": 0.001} for i in (1, 2, 3)]}))
    assert [p["workdir"] for p in src.next(finished)] == ["gru/H16/seed0/T40"]
