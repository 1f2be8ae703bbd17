"""The trainer's loop: `train_and_evaluate` / `train_packed` and the events between
the compiled chunks of steps (logs, evals, checkpoints, stops), read top to bottom.

The steps between two events run as one call of the session's compiled loop
(`programs`); what a session holds (its members, programs and clock) is in
`session`; the stop signals in `stop`.
"""

from __future__ import annotations

import logging
import sys

import jax
import jax.numpy as jnp
import numpy as np

from gru_jax.harness import diagnostics, steps, tb
from gru_jax.harness.config import make_task, resolved
from gru_jax.harness.distributed import any_process, is_primary
from gru_jax.harness.errors import ConfigError
from gru_jax.harness.keys import PACK_KEYS, flatten
from gru_jax.harness.summary import RunSummary, write_summary
from gru_jax.harness.tasks.base import Task
from gru_jax.harness.train.session import Member, Session, Unpackable, restore, unit_rate
from gru_jax.harness.train.stop import STOP_SIGNALS, Preempted, StopSignal
from gru_jax.harness.workdir import prepare_workdir

log = logging.getLogger(__name__)


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
    except Unpackable as e:
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
        with StopSignal(stop_signals) as stop:
            state = restore(members, unit_rate(configs[0]), task)
            ses, state = Session.compile(state, members, task, configs[0], train_step,
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

def _loop(ses: Session, state, stop: StopSignal) -> int:
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
                stopping = any_process(stop.signum is not None)
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


def _log_train(ses: Session, sums, count: int, step: int, bar) -> None:
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


def _evaluate(ses: Session, state, step: int, members, *, diagnose=True, image=False,
              bar=None, metrics=True) -> None:
    """Eval metrics of `members` ((index, Member)) at `step` into their records and
    TensorBoard; with `diagnose`, the gradient diagnostics too (a backward pass over
    DIAGNOSTIC_EXAMPLES: `train.diagnose_every` says how often), and with `image`
    the ||dL/dh_t|| curve as a picture (~0.2 s to draw). One short log line per member.
    `metrics=False`: the diagnostics alone (the step's eval is recorded already)."""
    from gru_jax.harness.tb import plot_curve

    metric = ses.task.metric
    ev_all, diag_all = _host((ses.evaluate(state) if metrics else None,
                              ses.diagnose(state) if diagnose else None))
    for i, m in members:
        if metrics:
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
        if not metrics:
            continue
        # One short line: the task metric (and the loss, when it is another number).
        extra = f", loss {ev['loss']:.4g}" if ev["loss"] != ev[metric] else ""
        log.info("%sstep %d: eval %s %.4g%s", ses.name(m), step, metric, ev[metric], extra)
        if bar is not None:
            bar.set_postfix({f"eval_{metric}": f"{ev[metric]:.4g}"}, refresh=False)


def _init_diagnostics(ses: Session, state) -> None:
    """||dL/dh_t|| and its horizon at initialisation (step 0, before any update)."""
    diag_all = _host(ses.diagnose(state))
    for i, m in ses.active():
        norms = np.asarray(diag_all["grad_norms"][i], np.float64)
        m.record["grad_horizon_init"] = diagnostics.grad_horizon(norms)
        m.record["grad_norms_init"] = [float(v) for v in norms]
        m.writer.write_scalars(0, {"diagnostics/grad_horizon": m.record["grad_horizon_init"]})


def _stop_diverged(ses: Session, state) -> None:
    """Stop and finish each active member whose state records a bad step."""
    bad = np.asarray(state.bad_step)  # [K]; waits for the step: the sync point
    for i, m in ses.active():
        if bad[i] >= 0:
            m.status, m.diverged_at = "diverged", int(bad[i])
            m.stopped_at = int(bad[i]) - 1  # the state holds the params after this step
            log.warning("%sloss or gradient not finite at step %d: stopping", ses.name(m), bad[i])
            # At once, so a group killed later does not run this member again.
            _finish(ses, state, m.stopped_at, i, m)


def _stop_solved(ses: Session, state, step: int) -> None:
    """Finish each active member solved at the last `train.stop_when_solved` evals in a
    row (a checkpoint at `step` first, so a rerun does not train it again)."""
    k = ses.tc.stop_when_solved
    for i, m in ses.active():
        if k and m.record["solved_streak"] >= k:
            m.stop_reason, m.stopped_at = "solved", step
            _save(ses, state, step, members=[(i, m)], force=True)
            log.info("%ssolved at %d evals in a row: stopping at step %d", ses.name(m), k, step)
            _finish(ses, state, step, i, m)


def _save(ses: Session, state, step: int, *, members=None, force=False) -> None:
    """A checkpoint of each member (default: the active ones) at `step`, its record
    (with the time totals so far) as the checkpoint's meta."""
    with ses.chrono.paused("checkpoint_sec"):
        for i, m in (ses.active() if members is None else members):
            m.writer.flush()  # all events up to a checkpoint are on disk with it
            meta = {**m.record, **ses.chrono.totals(m.record)}
            m.ckpt.save(step, steps.unstack(state, i), meta, force=force)


def _finish(ses: Session, state, step: int, i: int, m: Member) -> None:
    """Final eval and gradient diagnostics (unless preempted or already done at this
    step: a run stopped solved at an eval has its metrics, not always its
    diagnostics), the summary."""
    horizons = m.record["grad_horizons"]
    need_eval = not m.history or m.history[-1]["step"] != step
    need_diagnostics = not horizons or horizons[-1][0] != step
    if m.status != "preempted" and (need_eval or need_diagnostics):
        # A diverged member's params stay those of its last good step.
        with ses.chrono.paused("eval_sec"):
            _evaluate(ses, state, step, [(i, m)], image=True, metrics=need_eval)
    m.summary = ses.summary(m, step)
    if is_primary():
        write_summary(m.workdir, m.summary)
    tb.end_session(m.writer, m.status, step)


def _fail(ses: Session, e: BaseException) -> None:
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


def _host(tree):
    """Device arrays -> numpy."""
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def one_line(summary: RunSummary, workdir: str) -> str:
    """The run in one line, for the end of a log."""
    parts = [f"{summary.status} at step {summary.step}"]
    if summary.final_value is not None:
        parts.append(f"eval {summary.metric} {summary.final_value:.4g}")
    if summary.solved:
        parts.append(f"solved at step {summary.steps_to_solve}")
    elif summary.steps_to_solve is not None:  # a touch the run did not keep
        parts.append(f"not solved (at the threshold at step {summary.steps_to_solve}, "
                     f"not at the end)")
    else:
        parts.append("not solved")
    if summary.steps_per_sec:
        parts.append(f"{summary.steps_per_sec:.1f} steps/s")
    if summary.wall_time_sec is not None:
        parts.append(f"{summary.wall_time_sec:.1f} s")
    return "gru_jax: " + " | ".join(parts) + f" | {workdir}"
