"""The second protocol's length searches, read back from their folders.

A search folder (results/long_range/search/<task>) holds one run per (arm, hidden
size, seed, T) in ``<arm>/H<hidden>/seed<seed>/T<T>`` (`adaptive.Lineage.folder`).
`load` reads every finished run into a `Run`; `reread` re-decides a run at another
step budget or threshold from its stored eval history; `bracket` turns a lineage's
decisions into [longest solved, shortest failed] on the length ladder.

Solved, everywhere in the analysis and in the search: `solve`'s rule (SOLVED_EVALS
evals in a row at the threshold, the last by the budget; steps to solve: the first
of them). Failed: the run trained through the budget without such a streak. A run
that stopped before the budget without one (stopped solved at the protocol's
threshold, but read at a stricter one) is undecided and leaves the bracket open on
that side.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from gru_jax.harness.summary import SUMMARY_FILE, read_summary
from gru_jax.proj.long_range import design, solve
from gru_jax.proj.long_range.adaptive import still_improving

Key = tuple[str, int, int]  # (arm, hidden, seed): a lineage


@dataclasses.dataclass(frozen=True)
class Run:
    """One finished run of a search."""

    task: str
    arm: str
    hidden: int
    seed: int
    seq_len: int  # T, the dependency length (adding: sequence length; copy: delay)
    cap: int  # train.steps it was allowed (2x the base cap once extended)
    lr: float
    layers: int
    copy_len: int | None
    held: solve.Solve | None  # its first held streak at the task's threshold
    last_step: int  # where it stopped
    diverged: bool  # stopped on a non-finite loss or gradient: failed at any later budget
    metric: str  # "mse" | "accuracy"
    threshold: float
    baseline: float | None  # the memoryless predictor's metric
    history: tuple[Mapping, ...]  # eval history: {"step", metric, "loss", ...}
    num_params: int
    step_time_ms: float | None
    wall_time_sec: float
    grad_horizon_init: int | None
    grad_horizon: int | None  # at the end of training
    folder: str
    device: str = "cpu"  # where it ran: "cpu", or the GPU's name (summary's machine)
    pack_size: int = 1  # runs trained as one program with it (each has the pack's wall)

    @property
    def key(self) -> Key:
        return self.arm, self.hidden, self.seed

    @property
    def rung(self) -> int:
        return design.LADDER.index(self.seq_len)

    @property
    def steps_to_solve(self) -> int | None:
        """The first eval of its held streak."""
        return self.held.start if self.held else None

    @property
    def solved(self) -> bool:
        """Solved by its cap (`solve`'s rule): what the search decided on."""
        return solve.within(self.held, self.cap)

    @property
    def improving(self) -> bool:
        return still_improving(self.history, self.metric, self.cap)


def _run(folder: Path, root: Path) -> Run | None:
    s = read_summary(folder)
    if s is None or not s.finished:
        return None
    c, t = s.config, s.task
    seq_len = c["task"]["seq_len"]
    if seq_len not in design.LADDER:
        return None
    return Run(
        task=c["task"]["name"], arm=design.arm_of(c), hidden=c["model"]["hidden_size"],
        seed=c["seed"], seq_len=seq_len, cap=c["train"]["steps"],
        lr=float(c["train"]["learning_rate"]), layers=c["model"].get("num_layers", 1),
        copy_len=c["task"].get("copy_len") if c["task"]["name"] == "copy" else None,
        held=solve.summary_solve(s), last_step=int(s.step), diverged=s.status == "diverged",
        metric=t.metric, threshold=float(t.solved_at), baseline=t.baseline,
        history=tuple(s.eval_history or ()), num_params=int(s.num_params or 0),
        step_time_ms=s.step_time_ms, wall_time_sec=float(s.wall_time_sec or 0.0),
        grad_horizon_init=s.grad_horizon_init, grad_horizon=s.grad_horizon,
        folder=folder.relative_to(root).as_posix(), device=_device(s.machine),
        pack_size=int(s.pack_size or 1))


def _device(machine: Mapping) -> str:
    backend = machine.get("backend", "cpu")
    return "cpu" if backend == "cpu" else machine.get("device_kind", backend)


def load(folder: str | Path) -> list[Run]:
    """Every finished run under a search folder, sorted by (arm, hidden, seed, T)."""
    root = Path(folder)
    runs = [r for f in root.rglob(SUMMARY_FILE) if (r := _run(f.parent, root)) is not None]
    return sorted(runs, key=lambda r: (list(design.ARMS).index(r.arm), r.hidden, r.seed,
                                       r.seq_len))


def lineages(runs: Iterable[Run]) -> dict[Key, list[Run]]:
    """Runs grouped by lineage (arm, hidden, seed), each sorted by T."""
    out: dict[Key, list[Run]] = defaultdict(list)
    for r in runs:
        out[r.key].append(r)
    return {k: sorted(v, key=lambda r: r.seq_len) for k, v in sorted(
        out.items(), key=lambda kv: (list(design.ARMS).index(kv[0][0]), *kv[0][1:]))}


def first_solve(run: Run, threshold: float | None = None) -> int | None:
    """Steps to solve (`solve`'s rule) at `threshold` (default: the task's), or None."""
    held = _held(run, threshold)
    return held.start if held else None


def _held(run: Run, threshold: float | None) -> solve.Solve | None:
    if threshold is None:
        return run.held
    return solve.first_solve(run.history, run.metric, threshold)


def reread(run: Run, budget: int | None = None, threshold: float | None = None
           ) -> bool | None:
    """The run re-decided at a step budget (default: its cap) and threshold:
    True solved, False failed (at any budget once it diverged: it cannot go on), None
    undecided (it stopped before the budget, solved at a looser threshold)."""
    budget = run.cap if budget is None else budget
    if solve.within(_held(run, threshold), budget):
        return True
    return False if run.last_step >= budget or run.diverged else None


def bracket(decided: Mapping[int, bool | None]) -> tuple[int | None, int | None]:
    """(longest solved T below the shortest failed T, shortest failed T) of one
    lineage's {T: decision}; None for an open side. Undecided lengths are skipped; a
    solve above the first failure (seed noise) does not move the bracket."""
    failed = [t for t, d in decided.items() if d is False]
    hi = min(failed) if failed else None
    solved = [t for t, d in decided.items() if d and (hi is None or t < hi)]
    return (max(solved) if solved else None), hi


def lineage_bracket(runs: Sequence[Run], budget: int | None = None,
                    threshold: float | None = None) -> tuple[int | None, int | None]:
    """One lineage's bracket at a budget and threshold (defaults: each run's cap and
    the task's threshold, where `solved` means solved by the cap)."""
    return bracket({r.seq_len: reread(r, budget, threshold) for r in runs})
