"""The long-range study's second protocol: arms, tasks, budgets, the length ladder
and the learning-rate calibration grid. Every run of the study is `point(...)` on
top of `base_config(task)`.

Every run:

* AdamW (weight decay 1e-4 on kernels), global-norm clip 1.0, linear warmup over
  100 steps, then a CONSTANT learning rate: a run capped at B steps is the prefix
  of one capped at 2B, so a cap is raised by resuming the run (`train.steps` is
  resumable), and steps-to-solve is not set by a schedule's end.
* The learning rate per (arm, hidden size), chosen by `calibration.choose` from
  LR_GRID on the calibration runs (their own seeds, CALIBRATION_SEEDS).
* Eval every 100 steps on 1024 held-out examples (one fixed batch for every run);
  gradient diagnostics every 1000 steps (and at the start and the end). A run
  stops after SOLVED_EVALS evals in a row at the threshold, so the eval history
  holds the evals past the first solve, where stricter thresholds are read.
* adding (Hochreiter & Schmidhuber 1997): length T, batch 32, solved at eval
  MSE <= 0.01 (predicting the mean scores 0.167).
* copy (Arjovsky et al. 2016; Tallec & Ollivier 2018): C symbols of K = 8, delay T,
  input length T + 2C, batch 64, solved at >= 0.99 accuracy on the recalled
  symbols; the eval history also keeps the cross-entropy, against the memoryless
  baseline C log 8 / (T + 2C). C per hidden size is the capacity control's choice
  (`capacity.copy_lengths`: the literature's C = 10 where the size holds it at a
  short delay, else the largest C it holds), so the delay sweep measures memory
  over time, not how many symbols fit in the state.

* digits (a row of the comparison table, not a length search): scikit-learn's 8x8
  digits read one pixel per step (T = 64), batch 64, DIGITS["cap"] steps, solved at
  test accuracy >= 0.9. The rate per (arm, size) from LR_GRID on the validation split
  (300 train images held out; seed 100, stopping once solved), then the study's seeds
  on the test images for the whole cap, so the final accuracy is read at one budget.

Arms: gru, chrono-gru, lstm (forget-gate bias 1, Jozefowicz et al. 2015),
chrono-lstm (Tallec & Ollivier's T_max: the length T on adding, 3T/2 on copy;
chrono-gru uses the same T_max), the tanh rnn, mingru stacked 3 layers deep as
Feng et al. 2024 stack it, and the one-layer minGRU as an ablation at H = 64.
"""

from __future__ import annotations

from typing import Any

from gru_jax.proj.long_range.solve import SOLVED_EVALS

ARMS: dict[str, dict[str, Any]] = {
    "gru": {"model.cell": "gru"},
    "chrono-gru": {"model.cell": "gru", "model.chrono": True},
    "lstm": {"model.cell": "lstm"},
    "chrono-lstm": {"model.cell": "lstm", "model.chrono": True},
    "rnn": {"model.cell": "rnn"},
    "mingru": {"model.cell": "mingru", "model.num_layers": 3},
    "mingru-1": {"model.cell": "mingru", "model.num_layers": 1},
}
ARM_HIDDEN = {"mingru-1": (64,)}  # an ablation: fewer sizes than the other arms
HIDDEN = {"adding": (16, 32, 64, 128), "copy": (64, 128)}
SEEDS = (0, 1, 2)

# One fixed geometric ladder of lengths (ratio sqrt 2): every search picks its T from
# it, so compiled programs are shared across arms and seeds, and a bracket
# [longest solved, shortest failed] is one rung wide at the search's resolution.
LADDER = tuple(int(round(10 * 2 ** (k / 2))) for k in range(23))  # 10, 14, 20, ..., 20480

# The highest length searched, a compute bound (a lineage that solves there is censored,
# a lower bound). copy: T = 640. adding: at about equal time per step across hidden
# sizes, T x H <= 2560 x 128 (on the 2-core CPU a GRU step takes 0.25 s at T = 20480,
# H = 16, and 0.27-0.55 s at 2560, H = 128), so the small sizes, whose gated arms
# solved T = 2560 in a tenth of the cap, search up to 8x longer.
# Raising a top resumes a search: the lineages solved at the old top climb on.
TOP_COST = {"adding": 2560 * 128}
TOP_COPY = 12  # rung: T = 640


