"""The learning rate per (arm, hidden size): calibration runs and the rule that chooses.

The runs, two stages (design.py says why): stage 1 (`design.calibration_points`),
every arm and hidden size at a short reference length (design.CALIBRATION_T) with
every rate of design.LR_GRID; stage 2 (`design.refine_points`), at a length where
the task is hard (design.REFINE_T), the stage-1 choice and its neighbours. Two
seeds of their own (design.CALIBRATION_SEEDS), capped at design.CALIBRATION_CAP.
The study uses the stage-2 choice.

The rule (`choose`), per (arm, hidden size), over the rates: most seeds solved;
then the fewest steps to solve, summed over the seeds with an unsolved seed counted
as twice the cap; then the lowest final loss relative to the memoryless baseline,
averaged over the seeds (what decides among rates where nothing solves). A rate at
either end of the rates tried is flagged (`at_edge`): the optimum may lie outside.

Solved, here: the summary's verdict (its final eval at the threshold), the rule the
rates were chosen by and frozen under before the searches ran. The searches, their
report and the capacity control read `solve`'s stricter held-streak rule. Re-chosen
by it, three rates would move (stage 1: adding minGRU H = 128 and RNN H = 32; stage
2: copy chrono-LSTM H = 128, 0.01 -> 0.03) and void the searches run at them, so
the frozen choice stands, stated as it was made.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from collections import defaultdict

from gru_jax.harness.files import read_json, write_json_atomic
from gru_jax.harness.summary import find_summaries, read_summary
from gru_jax.proj.long_range import design

CHOICE_FILE = "lr.json"


@dataclasses.dataclass(frozen=True)
class CalibrationRun:
    task: str
    arm: str
    hidden: int
    lr: float
    seed: int
    solved: bool
    steps_to_solve: int | None
    cap: int
    rel_loss: float  # final eval loss / the memoryless baseline's


@dataclasses.dataclass(frozen=True)
class Choice:
    lr: float
    solved: int  # seeds solved at this rate
    seeds: int
    median_steps: float | None  # over the solved seeds
    rel_loss: float  # mean over the seeds
    at_edge: bool


def load(workdir: str) -> list[CalibrationRun]:
    """Every finished calibration run under `workdir`."""
    runs = []
    for run_dir in find_summaries(workdir):
        s = read_summary(run_dir)
        if s is None or not s.finished:
            continue
        c = s.config
        loss = s.final.get("loss", math.inf)
        base = s.task.baseline or 1.0
        runs.append(CalibrationRun(
            task=c["task"]["name"], arm=design.arm_of(c), hidden=c["model"]["hidden_size"],
            lr=float(c["train"]["learning_rate"]), seed=c["seed"], solved=s.solved,
            steps_to_solve=s.steps_to_solve, cap=c["train"]["steps"],
            rel_loss=loss / base if math.isfinite(loss) else math.inf))
    return runs


def _key(runs: list[CalibrationRun]) -> tuple:
    steps = sum(r.steps_to_solve if r.solved else 2 * r.cap for r in runs)
    return (-sum(r.solved for r in runs), steps, statistics.fmean(r.rel_loss for r in runs))


def choose(runs: list[CalibrationRun]) -> dict[tuple[str, str, int], Choice]:
    """{(task, arm, hidden): Choice} by the module's rule."""
    groups: dict[tuple, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(r.task, r.arm, r.hidden)][r.lr].append(r)
    out = {}
    for key, by_lr in groups.items():
        lr = min(by_lr, key=lambda v: (_key(by_lr[v]), v))
        best = by_lr[lr]
        solved = [r.steps_to_solve for r in best if r.solved]
        out[key] = Choice(lr=lr, solved=len(solved), seeds=len(best),
                          median_steps=statistics.median(solved) if solved else None,
                          rel_loss=statistics.fmean(r.rel_loss for r in best),
                          at_edge=len(by_lr) > 1 and lr in (min(by_lr), max(by_lr)))
    return out


def write_choices(workdir: str, path: str | None = None) -> dict:
    """Choose from the runs under `workdir` and write {task: {arm: {hidden: {...}}}}
    to `path` (default <workdir>/lr.json); returns it."""
    table: dict = {}
    for (task, arm, hidden), ch in sorted(choose(load(workdir)).items()):
        table.setdefault(task, {}).setdefault(arm, {})[str(hidden)] = dataclasses.asdict(ch)
    write_json_atomic(path or os.path.join(workdir, CHOICE_FILE), table)
    return table


def learning_rate(choices: dict, task: str, arm: str, hidden: int) -> float:
    """The chosen rate; KeyError names what has no calibration yet."""
    try:
        return float(choices[task][arm][str(hidden)]["lr"])
    except KeyError:
        raise KeyError(f"no calibrated learning rate for {task} {arm} H={hidden}; run the "
                       f"calibration (experiments/long_range_lr.py) first") from None


def read_choices(path: str) -> dict:
    return read_json(path) if os.path.exists(path) else {}


def chosen(choices: dict, task: str) -> dict[tuple[str, int], float]:
    """{(arm, hidden): rate} of `task` in a choices table."""
    return {(arm, int(h)): float(c["lr"]) for arm, by_h in choices.get(task, {}).items()
            for h, c in by_h.items()}


def markdown(choices: dict) -> str:
    """The chosen rates, per task a table: one row per arm, one column per hidden
    size; a cell is "lr (seeds solved/seeds)", ", edge" where the rate ends the grid."""
    from gru_jax.harness.report.tables import markdown_table

    out = []
    for task, arms in choices.items():
        sizes = sorted({int(h) for a in arms.values() for h in a})

        def cell(c):
            if c is None:
                return "-"
            edge = ", edge" if c["at_edge"] else ""
            return f"{c['lr']:g} ({c['solved']}/{c['seeds']}{edge})"

        rows = [[arm, *(cell(by_h.get(str(h))) for h in sizes)] for arm, by_h in arms.items()]
        out += [f"{task}:", "", markdown_table(["arm", *(f"H={h}" for h in sizes)], rows), ""]
    return "\n".join(out)


def main(argv: list[str]) -> None:
    """python -m gru_jax.proj.long_range.calibration DIR: choose from the runs under
    DIR, write DIR/lr.json, print the table."""
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        raise SystemExit("usage: python -m gru_jax.proj.long_range.calibration DIR")
    print(markdown(write_choices(argv[1])))


if __name__ == "__main__":
    import sys

    main(sys.argv)
