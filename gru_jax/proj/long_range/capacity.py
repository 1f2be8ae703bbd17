"""The copy task's capacity control: how many symbols each (arm, hidden size) recalls
at a short delay (design.CAPACITY), before the delay matters.

Per (arm, H, C) the better of the two rates (most seeds solved, then the higher
median best accuracy) decides; C is *held* when every seed solved at that rate
(accuracy >= 0.99 within the cap). The size's capacity is a bracket on the C
ladder: [largest C held with every smaller C held too, the next C tried].

Bits recalled: a recalled symbol that is right with probability a carries the
mutual information of a K-ary symmetric channel,
I(a) = log2 K + a log2 a + (1 - a) log2((1 - a) / (K - 1)) bits (Cover & Thomas,
ch. 7); a run recalls C I(a) bits at its best eval, and a size's bits are the
largest over C of the median over seeds at the better rate. Collins et al. 2017
measure about one real number stored per hidden unit; a symbol of K = 8 is 3 bits.

The copy length of the delay sweep per hidden size (`copy_lengths`): the
literature's C = 10 where every gated arm holds it, else the largest C every arm
holds: one C per size that its capacity is not what the delay sweep measures.

    python -m gru_jax.proj.long_range.capacity results/long_range/capacity
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence

from gru_jax.harness.files import read_json, write_json_atomic
from gru_jax.harness.summary import find_summaries, read_summary
from gru_jax.proj.long_range import design, solve

CHOICE_FILE = "copy_len.json"
LITERATURE_C = design.COPY_LEN  # Arjovsky et al. 2016; Tallec & Ollivier 2018 (K = 8)


@dataclasses.dataclass(frozen=True)
class CapacityRun:
    arm: str
    hidden: int
    copy_len: int
    num_symbols: int
    lr: float
    seed: int
    solved: bool
    accuracy: float  # the best eval accuracy on the recalled symbols
    wall_time_sec: float = 0.0


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (arm, H, C) at its better rate."""

    lr: float
    solved: int
    seeds: int
    accuracy: float  # median over seeds of the best eval accuracy
    bits: float  # median over seeds of C I(accuracy)

    @property
    def held(self) -> bool:
        return self.seeds > 0 and self.solved == self.seeds


def symbol_bits(accuracy: float, num_symbols: int) -> float:
    """I(a) in bits: what one recalled K-ary symbol right with probability a carries
    (0 at chance a = 1/K or below, log2 K at a = 1)."""
    k, a = num_symbols, min(max(accuracy, 1.0 / num_symbols), 1.0)
    miss = 0.0 if a >= 1.0 else (1 - a) * math.log2((1 - a) / (k - 1))
    return math.log2(k) + a * math.log2(a) + miss


def load(workdir: str | os.PathLike) -> list[CapacityRun]:
    """Every finished capacity run under `workdir`."""
    runs = []
    for run_dir in find_summaries(str(workdir)):
        s = read_summary(run_dir)
        if s is None or not s.finished:
            continue
        c = s.config
        accs = [e["accuracy"] for e in s.eval_history if math.isfinite(e.get("accuracy", math.nan))]
        runs.append(CapacityRun(
            arm=design.arm_of(c), hidden=c["model"]["hidden_size"],
            copy_len=c["task"]["copy_len"], num_symbols=c["task"]["num_symbols"],
            lr=float(c["train"]["learning_rate"]), seed=c["seed"],
            solved=solve.solved_within_cap(s),
            accuracy=max(accs, default=0.0), wall_time_sec=s.wall_time_sec))
    return runs