# The extended grid (`experiments/long_range_search.py:adding:extended`, first run on a
# lent GPU) climbs the lineages the top censored at the two largest sizes (the gated arms
# and the one-layer minGRU solve it in a few hundred steps) EXTRA_RUNGS more rungs: x4 in
# T, to 20480 at H = 64 and 10240 at H = 128.
EXTENDED = {"arms": ("gru", "chrono-gru", "chrono-lstm", "mingru-1"), "hidden": (64, 128)}
EXTRA_RUNGS = 4


def top_rung(task: str, hidden: int, extended: bool = False) -> int:
    """The highest rung of LADDER searched for `task` at hidden size `hidden`:
    adding 20480 / 10240 / 5120 / 2560 at H = 16 / 32 / 64 / 128; copy 640. `extended`: the
    extended grid's top, EXTRA_RUNGS higher (adding only)."""
    if task not in TOP_COST:
        return TOP_COPY
    top = max(r for r, t in enumerate(LADDER) if t * hidden <= TOP_COST[task])
    return min(top + EXTRA_RUNGS, len(LADDER) - 1) if extended else top


CAP = {"adding": 4000, "copy": 8000}  # steps; raised once to 2x (see adaptive.py)
# `make study`'s reduced grid of the searches: three arms at one size, two seeds (the
# fewest that give alpha a bootstrap over lineages), the ladder's rungs 0..4 (T <= 40),
# a cap of 1000 steps (2000 once extended)
REDUCED = {"arms": ("gru", "lstm", "rnn"), "hidden": (16,), "seeds": (0, 1), "top": 4,
           "cap": 1000}
# The learning-rate calibration, in two stages. Stage 1: every rate of LR_GRID at a
# short reference length. Stage 2 ("refine"): at a length where the task is hard,
# the stage-1 choice and its two neighbours on LR_LADDER. Why two: at adding T = 50
# every gated arm solves within about 200 steps at every rate from 3e-3 up, so stage 1
# alone picks the grid's top by a tie-break, not by what long lengths need.
LR_LADDER = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # half-decades
LR_GRID = LR_LADDER[1:6]
CALIBRATION_SEEDS = (100, 101)  # not the study's seeds: the choice is not fitted to them
CALIBRATION_T = {"adding": 50, "copy": 20}  # stage 1
REFINE_T = {"adding": 200, "copy": 40}  # stage 2
CALIBRATION_CAP = {"adding": 4000, "copy": 6000}
COPY_LEN, COPY_SYMBOLS = 10, 8


# The copy task's capacity control: at a short delay, how many symbols each size
# recalls (Collins et al. 2017: about one number per unit), best of two rates.
# C = 10 is the literature's copy length (design.COPY_LEN): whether a size holds it is
# measured, not interpolated.
CAPACITY = {"delay": 10, "copy_lens": (2, 4, 8, 10, 16, 32), "arms": ("gru", "lstm"),
            "hidden": (16, 32, 64, 128), "lrs": (3e-3, 1e-2), "seeds": (0, 1), "cap": 6000}


# digits: the grid runs up to 0.1 (at 3e-2, the stage-1 grid's top, most gated arms sat at its edge)
DIGITS = {"cap": 2000, "batch": 64, "calibration_seeds": (100,), "lrs": LR_LADDER[1:]}


def base_config(task: str):
    """The protocol's config for `task` ("adding" | "copy" | "digits"); points override
    model.cell, model.hidden_size, task.seq_len, seed, train.learning_rate."""
    from gru_jax.harness.config import base_config as harness_base

    config = harness_base(task)
    if task != "digits":  # digits has one length, 64
        config.task.seq_len = CALIBRATION_T[task]
    if task == "copy":
        config.task.copy_len, config.task.num_symbols = COPY_LEN, COPY_SYMBOLS
    tc = config.train
    tc.schedule, tc.warmup_steps, tc.learning_rate = "constant", 100, 1e-2
    tc.batch_size = 32 if task == "adding" else 64
    tc.steps = DIGITS["cap"] if task == "digits" else CAP[task]
    tc.eval_every, tc.eval_size, tc.diagnose_every = 100, 1024, 1000
    tc.checkpoint_every, tc.stop_when_solved = 1000, SOLVED_EVALS
    return config


def hidden_sizes(task: str, arm: str) -> tuple[int, ...]:
    return ARM_HIDDEN.get(arm, HIDDEN[task])


def chrono_t_max(task: str, seq_len: int) -> float:
    """Tallec & Ollivier's T_max: 3T/2 on copy, T on the adding problem (and digits)."""
    return 1.5 * seq_len if task == "copy" else float(seq_len)


