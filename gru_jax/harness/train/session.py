"""A training session: the runs it trains together (`Member`: config, files, record,
how it ended) and what the loop shares (`Session`: the task, the compiled programs
placed on the data mesh, the clock), restored from the members' checkpoints."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gru_jax.harness import diagnostics, steps, tb
from gru_jax.harness.checkpoint import Checkpointer
from gru_jax.harness.chrono import PAUSES, TOTALS, Chrono
from gru_jax.harness.distributed import is_primary, replicated_global
from gru_jax.harness.keys import NOT_HPARAMS, flatten
from gru_jax.harness.machine import machine_info, peak_memory
from gru_jax.harness.summary import RunSummary, TaskInfo
from gru_jax.harness.tasks.base import Task
from gru_jax.harness.train.programs import programs

log = logging.getLogger(__name__)


class Unpackable(Exception):
    """The members' checkpoints are at different steps: run them one by one."""


def fresh_record() -> dict:
    """What a checkpoint keeps of a run besides its state (its "meta")."""
    return {"eval_history": [], "steps_to_solve": None, "grad_horizon": None,
            "grad_norms": None, "grad_horizon_init": None, "grad_norms_init": None,
            "grad_horizons": [], "solved_streak": 0, **dict.fromkeys(TOTALS, 0)}


