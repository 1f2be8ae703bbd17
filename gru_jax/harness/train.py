"""One trainer for every experiment: `train_and_evaluate(config, workdir) -> summary`.

Data flow: config -> task batches -> model (cells under scan) -> loss -> optax
update -> metrics (TensorBoard) and checkpoints (Orbax) -> the run's summary
(`summary.RunSummary`). The pure pieces (steps, losses, diagnostics, packing) are
in `gru_jax.harness.steps`; this module is the loop around them.

* Evaluation uses one fixed held-out batch, ``task.eval_batch(EVAL_SEED,
  eval_size)``, the same for every seed and run.
* Every session trains a pack of K >= 1 runs that differ at most in PACK_KEYS
  (seed, learning rate) as one program, ``steps.packed(step)``; a plain run is a
  pack of one. Each run keeps its own workdir, checkpoints, events and summary,
  and stops alone when it diverges or is solved (`train.stop_when_solved`).
* The step functions are arguments (`train_step`, `eval_step`): a test passes a
  poisoned one instead of patching this module.

Statuses: done, diverged (with diverged_at), failed (with error; the exception is
re-raised), preempted (SIGTERM or SIGINT: the current step finishes, a
checkpoint and the summary are written and `Preempted` is raised;
scripts/train.py exits with EXIT_PREEMPTED).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gru_jax.harness import diagnostics, steps, tb
from gru_jax.harness.checkpoint import Checkpointer
from gru_jax.harness.chrono import PAUSES, TOTALS, Chrono
from gru_jax.harness.config import make_task, resolved
from gru_jax.harness.distributed import is_primary
from gru_jax.harness.errors import ConfigError
from gru_jax.harness.keys import PACK_KEYS, flatten
from gru_jax.harness.machine import machine_info, peak_memory
from gru_jax.harness.models import model_spec
from gru_jax.harness.status import EXIT_PREEMPTED  # noqa: F401 - re-exported (the exit code)
from gru_jax.harness.summary import RunSummary, TaskInfo, write_summary
from gru_jax.harness.tasks.base import Task
from gru_jax.harness.workdir import prepare_workdir

log = logging.getLogger(__name__)

EVAL_SEED = 2_147_483_647  # the held-out batch's key: fixed, shared by every run and seed
DIAGNOSTIC_EXAMPLES = 256  # eval examples behind the dL/dh_t curve and gate statistics
# Config keys that say how a run is watched, not what is trained: not in TensorBoard's HParams.
NOT_HPARAMS = frozenset({"train.progress", "train.log_every", "train.keep_checkpoints",
                         "train.checkpoint_every", "train.eval_every", "train.diagnose_every"})


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # checkpoint and stop (see _StopSignal)


class Preempted(Exception):
    """The run stopped on SIGTERM/SIGINT after saving a checkpoint; run it again to resume."""


class _Unpackable(Exception):
    """The members' checkpoints are at different steps: run them one by one."""


# --- the public entry points -----------------------------------------------------------

def train_and_evaluate(config, workdir: str, *, train_step=steps.train_step,
                       eval_step=steps.eval_step, stop_signals=STOP_SIGNALS) -> dict:
    """Train `config` in `workdir`, resuming from its latest checkpoint, and return
    the summary (`RunSummary.to_dict()`, also written to the workdir).

    Raises ConfigError (before touching the workdir), WorkdirError, or `Preempted`
    (after saving a checkpoint and a "preempted" summary). A diverged run returns
    normally with status "diverged". `train_step(state, batch, lr_scale)` and
    `eval_step(state, batch)` default to `gru_jax.harness.steps`'. `stop_signals`:
    the signals that checkpoint and stop the run (e.g. add SIGUSR2 under submitit).
    """
    return _train([config], [workdir], train_step, eval_step, stop_signals)[0]


def train_packed(configs: list, workdirs: list[str], *, train_step=steps.train_step,
                 eval_step=steps.eval_step, stop_signals=STOP_SIGNALS) -> list[dict]:
    """Train K runs as one vmapped program: configs that differ only in `seed` and
    `train.learning_rate` (PACK_KEYS), run k in workdirs[k]. Returns their summaries.

    Each run's files (config.json, Orbax checkpoints, TensorBoard events, summary)
    are those `train_and_evaluate(configs[k], workdirs[k])` would write, with the
    same numbers to float tolerance, so a run can be resumed alone and a group from
    its runs' checkpoints. If those checkpoints are at different steps (a group
    killed between two runs' saves), the runs are trained one after another
    instead. K = 1 is `train_and_evaluate`.
    """
    if len(configs) != len(workdirs) or not configs:
        raise ValueError("train_packed: one workdir per config, at least one")
    try:
        return _train(list(configs), list(workdirs), train_step, eval_step, stop_signals)
    except _Unpackable as e:
        log.warning("%s: training the %d runs one after another", e, len(configs))
        return [train_and_evaluate(c, w, train_step=train_step, eval_step=eval_step,
                                   stop_signals=stop_signals)
                for c, w in zip(configs, workdirs, strict=True)]


