"""The second protocol's report: tables, figures, runs.csv and manifest of the study
under results/long_range (search/<task>, calibration/<task>_refine), and the README's
section between its long-range markers.

    python scripts/report.py --study=results/long_range --study_readme=README.md

Everything is read from the run folders; nothing is typed in. A lineage whose search
has not finished shows what it has so far and is counted as open.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from gru_jax.harness.report.tables import markdown_table, replace_section, write_csv
from gru_jax.proj.long_range import adaptive, analysis, capacity, design, searches, solve
from gru_jax.proj.long_range import costs as lr_costs
from gru_jax.proj.long_range import digits as lr_digits
from gru_jax.proj.long_range import figures as lr_figures
from gru_jax.proj.long_range.published import published_markdown

BEGIN, END = "<!-- long-range:begin -->", "<!-- long-range:end -->"
BUDGETS = {"adding": (1000, 2000, 4000, 8000), "copy": (2000, 4000, 8000, 16000)}
# looser / the protocol's / stricter thresholds, on the task's metric
THRESHOLDS = {"adding": (0.05, 0.01, 0.001), "copy": (0.95, 0.99, 0.999)}
RUN_FIELDS = ("task", "arm", "hidden", "seq_len", "seed", "solved", "steps_to_solve",
              "final_metric", "metric", "lr", "layers", "cap", "copy_len", "last_step",
              "num_params", "step_time_ms", "wall_time_sec", "folder", "device")


class Study:
    """One task's searches: runs, lineages, and the search's state per lineage."""

    def __init__(self, task: str, folder: str | os.PathLike, reduced: bool = False):
        self.task, self.folder, self.reduced = task, Path(folder), reduced
        self.runs = searches.load(folder)
        self.lineages = searches.lineages(self.runs)
        self.base_cap = design.REDUCED["cap"] if reduced else design.CAP[task]
        self.arms = [a for a in design.ARMS if any(k[0] == a for k in self.lineages)]
        self.hiddens = sorted({k[1] for k in self.lineages})

    def top_rung(self, hidden: int, extended: bool = False) -> int:
        """The highest rung the search climbs to at `hidden` (`extended`: the extended
        grid's, `design.EXTENDED`)."""
        if self.reduced:
            return design.REDUCED["top"]
        return design.top_rung(self.task, hidden, extended=extended)

    def top(self, hidden: int, extended: bool = False) -> int:
        return design.LADDER[self.top_rung(hidden, extended)]

    def extended(self, arm: str, hidden: int) -> bool:
        """Whether (arm, hidden) climbed past the top (the extended grid)."""
        return any(r.seq_len > self.top(hidden) for k in self.seeds_of(arm, hidden)
                   for r in self.lineages[k])

    def top_of(self, arm: str, hidden: int) -> int:
        """The longest T searched for (arm, hidden): the extended grid's top where it
        climbed there."""
        return self.top(hidden, self.extended(arm, hidden))

    @functools.cached_property
    def alphas(self) -> dict[str, analysis.AlphaFit | None]:
        """alpha per arm (a bootstrap: computed once, read by every table that shows it)."""
        return analysis.alpha_fits(self.by_arm())

    @functools.cached_property
    def at_cap(self) -> dict:
        """Each lineage's bracket at the cap."""
        return analysis.brackets(self.lineages)

    def by_arm(self) -> dict[str, list[searches.Run]]:
        out: dict[str, list] = defaultdict(list)
        for r in self.runs:
            out[r.arm].append(r)
        return {a: out[a] for a in self.arms}

    def searching(self, key) -> bool:
        """Whether the lineage's search would still run a trial."""
        outcomes = [adaptive.Outcome(r.rung, r.cap, r.solved, r.improving, r.diverged)
                    for r in self.lineages[key]]
        top = max(self.top_rung(key[1], self.extended(*key[:2])), max(o.rung for o in outcomes))
        return adaptive.next_trial(outcomes, self.base_cap, top) is not None

    def seeds_of(self, arm: str, hidden: int) -> list:
        return [k for k in self.lineages if k[:2] == (arm, hidden)]


def _table(study: Study, cell) -> str:
    rows = [[arm, *(cell(arm, h) for h in study.hiddens)] for arm in study.arms]
    return markdown_table(["arm", *(f"H={h}" for h in study.hiddens)], rows)


def bracket_markdown(study: Study, brackets, mark_open: bool = True) -> str:
    def cell(arm, h):
        keys = study.seeds_of(arm, h)
        if not keys:
            return "-"
        text = analysis.seeds_text([brackets[k] for k in keys])
        n_open = sum(study.searching(k) for k in keys) if mark_open else 0
        return text + (f" ({n_open} searching)" if n_open else "")
    return _table(study, cell)


def _tops(study: Study) -> str:
    """'T=20480 at H=16, 10240 at H=32' (one T: 'T=640'), then the extended tops where
    some (arm, size) climbed past it: "; the extended grid's 20480 at H=64 (gru)"."""
    tops = {h: study.top(h) for h in study.hiddens}
    if len(set(tops.values())) == 1:
        text = f"T={tops[study.hiddens[0]]}"
    else:
        text = "T=" + ", ".join(f"{t} at H={h}" for h, t in tops.items())
    ext = {h: [a for a in study.arms if study.extended(a, h)] for h in study.hiddens}
    if any(ext.values()):
        text += "; the extended grid's " + ", ".join(
            f"{study.top(h, True)} at H={h} ({', '.join(a)})" for h, a in ext.items() if a)
    return text


def censored_text(study: Study, brackets) -> str:
    """The (arm, size) pairs whose every seed's search ended solved at the top of the
    ladder searched: their boundary is censored by compute, not bracketed. Says how far
    under the cap they solved there, which is how far from a failure the top is."""
    pairs = [(a, h) for a in study.arms for h in study.hiddens
             if (keys := study.seeds_of(a, h)) and not any(study.searching(k) for k in keys)
             and all(brackets[k] == (study.top_of(a, h), None) for k in keys)]
    if not pairs:
        return ""
    steps: dict[str, list[int]] = defaultdict(list)
    for a, h in pairs:
        steps[a] += [r.steps_to_solve for k in study.seeds_of(a, h) for r in study.lineages[k]
                     if r.seq_len == study.top_of(a, h) and r.solved]
    spans = ", ".join(f"{a} {min(v)}" + (f"-{max(v)}" if max(v) > min(v) else "")
                      for a, v in steps.items())
    return (f"Censored by the ladder's top, not bracketed: "
            f"{', '.join(f'{a} H={h}' for a, h in pairs)}. Every seed solved the longest "
            f"length searched at its size ({_tops(study)}; the next rungs cost about 2x and "
            f"4x per step) within the cap, there in {spans} steps of the "
            f"{study.base_cap}-step cap; the steps-to-solve exponents below say how slowly "
            f"their cost in steps grows with T.\n")


def _est(e: analysis.Estimate | None) -> str:
    return "-" if e is None else f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"


def alpha_markdown(alphas: Mapping[str, analysis.AlphaFit | None]) -> str:
    rows = [[arm, _est(f.alpha), _est(f.beta), f"{f.n} ({f.censored})", f.lineages]
            if f else [arm, "-", "-", "-", "-"] for arm, f in alphas.items()]
    return markdown_table(["arm", "alpha (S ~ T^alpha)", "beta (S ~ H^beta)",
                           "runs (censored)", "lineages"], rows, "lllrr")


def growth_markdown(study: Study, brackets) -> str:
    rows = []
    for arm in study.arms:
        g = analysis.growth_fit({k: b for k, b in brackets.items() if k[0] == arm})
        n = sum(1 for k, (lo, hi) in brackets.items() if k[0] == arm and lo and hi)
        rows.append([arm, _est(g.b) if g else "-", n])
    return markdown_table(["arm", "b (T* ~ H^b)", "lineages bracketed"], rows, "llr")


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def horizon_markdown(study: Study) -> str:
    """dL/dh_t's horizon as a fraction of T, at init and at the end, at the longest
    T >= 500 each lineage ran (median over seeds)."""
    def cell(arm, h):
        init, end, ts = [], [], []
        for k in study.seeds_of(arm, h):
            long = [r for r in study.lineages[k] if r.seq_len >= 500]
            if long:
                r = long[-1]
                ts.append(r.seq_len)
                for xs, v in ((init, r.grad_horizon_init), (end, r.grad_horizon)):
                    xs.append(None if v is None else v / r.seq_len)
        if not ts:
            return "-"
        f = (lambda v: "-" if v is None else f"{v:.2f}")
        return f"{f(_median(init))} -> {f(_median(end))} (T={int(_median(ts))})"
    return _table(study, cell)


def plateau_markdown(study: Study) -> str:
    """Copy: per seed the plateau bracket (`analysis.plateau_bracket`), and the best loss
    over the memoryless baseline at each lineage's longest T (median over seeds)."""
    def cell(arm, h):
        keys = study.seeds_of(arm, h)
        if not keys:
            return "-"
        longest = [max(study.lineages[k], key=lambda r: r.seq_len) for k in keys]
        ratio = _median([analysis.loss_ratio(r) for r in longest])
        return (analysis.seeds_text([analysis.plateau_bracket(study.lineages[k]) for k in keys])
                + ("" if ratio is None else
                   f"; {ratio:.2f}x at T={int(_median([r.seq_len for r in longest]))}"))
    return _table(study, cell)


def run_rows(study: Study) -> list[dict]:
    rows = []
    for r in study.runs:
        final = r.history[-1].get(r.metric) if r.history else None
        rows.append({"task": r.task, "arm": r.arm, "hidden": r.hidden, "seq_len": r.seq_len,
                     "seed": r.seed, "solved": r.solved, "steps_to_solve": r.steps_to_solve,
                     "final_metric": final, "metric": r.metric, "lr": r.lr,
                     "layers": r.layers, "cap": r.cap, "copy_len": r.copy_len,
                     "last_step": r.last_step, "num_params": r.num_params,
                     "step_time_ms": None if r.step_time_ms is None else round(r.step_time_ms, 3),
                     "wall_time_sec": round(r.wall_time_sec, 2), "folder": r.folder,
                     "device": r.device})
    return rows


def core_hours(runs: Sequence[searches.Run], accelerator: bool = False) -> float:
    """The wall time of the runs on the CPU (`accelerator`: on any other device), in
    hours; a pack's wall once (each of its runs reports it)."""
    return sum(r.wall_time_sec / r.pack_size for r in runs
               if (r.device != "cpu") == accelerator) / 3600


def overhead(runs: Sequence[searches.Run]) -> float | None:
    """The CPU runs' wall time over their stepping time (steps x median step time):
    what compiling, evals, diagnostics and checkpoints add."""
    runs = [r for r in runs if r.device == "cpu"]
    stepping = sum(r.last_step * r.step_time_ms / 1000 for r in runs if r.step_time_ms)
    return sum(r.wall_time_sec for r in runs) / stepping if stepping else None


def task_markdown(study: Study, out: Path | None) -> str:
    """One task's section; writes its figures into `out` (None: the text alone)."""
    t = study.task
    if not study.runs:
        return f"### {t}\n\nNo runs yet (`experiments/long_range_search.py:{t}`).\n"
    by_arm = study.by_arm()
    alphas, at_cap = study.alphas, study.at_cap
    budgets = {b: analysis.brackets(study.lineages, budget=b) for b in BUDGETS[t]}
    n_pairs = sum(1 for a in study.arms for h in study.hiddens if study.seeds_of(a, h))
    both = sum(analysis.both_sides([at_cap[k] for k in study.seeds_of(a, h)])
               for a in study.arms for h in study.hiddens)
    open_ = sum(study.searching(k) for k in study.lineages)
    label = " (reduced grid)" if study.reduced else ""
    steps_png, budget_png = f"steps_{t}.png", f"budget_{t}.png"
    if out is not None:
        lr_figures.steps_figure(t, by_arm, alphas, out / steps_png,
                                f"{t}{label}: steps to solve against T")
        lr_figures.budget_figure(t, budgets, study.arms,
                                 {(a, h): study.top_of(a, h) for a in study.arms
                                  for h in study.hiddens},
                                 out / budget_png, f"{t}{label}: T*(budget) against hidden size")
    th = THRESHOLDS[t]
    h_big = study.hiddens[-1]
    def at_threshold(arm, x):
        seeds = {k: study.lineages[k] for k in study.seeds_of(arm, h_big)}
        return analysis.seeds_text(list(analysis.brackets(seeds, threshold=x).values())) or "-"
    thr_rows = [[arm, *(at_threshold(arm, x) for x in th)] for arm in study.arms]
    metric = study.runs[0].metric
    parts = [
        f"### {t}{label}",
        "",
        f"{len(study.runs)} runs in {len(study.lineages)} lineages (arm x hidden size x "
        f"seed), {open_} still searching; {core_hours(study.runs):.2f} core-hours of run "
        f"wall time. (arm, size) pairs with every seed bracketed from both sides: "
        f"{both} of {n_pairs}.",
        "",
        f"**Boundary T\\* per seed** at the cap ({study.base_cap} steps, {2 * study.base_cap} "
        f"where a still-improving run was extended): [longest solved, shortest failed] on "
        f"the ladder; `>=T`: solved up to T, the top searched ({_tops(study)}) or the search "
        f"so far; `<T`: failed at the first length. A run that diverged (a non-finite "
        f"loss) failed: {sum(r.diverged for r in study.runs)} of them.",
        "",
        bracket_markdown(study, at_cap),
        "",
        censored_text(study, at_cap),
        f"**Steps to solve against T**: log S = a + alpha log T + beta log H per arm, "
        f"solves as (s - {analysis.EVAL_EVERY}, s] (s: the first of {solve.SOLVED_EVALS} "
        f"evals in a row at the threshold), unsolved runs right-censored at their cap less "
        f"{analysis.UNHELD} steps; [95% bootstrap interval over lineages].",
        "",
        alpha_markdown(alphas),
        "",
        f"![steps to solve]({steps_png})",
        "",
        "**T\\*(budget)**: the same runs read at smaller step budgets (and 2x the cap "
        "where a run was extended); growth with hidden size, log T\\* = a + b log H over "
        "the lineages bracketed at the cap:",
        "",
        growth_markdown(study, at_cap),
        "",
        f"![T*(budget)]({budget_png})",
        "",
        f"**Threshold sensitivity** at H={h_big} ({metric} {th[0]:g} / {th[1]:g} "
        f"(the protocol's) / {th[2]:g}; a run that stopped solved before reaching a "
        f"stricter threshold leaves that side open; `?`: both sides open):",
        "",
        markdown_table(["arm", *(f"{metric} {x:g}" for x in th)], thr_rows),
        "",
        "**Gradient horizon** (the longest lag whose dL/dh_t is above 1e-3 of the "
        "largest), as a fraction of T, at initialisation -> at the end, at the longest "
        "T >= 500 each lineage ran (median over seeds; `-` at the end: not recorded, as "
        "for runs that stopped solved before the trainer recorded end-of-run "
        "diagnostics, commit 0131d6e):",
        "",
        horizon_markdown(study),
        "",
    ]
    if study.task == "copy":
        parts += [
            f"**The memoryless plateau** (the literature's criterion): per seed [longest T "
            f"whose best eval cross-entropy fell to {analysis.ESCAPED:g}x the memoryless "
            f"baseline C log 8 / (T + 2C), shortest T that did not] over the lengths the "
            f"search ran (it runs no length above the shortest it failed at the accuracy "
            f"threshold, so `>=T` is common); "
            f"then the best loss over that baseline at each lineage's longest T (median "
            f"over seeds; 1.00x: the loss of a predictor without memory):",
            "", plateau_markdown(study), ""]
    return "\n".join(parts)


def budget_tables(study: Study) -> str:
    out = []
    for b in BUDGETS[study.task]:
        out += [f"Budget {b} steps:", "",
                bracket_markdown(study, analysis.brackets(study.lineages, budget=b), False), ""]
    return "\n".join(out)


def rates_markdown(studies: Sequence[Study]) -> str:
    """The learning rate the runs trained at, per task, arm and hidden size."""
    out = []
    for s in studies:
        rates: dict = defaultdict(set)
        for r in s.runs:
            rates[(r.arm, r.hidden)].add(r.lr)
        out += [f"{s.task}:", "", _table(s, lambda a, h, rates=rates: ", ".join(
            f"{x:g}" for x in sorted(rates.get((a, h), ()))) or "-"), ""]
    return "\n".join(out)


def capacity_markdown(folder: Path) -> tuple[str, dict | None]:
    """The capacity control's section (empty where it has no runs) and its table."""
    runs = capacity.load(folder) if folder.is_dir() else []
    if not runs:
        return "", None
    table = capacity.cells(runs)
    expected = len(design.capacity_points())
    choice = capacity.read_choice(str(folder / capacity.CHOICE_FILE))
    cap = design.CAPACITY
    return "\n".join([
        "### copy: the capacity control",
        "",
        f"Copy at delay T = {cap['delay']} with C of K = {design.COPY_SYMBOLS} symbols to "
        f"recall, C in {', '.join(map(str, cap['copy_lens']))}; the better of the rates "
        f"{', '.join(f'{x:g}' for x in cap['lrs'])} per (arm, size, C); seeds "
        f"{', '.join(map(str, cap['seeds']))}; capped at {cap['cap']} steps. Held: every "
        f"seed at >= 0.99 accuracy. A cell: the C bracket [largest held, next not held] "
        f"(`>=C`: every C tried held), and the most bits recalled at any C "
        f"(C x the K-ary channel's mutual information at the run's best accuracy). "
        f"{len(runs)} of {expected} runs; "
        f"{sum(r.wall_time_sec for r in runs) / 3600:.2f} core-hours.",
        "",
        capacity.markdown(table),
        "",
        _choice_text(choice, capacity.choice_missing(runs), folder),
        "",
    ]), table


def costs_markdown(costs: dict | None, studies: Sequence[Study],
                   digits_runs: dict | None = None) -> str:
    """The seed article's RNN / LSTM / GRU table, measured: every arm at equal hidden
    size and at equal parameter count, step time and memory side by side
    (`costs.py`), beside the arm's adding boundary at that size and its alpha, and
    (where its runs exist) its sequential-digits accuracy (`digits.py`)."""
    if not costs:
        return ""
    study = next((s for s in studies if s.task == costs["task"]), None)
    at_cap = study.at_cap if study else {}
    alphas = study.alphas if study else {}
    ref = next(r for r in costs["rows"] if (r["arm"], r["hidden"]) == lr_costs.REFERENCE)

    def boundary(arm, h):
        keys = study.seeds_of(arm, h) if study else []
        return analysis.seeds_text([at_cap[k] for k in keys]) if keys else "not run"

    rows = [[r["arm"], r["hidden"], r["num_params"],
             f"{r['step_ms']:.2f} ({r['step_ms'] / ref['step_ms']:.2f}x)",
             "-" if r["memory_bytes"] is None else f"{r['memory_bytes'] / 2**20:.1f}",
             boundary(r["arm"], r["hidden"]), _est(alphas[r["arm"]].alpha)
             if alphas.get(r["arm"]) else "-"] for r in costs["rows"]]
    header, align, digits_text = (["arm", "H", "params", "step ms (x GRU)", "memory MiB",
                                   "boundary T*", "alpha"], "lrrrrll", "")
    if digits_runs:
        for row, r in zip(rows, costs["rows"], strict=True):
            runs = digits_runs.get((r["arm"], r["hidden"]), [])
            row += [f"{runs[0].lr:g}" if runs else "-", lr_digits.accuracy_text(runs),
                    lr_digits.steps_text(runs)]
        header += ["digits lr", "digits accuracy", "digits steps to 0.9"]
        align += "rll"
        digits_text = (
            f" Digits: sequential 8x8 digits (T=64, batch {design.DIGITS['batch']}), at the "
            f"rate chosen on a validation split, one seed (`results/long_range/calibration/"
            f"digits/lr.json`: where a rate is fast on that seed and unstable on others, "
            f"the seeds' spread shows it); test accuracy at step {design.DIGITS['cap']}, "
            f"the mean over seeds "
            f"[min, max], and the steps to 0.9 per seed (`>{design.DIGITS['cap']}`: not "
            f"reached); `experiments/long_range_digits.py`.")
    m = costs["machine"]
    ms = {(r["arm"], r["hidden"]): r["step_ms"] for r in costs["rows"]}
    twins = [ms[(a, h)] / ms[(f"chrono-{a}", h)] for a, h in ms if (f"chrono-{a}", h) in ms]
    noise = (f" A chrono arm runs its cell's program (chrono sets initial biases only): "
             f"their time ratios, {', '.join(f'{x:.2f}' for x in twins)}, show this "
             f"table's noise on the shared machine." if twins else "")
    return "\n".join([
        f"### Cost: every arm at equal size and at equal parameters ({costs['task']})", "",
        f"The GRU at H={ref['hidden']} ({ref['num_params']} parameters) is the reference; "
        f"the other size of each arm has the parameter count nearest it (within "
        f"{lr_costs.PARAMS_TOLERANCE:.0%}). Train step at T={costs['seq_len']}, batch "
        f"{costs['batch_size']}: the trainer's compiled loop, median of {costs['repeats']} "
        f"interleaved rounds of {costs['steps']} steps in one process ({m.get('cpu')}, "
        f"{m.get('cpu_count')} cores, jax {m.get('jax')}); memory: XLA's account of that "
        f"program. Boundary: T\\* at the cap per seed, as above.{noise}{digits_text}", "",
        markdown_table(header, rows, align), "",
        "`python -m gru_jax.proj.long_range.costs results/long_range` measured it.", ""])


def _choice_text(choice: dict, missing: int, folder: Path) -> str:
    if choice:
        return "The delay sweep's copy length per size (`copy_len.json`): " + ", ".join(
            f"H={h}: C={c}" for h, c in sorted(choice.items())) + "."
    if missing:
        return (f"The delay sweep's copy lengths are chosen once the {missing} unfinished "
                f"runs at C <= {capacity.LITERATURE_C} and H in "
                f"{', '.join(map(str, design.HIDDEN['copy']))} are.")
    return f"Not chosen yet: `python -m gru_jax.proj.long_range.capacity {folder}`."


def _overhead_text(studies: Sequence[Study]) -> str:
    x = overhead([r for s in studies for r in s.runs])
    return "" if x is None else f", {x:.2f}x their stepping time (steps x step time)"


def _gpu_text(studies: Sequence[Study]) -> str:
    """Which rows came from a GPU, and its hours."""
    gpu = [r for s in studies for r in s.runs if r.device != "cpu"]
    if not gpu:
        return ""
    devices = ", ".join(sorted({r.device for r in gpu}))
    return (f" {len(gpu)} runs of the extended grid (`design.EXTENDED`, "
            f"`experiments/long_range_search.py:adding:extended`, the seeds of one arm, size "
            f"and T packed into one program) ran on a lent GPU ({devices}): "
            f"{core_hours(gpu, accelerator=True):.2f} GPU-hours; runs.csv's `device` column "
            f"says where each row ran.")


def study_markdown(studies: Sequence[Study], root: Path, out: Path | None) -> str:
    """The study under `root` (its searches `studies`, its capacity control); the
    figures written into `out` (None: the text alone)."""
    sections = [task_markdown(s, out) for s in studies]
    cap_md, cap_table = capacity_markdown(root / "capacity")
    hours = sum(core_hours(s.runs) for s in studies)
    return "\n".join([
        "Learning rates the runs trained at (chosen per arm and size by the calibration's "
        "stage 2, `results/long_range/calibration/<task>_refine/lr.json`):",
        "",
        rates_markdown(studies),
        *sections,
        costs_markdown(lr_costs.read(root), studies, lr_digits.load(root / lr_digits.FOLDER)),
        cap_md,
        "### Published results",
        "",
        published_markdown({s.task: s for s in studies}, cap_table),
        "",
        f"Compute: {hours:.2f} core-hours of search runs (the CPU runs' wall time, a pack's once; "
        f"two workers on the 2-core CPU machine){_overhead_text(studies)}."
        + _gpu_text(studies),
    ])


def write_study_report(root: str | os.PathLike, *, reduced: bool = False,
                       readme: str | None = None) -> str:
    """Write report.md, runs.csv, manifest.json and the figures into
    <root>/search; `readme`: also render the README's section. Returns the
    markdown."""
    root = Path(root)
    out = root / "search"
    out.mkdir(parents=True, exist_ok=True)
    studies = load_studies(out, reduced)
    md = study_markdown(studies, root, out)
    (out / "report.md").write_text(
        "# The long-range study, second protocol\n\n" + md + "\n\n## T*(budget), every "
        "budget\n\n" + "\n".join(budget_tables(s) for s in studies if s.runs) + "\n")
    write_csv([row for s in studies for row in run_rows(s)], out / "runs.csv", RUN_FIELDS)
    manifest = {"protocol": "second (gru_jax/proj/long_range/design.py)",
                "reduced": reduced,
                "runs": {s.task: len(s.runs) for s in studies},
                "core_hours": round(sum(core_hours(s.runs) for s in studies), 3),
                "gpu_hours": round(sum(core_hours(s.runs, accelerator=True) for s in studies), 3),
                "wall_over_stepping": overhead([r for s in studies for r in s.runs]),
                "command": "python scripts/report.py --study=" + str(root)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if readme is not None:
        text = Path(readme).read_text()
        Path(readme).write_text(replace_section(text, BEGIN, END, _linked(md, out, readme)))
    return md


def load_studies(out: Path, reduced: bool = False) -> list[Study]:
    """The task studies under a search folder (adding, copy: those that exist)."""
    return [Study(t, out / t, reduced) for t in ("adding", "copy") if (out / t).is_dir()]


def _linked(md: str, out: Path, readme: str) -> str:
    """The markdown with its figure links relative to the README's folder."""
    return md.replace("](", f"]({os.path.relpath(out, Path(readme).parent)}/")


def readme_section(root: str | os.PathLike, readme: str) -> str:
    """What `write_study_report(root, readme=readme)` renders between the markers,
    without writing anything (the test's re-render: the text, not the figures)."""
    out = Path(root) / "search"
    return _linked(study_markdown(load_studies(out), Path(root), None), out, readme)