def point(task: str, arm: str, hidden: int, seq_len: int, seed: int, lr: float,
          steps: int | None = None, copy_len: int | None = None) -> dict[str, Any]:
    """The overrides of one run (dotted keys) on top of `base_config(task)`;
    `copy_len`: copy's C where it is not COPY_LEN (the capacity control's choice)."""
    p = {**ARMS[arm], "model.hidden_size": hidden, "task.seq_len": seq_len, "seed": seed,
         "train.learning_rate": lr}
    if copy_len is not None:
        p["task.copy_len"] = copy_len
    if p.get("model.chrono"):
        p["model.chrono_t_max"] = chrono_t_max(task, seq_len)
    if steps is not None:
        p["train.steps"] = steps
    return p


def arm_of(config: dict) -> str:
    """The arm a run's (nested) config belongs to."""
    m = config["model"]
    for name, over in ARMS.items():
        if all(m.get(k.split(".", 1)[1]) == v for k, v in over.items()) and (
                "model.chrono" in over or not m.get("chrono")) and (
                "model.num_layers" in over or m.get("num_layers", 1) == 1):
            return name
    raise ValueError(f"no arm of the study has model {m}")


def calibration_points(task: str, arms=tuple(ARMS), hidden=None, lrs=LR_GRID,
                       seeds=CALIBRATION_SEEDS, copy_len=None) -> list[dict[str, Any]]:
    """Stage 1: every (arm, hidden size, rate, seed) at CALIBRATION_T[task];
    `copy_len`: {hidden: C} (copy; sizes it leaves out are not calibrated)."""
    # Seeds and rates outermost: the runs of one program (one arm and size) are far
    # apart in the queue, so two workers rarely compile the same program at once.
    return [point(task, arm, h, CALIBRATION_T[task], seed, lr, CALIBRATION_CAP[task],
                  copy_len and copy_len[h])
            for seed in seeds for lr in lrs for arm in arms
            for h in (hidden or hidden_sizes(task, arm)) if copy_len is None or h in copy_len]


def neighbours(lr: float) -> tuple[float, ...]:
    """`lr` and the rates next to it on LR_LADDER."""
    i = min(range(len(LR_LADDER)), key=lambda j: abs(LR_LADDER[j] / lr - 1))
    return LR_LADDER[max(i - 1, 0): i + 2]


def refine_points(task: str, stage1: dict[tuple[str, int], float],
                  seeds=CALIBRATION_SEEDS, copy_len=None) -> list[dict[str, Any]]:
    """Stage 2: per (arm, hidden) of `stage1` ({(arm, hidden): chosen rate}), the
    choice and its neighbours at REFINE_T[task], every seed (`copy_len` as stage 1's)."""
    # Seeds, then the neighbour's place (lower, chosen, upper) outermost: the rates of
    # one arm and size (one program) are far apart in the queue, as in stage 1.
    return [point(task, arm, h, REFINE_T[task], seed, lr, CALIBRATION_CAP[task],
                  copy_len and copy_len[h])
            for seed in seeds for i in range(3) for (arm, h), chosen in stage1.items()
            for lr in neighbours(chosen)[i:i + 1]]


def capacity_points(copy_lens=CAPACITY["copy_lens"], arms=CAPACITY["arms"],
                    hidden=CAPACITY["hidden"], lrs=CAPACITY["lrs"],
                    seeds=CAPACITY["seeds"]) -> list[dict[str, Any]]:
    """Copy at delay CAPACITY["delay"] over C (copy_len) x arm x hidden x rate x seed."""
    # C by C (the short copies, which choose the delay sweep's length, first); within
    # one C the runs of one program (arm and size) are far apart in the queue.
    return [point("copy", arm, h, CAPACITY["delay"], seed, lr, CAPACITY["cap"], c)
            for c in copy_lens for seed in seeds for lr in lrs for arm in arms for h in hidden]


def digits_points(pairs, lrs: dict[tuple[str, int], float] | None = None
                  ) -> list[dict[str, Any]]:
    """Sequential digits for every (arm, hidden) of `pairs`. Without `lrs`, the
    calibration: every rate of DIGITS["lrs"] on the validation split, its seeds,
    stopping once solved; with `lrs` ({(arm, hidden): rate}), the study's SEEDS on
    the test images for the whole cap (no early stop)."""
    if lrs is None:
        return [{**point("digits", arm, h, 64, seed, lr), "task.split": "validation"}
                for seed in DIGITS["calibration_seeds"] for lr in DIGITS["lrs"]
                for arm, h in pairs]
    return [{**point("digits", arm, h, 64, seed, lrs[(arm, h)]), "train.stop_when_solved": 0}
            for seed in SEEDS for arm, h in pairs if (arm, h) in lrs]