@dataclasses.dataclass(eq=False)
class Member:
    """One run of a session: its config, files, record and how it ended."""

    config: Any
    workdir: str
    ckpt: Checkpointer
    record: dict = dataclasses.field(default_factory=fresh_record)
    writer: Any = None  # gru_jax.harness.tb.Writer, once the start step is known
    resumed_from: int | None = None
    status: str = "done"
    stop_reason: str | None = None  # "solved" when train.stop_when_solved ended it
    diverged_at: int | None = None
    error: str | None = None
    stopped_at: int | None = None  # the step a member that stopped early stays at
    summary: RunSummary | None = None  # set once finished (and written)

    @classmethod
    def open(cls, config, workdir: str) -> Member:
        tc = config.train
        return cls(config, workdir, Checkpointer(workdir, keep=tc.keep_checkpoints,
                                                 every=tc.checkpoint_every))

    @property
    def history(self) -> list[dict]:
        return self.record["eval_history"]

    def keys(self) -> tuple[jax.Array, jax.Array]:
        """(init key, data key) from the seed."""
        root = jax.random.key(self.config.seed)
        return jax.random.fold_in(root, 0), jax.random.fold_in(root, 1)

    def restore(self, fresh):
        """The state of the latest checkpoint (`fresh` if none); the record with it."""
        restored = self.ckpt.restore_latest(fresh)
        if restored is None:
            return fresh
        step, state, meta = restored
        self.resumed_from = int(step)
        self.record.update(meta)
        log.info("resuming %s from the checkpoint at step %d", self.workdir, step)
        return state

    def record_eval(self, step: int, ev: dict, task: Task) -> None:
        """Add an eval at `step` to the record."""
        r = self.record
        r["eval_history"].append({"step": int(step), **ev})
        solved = bool(math.isfinite(ev[task.metric]) and task.solved(ev))
        if solved and r["steps_to_solve"] is None:
            r["steps_to_solve"] = int(step)
        r["solved_streak"] = r["solved_streak"] + 1 if solved else 0

    def record_diagnostics(self, step: int, norms: np.ndarray) -> int:
        """Add the ||dL/dh_t|| curve at `step` to the record; returns its horizon."""
        r = self.record
        horizon = int(diagnostics.grad_horizon(norms))
        r["grad_horizon"], r["grad_norms"] = horizon, [float(v) for v in norms]
        r["grad_horizons"].append([int(step), horizon])
        return horizon

    def median_horizon(self) -> int | None:
        """Median of the gradient horizons at the evals so far (the lower median)."""
        hs = sorted(h for _, h in self.record["grad_horizons"])
        return int(hs[(len(hs) - 1) // 2]) if hs else None

    def open_writer(self, start: int) -> None:
        from gru_jax.harness.tb import NullWriter

        if not is_primary():  # one TensorBoard run per run, not per process
            self.writer = NullWriter()
            return
        # Steps up to `start` were logged by the session that saved the checkpoint; later
        # ones by a killed session may be stale and get logged again: TensorBoard drops them.
        self.writer = tb.create_writer(self.workdir, purge_step=start + 1)
        if start == 0:
            self.writer.write_hparams({k: v for k, v in flatten(self.config).items()
                                       if k not in NOT_HPARAMS})

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.ckpt.close()


def unit_rate(config):
    """`config` with the schedule's peak at 1: each run's learning rate is its scale."""
    config = config.copy_and_resolve_references()
    config.train.learning_rate = 1.0
    return config


def restore(members: list[Member], config, task: Task):
    """Every member's latest checkpoint (or a fresh state), stacked [K, ...].
    Unpackable if the members' checkpoints are at different steps."""
    fresh = steps.create_train_state(jnp.stack([m.keys()[0] for m in members]), config, task)
    states = [m.restore(steps.unstack(fresh, i)) for i, m in enumerate(members)]
    at = {int(s.step) for s in states}
    if len(at) > 1:
        raise Unpackable(f"checkpoints at different steps {sorted(at)}")
    return steps.stack(states)


@dataclasses.dataclass
class Session:
    """What the loop shares: the task, the train config, the members, the compiled
    programs (train, evaluate, diagnose) and the clock."""

    task: Task
    tc: Any
    members: list[Member]
    train: Callable  # state [K] -> (state, metrics [K])
    evaluate: Callable  # state [K] -> eval metrics [K]
    diagnose: Callable  # state [K] -> diagnostics [K]
    start: int
    num_params: int
    step_memory: int | None
    step: int = 0  # the step the state is at
    chrono: Chrono = dataclasses.field(default_factory=Chrono)

    @classmethod
    def compile(cls, state, members, task, config, train_step, eval_step):
        """(session, state): the state placed on the data mesh (batches sharded on the
        batch axis, the state replicated: a no-op on one device) and the programs
        compiled (or taken from this process's cache: runs of one shape share them)."""
        chrono = Chrono()
        with chrono.paused("compile_sec"):  # not training time (the clock starts later)
            _, replicated = steps.data_mesh()
            keys = jnp.stack([m.keys()[1] for m in members])
            # Data keys and learning rates are arguments, not constants of the program (the
            # state's schedule peaks at 1: `unit_rate`), so runs that differ only in them
            # share one executable.
            scales = jnp.asarray([m.config.train.learning_rate for m in members], jnp.float32)
            # Every process holds the same values: each places its local copy and the
            # pieces form one global array (device_put cannot reach other processes).
            state, keys, scales = (
                jax.device_put((state, keys, scales), replicated) if jax.process_count() == 1
                else jax.tree_util.tree_map(lambda a: replicated_global(a, replicated),
                                            (state, keys, scales)))
            progs = programs(state, keys, scales, task, config, train_step, eval_step)
            # The cached programs were traced with their first state's static fields (the
            # model, optimiser and schedule functions): equal in value, and now identical.
            t = progs.template
            state = state.replace(apply_fn=t.apply_fn, tx=t.tx, lr_fn=t.lr_fn)
        one = steps.unstack(state, 0)
        return cls(task, config.train, members,
                   train=lambda s, n: progs.train(s, keys, scales, jnp.int32(n)),
                   evaluate=lambda s: progs.evaluate(s, progs.batch),
                   diagnose=lambda s: progs.diagnose(s, progs.few),
                   start=int(one.step), step=int(one.step),
                   num_params=int(sum(x.size for x in jax.tree_util.tree_leaves(one.params))),
                   step_memory=progs.memory, chrono=chrono), state

    def active(self) -> list[tuple[int, Member]]:
        """(index, member) of the members still training."""
        return [(i, m) for i, m in enumerate(self.members)
                if m.summary is None and m.stopped_at is None]

    def name(self, m: Member) -> str:
        """A log line's prefix: the run's folder when several share the session."""
        return f"{os.path.basename(os.path.normpath(m.workdir))}: " \
            if len(self.members) > 1 else ""

    def summary(self, m: Member, step: int) -> RunSummary:
        r, task = m.record, self.task
        totals = self.chrono.totals(r)
        steps_per_sec, step_time_ms = Chrono.speed(totals)
        final = {k: v for k, v in m.history[-1].items() if k != "step"} if m.history else {}
        value = final.get(task.metric)
        mem, mem_source = peak_memory()
        return RunSummary(
            status=m.status, step=int(step), num_devices=jax.device_count(), final=final,
            num_params=self.num_params,
            solved=bool(value is not None and math.isfinite(value) and task.solved(final)),
            steps_to_solve=r["steps_to_solve"],
            stop_reason=m.status if m.status != "done" else (m.stop_reason or "budget"),
            # Packed: the group's speed (every member advances one step per program step).
            steps_per_sec=steps_per_sec, step_time_ms=step_time_ms,
            wall_time_sec=totals["wall_time_sec"], resumed_from=m.resumed_from,
            time_breakdown={k: round(float(totals[k]), 4) for k in PAUSES + ("train_time_sec",)},
            # Horizons at initialisation and the median over the evals of training (the
            # last one alone swings: a trained net may route gradient anywhere).
            grad_horizon=r["grad_horizon"], grad_norms=r["grad_norms"],
            grad_horizon_init=r["grad_horizon_init"], grad_norms_init=r["grad_norms_init"],
            grad_horizon_median=m.median_horizon(), grad_horizons=r["grad_horizons"],
            peak_memory_bytes=mem, peak_memory_source=mem_source,
            step_memory_bytes=self.step_memory,  # of the whole (packed) program
            pack_size=len(self.members), eval_history=m.history,
            task=TaskInfo(metric=task.metric, solved_at=task.solved_at,
                          baseline=task.baseline, input_len=task.seq_len, target=task.target),
            config=m.config.to_dict(), machine=machine_info(),
            diverged_at=m.diverged_at, error=m.error)