def cells(runs: Iterable[CapacityRun]) -> dict[tuple[str, int, int], Cell]:
    """{(arm, H, C): Cell at the better rate}."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(r.arm, r.hidden, r.copy_len)][r.lr].append(r)
    out = {}
    for key, by_lr in groups.items():
        def rank(lr, by_lr=by_lr):
            rs = by_lr[lr]
            return (sum(r.solved for r in rs), statistics.median(r.accuracy for r in rs), -lr)
        lr = max(by_lr, key=rank)
        rs = by_lr[lr]
        out[key] = Cell(lr, sum(r.solved for r in rs), len(rs),
                        statistics.median(r.accuracy for r in rs),
                        statistics.median(r.copy_len * symbol_bits(r.accuracy, r.num_symbols)
                                          for r in rs))
    return out


def held_bracket(table: dict, arm: str, hidden: int) -> tuple[int | None, int | None]:
    """(largest C held with every smaller C tried held too, the next C tried: not
    held); None where there is none (every C held: a lower bound; the smallest not
    held: an upper bound)."""
    lens = sorted(c for (a, h, c) in table if (a, h) == (arm, hidden))
    lo = None
    for c in lens:
        if not table[(arm, hidden, c)].held:
            return lo, c
        lo = c
    return lo, None


def bits_recalled(table: dict, arm: str, hidden: int) -> float | None:
    """The most bits the size recalls at any C (median over seeds at the better rate)."""
    bits = [cell.bits for (a, h, _), cell in table.items() if (a, h) == (arm, hidden)]
    return max(bits) if bits else None


def copy_lengths(table: dict, hidden: Sequence[int] = design.HIDDEN["copy"],
                 arms: Sequence[str] = design.CAPACITY["arms"]) -> dict[int, int]:
    """{H: the delay sweep's C}: LITERATURE_C where every arm holds it at H, else the
    largest C every arm holds (sizes where some arm holds none are left out)."""
    out = {}
    for h in hidden:
        held = [held_bracket(table, a, h)[0] for a in arms]
        if any(c is None for c in held):
            continue
        literature = all(table.get((a, h, LITERATURE_C)) and table[(a, h, LITERATURE_C)].held
                         for a in arms)
        out[h] = LITERATURE_C if literature else min(held)
    return out


def markdown(table: dict) -> str:
    """Per arm and size: the C bracket held at delay design.CAPACITY["delay"], the
    bits recalled and bits per unit; then accuracy per (arm, H) and C."""
    from gru_jax.harness.report.tables import markdown_table

    arms = [a for a in design.ARMS if any(k[0] == a for k in table)]
    sizes = sorted({k[1] for k in table})
    lens = sorted({k[2] for k in table})

    def held(arm, h):
        if not any(k[:2] == (arm, h) for k in table):
            return "-"
        lo, hi = held_bracket(table, arm, h)
        c = (f">={lo}" if hi is None else f"<{hi}" if lo is None else f"{lo}-{hi}")
        bits = bits_recalled(table, arm, h)
        return f"C {c}; {bits:.0f} bits ({bits / h:.2f}/unit)"

    rows = [[arm, *(held(arm, h) for h in sizes)] for arm in arms]
    acc_rows = [[arm, h, *(_acc(table.get((arm, h, c))) for c in lens)]
                for arm in arms for h in sizes]
    return "\n".join([
        markdown_table(["arm", *(f"H={h}" for h in sizes)], rows), "",
        "Best accuracy on the recalled symbols (median over seeds at the better rate; "
        "solved seeds / seeds):", "",
        markdown_table(["arm", "H", *(f"C={c}" for c in lens)], acc_rows,
                       "lr" + "l" * len(lens))])


def _acc(cell: Cell | None) -> str:
    return "-" if cell is None else f"{cell.accuracy:.3f} ({cell.solved}/{cell.seeds})"


def write_choice(workdir: str, path: str | None = None) -> dict:
    """The delay sweep's copy length per size from the runs under `workdir`, written
    to `path` (default <workdir>/copy_len.json) as {"<H>": C}; returns it."""
    choice = {str(h): c for h, c in copy_lengths(cells(load(workdir))).items()}
    write_json_atomic(path or os.path.join(workdir, CHOICE_FILE), choice)
    return choice


def read_choice(path: str) -> dict[int, int]:
    """{H: C} from a copy_len.json ({} where there is none yet)."""
    return {int(h): int(c) for h, c in read_json(path).items()} if os.path.exists(path) else {}


def study_copy_lengths(workdir: str, task: str) -> dict[int, int] | None:
    """What a copy experiment trains at: {H: C} from <workdir>/copy_len.json (the
    capacity control's folder); None for another task. ValueError if not chosen yet."""
    if task != "copy":
        return None
    path = os.path.join(workdir, CHOICE_FILE)
    choice = read_choice(path)
    if not choice:
        raise ValueError(f"copy needs the capacity control's copy lengths in {path} "
                         f"(experiments/long_range_capacity.py, then python -m "
                         f"gru_jax.proj.long_range.capacity {workdir})")
    return choice


def main(argv: list[str]) -> None:
    """python -m gru_jax.proj.long_range.capacity DIR: the table, and DIR/copy_len.json."""
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        raise SystemExit("usage: python -m gru_jax.proj.long_range.capacity DIR")
    runs = load(argv[1])
    print(markdown(cells(runs)))
    missing = choice_missing(runs)
    if missing:  # a partial control could hold a C that a later seed fails
        raise SystemExit(f"\n{missing} capacity runs that choose the copy length are "
                         f"not finished: no copy length chosen yet")
    print("\ndelay sweep copy length per H:", write_choice(argv[1]))


def choice_missing(runs: Sequence[CapacityRun]) -> int:
    """How many of the runs copy_lengths reads are not in `runs`: every point at the
    delay sweep's sizes with C <= LITERATURE_C (the choice is never longer, so the
    longer copies only measure bits and need not hold up the delay sweep)."""
    cap = design.CAPACITY
    done = {(r.arm, r.hidden, r.copy_len, r.lr, r.seed) for r in runs}
    need = {(a, h, c, lr, seed) for a in cap["arms"] for h in design.HIDDEN["copy"]
            for c in cap["copy_lens"] if c <= LITERATURE_C for lr in cap["lrs"]
            for seed in cap["seeds"]}
    return len(need - done)


if __name__ == "__main__":
    import sys

    main(sys.argv)