def _train(configs: list, workdirs: list[str], train_step, eval_step,
           stop_signals=STOP_SIGNALS) -> list[dict]:
    """Check, prepare the workdirs, restore, compile, train, finish: one session."""
    configs, task = _checked(configs, workdirs)
    for config, workdir in zip(configs, workdirs, strict=True):
        if is_primary():  # the others would race on the same files (Orbax creates its own)
            prepare_workdir(workdir, flatten(config))
    members = [Member.open(c, w) for c, w in zip(configs, workdirs, strict=True)]
    try:
        with _StopSignal(stop_signals) as stop:
            state = _restore(members, _unit_rate(configs[0]), task)
            ses, state = _Session.compile(state, members, task, configs[0], train_step,
                                          eval_step)
            for m in members:
                m.open_writer(ses.start)
            try:
                step = _loop(ses, state, stop)
            except BaseException as e:
                _fail(ses, e)
                raise
    finally:
        for m in members:
            m.close()
    summaries = [m.summary for m in members]
    if any(s.status == "preempted" for s in summaries):
        raise Preempted(f"preempted at step {step}; run the same command to resume")
    return [s.to_dict() for s in summaries]


def _checked(configs: list, workdirs: list[str]) -> tuple[list, Task]:
    """The configs resolved (task defaults filled in) and their task; ConfigError if
    one is invalid or they differ outside PACK_KEYS."""
    task = make_task(configs[0])
    for c in configs[1:]:
        make_task(c)
    configs = [resolved(c) for c in configs]
    flats = [flatten(c) for c in configs]
    for f, w in zip(flats, workdirs, strict=True):
        diff = sorted(k for k in set(f) | set(flats[0])
                      if k not in PACK_KEYS and f.get(k) != flats[0].get(k))
        if diff:
            raise ConfigError(f"{w}: cannot pack runs that differ in {', '.join(diff)} "
                              f"(only {', '.join(sorted(PACK_KEYS))} may differ)")
    return configs, task


# --- the loop ---------------------------------------------------------------------------

def _loop(ses: _Session, state, stop: _StopSignal) -> int:
    """Train from the restored step to train.steps, until no member is active, or
    until a stop signal (then every active member is saved as preempted). Every
    member is finished (summary written) on return; returns the step reached.

    The steps between two events (a log, an eval, a checkpoint, the end) run as one
    call of the compiled loop; the host looks at the state only between calls."""
    tc, chrono = ses.tc, ses.chrono
    step = ses.start
    if step == 0:
        with chrono.paused("eval_sec"):
            _init_diagnostics(ses, state)
    _stop_solved(ses, state, step)  # a rerun of a run that stopped solved trains no more
    sums, count = None, 0  # the train metrics since the last log, summed on device
    chrono.start()
    with _progress_bar(tc, step) as bar:
        while step < tc.steps and ses.active():
            n = _next_event(step, tc, ses.members[0].ckpt.every) - step
            state, chunk = ses.train(state, n)
            jax.block_until_ready(state)  # the steps run asynchronously: wait as training
            step = ses.step = step + n
            sums = chunk if sums is None else jax.tree_util.tree_map(jnp.add, sums, chunk)
            count += n
            bar.update(n)
            chrono.tick(n)
            is_last = step == tc.steps
            is_eval = step % tc.eval_every == 0 or is_last
            is_ckpt = ses.members[0].ckpt.due(step) or is_last
            is_log = step % tc.log_every == 0 or is_last
            with chrono.paused("log_sec"):
                stopping = _any_process(stop.signum is not None)
                _stop_diverged(ses, state)
                if not ses.active():
                    break
                if is_log or stopping:
                    _log_train(ses, sums, count, step, bar)
                    sums, count = None, 0
            if is_eval:
                every = tc.diagnose_every or tc.eval_every
                with chrono.paused("eval_sec"):
                    _evaluate(ses, state, step, ses.active(), diagnose=step % every == 0,
                              image=is_ckpt, bar=bar)
                _stop_solved(ses, state, step)
            if is_ckpt or stopping:
                _save(ses, state, step, force=True)
            if stopping:
                for _, m in ses.active():
                    m.status = "preempted"
                log.warning("signal %s: saved a checkpoint at step %d; stopping",
                            stop.signum, step)
                break
    for i, m in enumerate(ses.members):
        if m.summary is None:
            _finish(ses, state, step, i, m)
    return step


def _next_event(step: int, tc, checkpoint_every: int) -> int:
    """The first step after `step` that logs, evaluates, checkpoints or ends the run."""
    return min(tc.steps, *((step // k + 1) * k for k in
                           (tc.log_every, tc.eval_every, checkpoint_every)))


def _progress_bar(tc, step: int):
    from tqdm.auto import tqdm

    return tqdm(total=tc.steps, initial=step, unit="step", dynamic_ncols=True, leave=False,
                disable=not (tc.progress and sys.stderr.isatty()))


def _log_train(ses: _Session, sums, count: int, step: int, bar) -> None:
    """The mean train metrics since the last log (`sums` over `count` steps, {name:
    [K]}) and the speed into TensorBoard."""
    if not count:
        return
    means = {k: np.asarray(v, np.float64) / count for k, v in _host(sums).items()}
    rate = ses.chrono.rate()
    for i, m in ses.active():
        mean = {k: float(v[i]) for k, v in means.items()}
        if rate is not None:
            mean["steps_per_sec"] = rate
        m.writer.write_scalars(step, {f"train/{k}": v for k, v in mean.items()})
        bar.set_postfix(loss=f"{mean['loss']:.4g}", refresh=False)


def _evaluate(ses: _Session, state, step: int, members, *, diagnose=True, image=False,
              bar=None) -> None:
    """Eval metrics of `members` ((index, Member)) at `step` into their records and
    TensorBoard; with `diagnose`, the gradient diagnostics too (a backward pass over
    DIAGNOSTIC_EXAMPLES: `train.diagnose_every` says how often), and with `image`
    the ||dL/dh_t|| curve as a picture (~0.2 s to draw). One short log line per member."""
    from gru_jax.harness.tb import plot_curve

    metric = ses.task.metric
    ev_all, diag_all = _host((ses.evaluate(state), ses.diagnose(state) if diagnose else None))
    for i, m in members:
        ev = {k: float(v[i]) for k, v in ev_all.items()}
        m.record_eval(step, ev, ses.task)
        m.writer.write_scalars(step, {f"eval/{k}": v for k, v in ev.items()})
        if diagnose:
            diag = {k: v[i] for k, v in diag_all.items()}
            norms = np.asarray(diag.pop("grad_norms"), np.float64)
            horizon = m.record_diagnostics(step, norms)
            m.writer.write_scalars(step, {"diagnostics/grad_horizon": horizon,
                                    "diagnostics/grad_horizon_median": m.median_horizon(),
                                    **diag})
        if diagnose and image:
            m.writer.write_images(step, {"diagnostics/grad_norm_vs_t": plot_curve(
                norms, title=f"||dL/dh_t|| at step {step} (horizon {horizon})",
                xlabel="t", ylabel="||dL/dh_t||")})
        m.writer.flush()
        # One short line: the task metric (and the loss, when it is another number).
        extra = f", loss {ev['loss']:.4g}" if ev["loss"] != ev[metric] else ""
        log.info("%sstep %d: eval %s %.4g%s", ses.name(m), step, metric, ev[metric], extra)
        if bar is not None:
            bar.set_postfix({f"eval_{metric}": f"{ev[metric]:.4g}"}, refresh=False)


def _init_diagnostics(ses: _Session, state) -> None:
    """||dL/dh_t|| and its horizon at initialisation (step 0, before any update)."""
    diag_all = _host(ses.diagnose(state))
    for i, m in ses.active():
        norms = np.asarray(diag_all["grad_norms"][i], np.float64)
        m.record["grad_horizon_init"] = diagnostics.grad_horizon(norms)
        m.record["grad_norms_init"] = [float(v) for v in norms]
        m.writer.write_scalars(0, {"diagnostics/grad_horizon": m.record["grad_horizon_init"]})


def _stop_diverged(ses: _Session, state) -> None:
    """Stop and finish each active member whose state records a bad step."""
    bad = np.asarray(state.bad_step)  # [K]; waits for the step: the sync point
    for i, m in ses.active():
        if bad[i] >= 0:
            m.status, m.diverged_at = "diverged", int(bad[i])
            m.stopped_at = int(bad[i]) - 1  # the state holds the params after this step
            log.warning("%sloss or gradient not finite at step %d: stopping", ses.name(m), bad[i])
            # At once, so a group killed later does not run this member again.
            _finish(ses, state, m.stopped_at, i, m)


def _stop_solved(ses: _Session, state, step: int) -> None:
    """Finish each active member solved at the last `train.stop_when_solved` evals in a
    row (a checkpoint at `step` first, so a rerun does not train it again)."""
    k = ses.tc.stop_when_solved
    for i, m in ses.active():
        if k and m.record["solved_streak"] >= k:
            m.stop_reason, m.stopped_at = "solved", step
            _save(ses, state, step, members=[(i, m)], force=True)
            log.info("%ssolved at %d evals in a row: stopping at step %d", ses.name(m), k, step)
            _finish(ses, state, step, i, m)


def _save(ses: _Session, state, step: int, *, members=None, force=False) -> None:
    """A checkpoint of each member (default: the active ones) at `step`, its record
    (with the time totals so far) as the checkpoint's meta."""
    with ses.chrono.paused("checkpoint_sec"):
        for i, m in (ses.active() if members is None else members):
            m.writer.flush()  # all events up to a checkpoint are on disk with it
            meta = {**m.record, **ses.chrono.totals(m.record)}
            m.ckpt.save(step, steps.unstack(state, i), meta, force=force)


def _finish(ses: _Session, state, step: int, i: int, m: Member) -> None:
    """Final eval (unless preempted or already done at this step), the summary."""
    if m.status != "preempted" and (not m.history or m.history[-1]["step"] != step):
        # A diverged member's params stay those of its last good step.
        with ses.chrono.paused("eval_sec"):
            _evaluate(ses, state, step, [(i, m)], image=True)
    m.summary = ses.summary(m, step)
    if is_primary():
        write_summary(m.workdir, m.summary)
    tb.end_session(m.writer, m.status, step)


def _fail(ses: _Session, e: BaseException) -> None:
    """A "failed" summary for each unfinished member (best effort)."""
    for m in ses.members:
        if m.summary is not None:
            continue
        m.status, m.error = "failed", f"{type(e).__name__}: {e}"
        try:
            step = ses.step if m.stopped_at is None else m.stopped_at
            if is_primary():
                write_summary(m.workdir, ses.summary(m, step))
            tb.end_session(m.writer, "failed", step)
        except Exception:  # noqa: BLE001 - the original error matters more
            log.exception("could not write the failed run's summary")


# --- a session and its members -------------------------------------------------------------

def _fresh_record() -> dict:
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
    record: dict = dataclasses.field(default_factory=_fresh_record)
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


def _unit_rate(config):
    """`config` with the schedule's peak at 1: each run's learning rate is its scale."""
    config = config.copy_and_resolve_references()
    config.train.learning_rate = 1.0
    return config


def _restore(members: list[Member], config, task: Task):
    """Every member's latest checkpoint (or a fresh state), stacked [K, ...].
    _Unpackable if the members' checkpoints are at different steps."""
    fresh = steps.create_train_state(jnp.stack([m.keys()[0] for m in members]), config, task)
    states = [m.restore(steps.unstack(fresh, i)) for i, m in enumerate(members)]
    at = {int(s.step) for s in states}
    if len(at) > 1:
        raise _Unpackable(f"checkpoints at different steps {sorted(at)}")
    return steps.stack(states)


@dataclasses.dataclass
class _Session:
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
        t0 = chrono._clock()
        _, replicated = steps.data_mesh()
        keys = jnp.stack([m.keys()[1] for m in members])
        # Data keys and learning rates are arguments, not constants of the program (the
        # state's schedule peaks at 1: `_unit_rate`), so runs that differ only in them
        # share one executable.
        scales = jnp.asarray([m.config.train.learning_rate for m in members], jnp.float32)
        # Every process holds the same values: each places its local copy and the
        # pieces form one global array (device_put cannot reach other processes).
        state, keys, scales = (
            jax.device_put((state, keys, scales), replicated) if jax.process_count() == 1
            else jax.tree_util.tree_map(lambda a: _global(a, replicated), (state, keys, scales)))
        progs = _programs(state, keys, scales, task, config, train_step, eval_step)
        # The cached programs were traced with their first state's static fields (the
        # model, optimiser and schedule functions): equal in value, and now identical.
        t = progs.template
        state = state.replace(apply_fn=t.apply_fn, tx=t.tx, lr_fn=t.lr_fn)
        chrono.note("compile_sec", chrono._clock() - t0)
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


@dataclasses.dataclass(frozen=True)
class _Programs:
    """A session's compiled programs and its held-out batches."""

    train: Any  # (state [K], keys [K], scales [K], n) -> (state, metric sums [K])
    evaluate: Callable
    diagnose: Callable
    batch: dict
    few: dict  # the first DIAGNOSTIC_EXAMPLES of `batch`
    memory: int | None
    template: Any  # the state the programs were traced with (its static fields)


# Config keys that change no compiled program (the init, the data keys, the cadence of
# the host's work): runs differing only in them share one `_Programs`.
_NOT_PROGRAM = NOT_HPARAMS | {"seed", "train.learning_rate", "model.chrono",
                              "model.chrono_t_max", "train.stop_when_solved"}
_PROGRAMS: dict = {}  # in-process: a sweep worker trains many runs of few shapes
_PROGRAMS_KEPT = 8


def _programs(state, keys, scales, task: Task, config, train_step, eval_step) -> _Programs:
    flat = flatten(config)
    skip = _NOT_PROGRAM | ({"train.steps"} if config.train.schedule == "constant" else set())
    key = (json.dumps({k: v for k, v in flat.items() if k not in skip}, sort_keys=True,
                      default=str), int(keys.shape[0]), train_step, eval_step)
    if key in _PROGRAMS:
        return _PROGRAMS[key]
    tc, spec = config.train, model_spec(config.model)
    _, replicated = steps.data_mesh()
    train = steps.train_loop_program(state, keys, scales, task, tc.batch_size, train_step)
    batch = jax.jit(task.eval_batch, static_argnums=1, out_shardings=replicated)(
        jax.random.key(EVAL_SEED), tc.eval_size)
    # Gradient diagnostics on the first examples only: a backward pass per eval.
    few = jax.tree_util.tree_map(lambda a: a[:DIAGNOSTIC_EXAMPLES], batch)
    # Compiled on first use (inside the loop: an eval step that fails fails the run
    # there), so a session's first eval_sec includes compiling them.
    evaluate = jax.jit(jax.vmap(eval_step, in_axes=(0, None)))
    diagnose = jax.jit(jax.vmap(lambda s, b: steps.diagnose(s, b, spec, task.target),
                                in_axes=(0, None)))
    progs = _Programs(train, evaluate, diagnose, batch, few,
                      steps.compiled_memory_bytes(train), template=state)
    while len(_PROGRAMS) >= _PROGRAMS_KEPT:
        _PROGRAMS.pop(next(iter(_PROGRAMS)))
    _PROGRAMS[key] = progs
    return progs


# --- small helpers -------------------------------------------------------------------------

class _StopSignal:
    """Turns the stop signals (default SIGTERM/SIGINT) into a flag the loop polls
    (main thread only); a second signal of the same kind gets the previous handler."""

    def __init__(self, signals=STOP_SIGNALS):
        self.signum = None
        self.signals = tuple(signals)
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        signal.signal(signum, self._old.get(signum, signal.SIG_DFL))

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


def _any_process(flag: bool) -> bool:
    """`flag` of any process of a multi-host job (a collective: call it on all); alone: flag."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))


def _global(a, sharding):
    """A replicated global array from this process's copy of `a` (multi-host)."""
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):  # typed keys: via their data
        data = jax.make_array_from_process_local_data(sharding, np.asarray(jax.random.key_data(a)))
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
    return jax.make_array_from_process_local_data(sharding, np.asarray(a))


def _host(tree):
    """Device arrays -> numpy."""
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def one_line(summary: RunSummary, workdir: str) -> str:
    """The run in one line, for the end of a log."""
    parts = [f"{summary.status} at step {summary.step}"]
    if summary.final_value is not None:
        parts.append(f"eval {summary.metric} {summary.final_value:.4g}")
    parts.append(f"solved at step {summary.steps_to_solve}" if summary.steps_to_solve
                 is not None else "not solved")
    if summary.steps_per_sec:
        parts.append(f"{summary.steps_per_sec:.1f} steps/s")
    if summary.wall_time_sec is not None:
        parts.append(f"{summary.wall_time_sec:.1f} s")
    return "gru_jax: " + " | ".join(parts) + f" | {workdir}"
