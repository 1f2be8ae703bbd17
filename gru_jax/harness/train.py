"""One trainer for every experiment: `train_and_evaluate(config, workdir) -> summary`.

Data flow: config -> task batches -> model (cells under scan) -> loss ->
optax update -> metrics (TensorBoard) and checkpoints (Orbax) -> summary.json.

* Training data at step s are ``task.sample(fold_in(data_key, s), batch)``,
  generated inside the jitted step, so a run resumed from a checkpoint sees
  exactly the batches of an uninterrupted one (and ends with the same
  numbers on CPU).
* Evaluation uses one fixed held-out batch, ``task.eval_batch(EVAL_KEY,
  eval_size)``, the same for every seed and run.
* `train_step(state, batch)` is a pure function of its arguments (the
  optimiser, schedule, model and loss ride in the state as static fields),
  so it can be vmapped over seeds or jitted with shardings.
* Divergence: a step whose loss or gradient norm is NaN/inf does not update
  the params; the state records that step in ``bad_step`` and every later
  step is a no-op, so the host only has to look at ``bad_step`` when it
  syncs anyway (every ``log_every`` steps, and before every eval and save).

* Packed seed ensembles: `train_packed(configs, workdirs)` trains K runs that
  differ only in seed and learning rate (PACK_KEYS) as one jitted
  `jax.vmap(train_step)` over states stacked on a leading member axis; each run
  keeps its own workdir, checkpoints, events and summary.json (see `_Run`).

Statuses in summary.json: done, diverged (with diverged_at), failed (with
error; the exception is re-raised), preempted (SIGTERM or SIGINT: the current
step finishes, a checkpoint is saved, summary.json is written and `Preempted`
is raised; scripts/train.py exits with EXIT_PREEMPTED).
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from gru_jax.errors import ConfigError, WorkdirError
from gru_jax.harness import diagnostics
from gru_jax.harness.checkpoint import Checkpointer
from gru_jax.harness.config import RESUMABLE_KEYS, resolved, validate
from gru_jax.harness.distributed import is_primary
from gru_jax.harness.models import (
    ModelSpec,
    apply_model,
    hidden_grads,
    init_model,
    model_spec,
    run_layers,
)
from gru_jax.harness.records import (
    CONFIG_FILE,
    EXIT_PREEMPTED,  # noqa: F401 - scripts/train.py's exit code, re-exported
    PACK_KEYS,
    RunSummary,
    TaskInfo,
    flatten,
    read_json,
    unflatten,
    write_json_atomic,
    write_summary,
)
from gru_jax.harness.tasks.base import Task

log = logging.getLogger(__name__)

EVAL_SEED = 2_147_483_647  # the held-out batch's key: fixed, shared by every run and seed
DIAGNOSTIC_EXAMPLES = 256  # eval examples behind the dL/dh_t curve and gate statistics


class Preempted(Exception):
    """The run stopped on SIGTERM/SIGINT after saving a checkpoint; run it again to resume."""


# --- losses and metrics --------------------------------------------------------------

def task_loss(preds: jax.Array, batch: dict, kind: str) -> jax.Array:
    """Mean loss over the batch (and time, for sequence targets).

    mse: preds [batch, out] vs y [batch, out] (or [batch, time, out] vs [batch, time]).
    xent: logits [batch, classes] vs y [batch] int (or [batch, time, classes] vs [batch, time]).
    """
    y = batch["y"]
    if kind == "mse":
        y = y.reshape(preds.shape).astype(jnp.float32)
        return jnp.mean(jnp.square(preds - y))
    if kind == "xent":
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(preds, y))
    raise ValueError(f"loss must be 'mse' or 'xent', got {kind!r}")


def task_metric(preds: jax.Array, batch: dict, metric: str) -> jax.Array:
    """The task's metric: "mse" (mean over everything) or "accuracy" (argmax == y,
    weighted by batch["w"] [batch, time] when the batch has it)."""
    y = batch["y"]
    if metric == "mse":
        w = batch.get("w")
        err = jnp.square(preds - y.reshape(preds.shape).astype(jnp.float32))
        if w is None:
            return jnp.mean(err)
        return jnp.sum(err * w[..., None]) / (jnp.sum(w) * err.shape[-1])
    if metric == "accuracy":
        hit = (jnp.argmax(preds, axis=-1) == y).astype(jnp.float32)
        w = batch.get("w")
        return jnp.mean(hit) if w is None else jnp.sum(hit * w) / jnp.sum(w)
    raise ValueError(f"metric must be 'mse' or 'accuracy', got {metric!r}")


# --- train state, optimiser, steps ---------------------------------------------------

class TrainState(struct.PyTreeNode):
    """What a step reads and writes. Arrays are pytree leaves (checkpointed,
    vmappable); the rest is static."""

    step: jax.Array  # int32 [], updates applied so far (plus no-op steps after divergence)
    params: Any
    opt_state: Any
    bad_step: jax.Array  # int32 []: first 1-based step with a NaN/inf loss or gradient; -1 if none
    apply_fn: Callable = struct.field(pytree_node=False)  # (params, x) -> predictions
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    lr_fn: Callable = struct.field(pytree_node=False)  # step -> learning rate
    loss: str = struct.field(pytree_node=False)  # "mse" | "xent"
    metric: str = struct.field(pytree_node=False)  # "mse" | "accuracy"


def make_schedule(train_cfg) -> optax.Schedule:
    """Linear warmup from 0 to learning_rate over warmup_steps, then cosine to 0
    at train.steps (schedule "cosine") or constant."""
    lr, warmup, steps = train_cfg.learning_rate, train_cfg.warmup_steps, train_cfg.steps
    if train_cfg.schedule == "constant":
        return optax.warmup_constant_schedule(0.0, lr, warmup) if warmup else \
            optax.constant_schedule(lr)
    warmup = min(warmup, steps - 1)  # a run shorter than its warmup still decays at the end
    if warmup == 0:
        return optax.cosine_decay_schedule(lr, steps)
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps, 0.0)


def make_optimizer(train_cfg) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """clip_by_global_norm(clip_norm) then AdamW (weight decay on kernels only)."""
    schedule = make_schedule(train_cfg)
    kernels = lambda params: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)  # noqa: E731
    tx = optax.adamw(schedule, weight_decay=train_cfg.weight_decay, mask=kernels)
    if train_cfg.clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(train_cfg.clip_norm), tx)
    return tx, schedule


def create_train_state(key: jax.Array, config, task: Task) -> TrainState:
    """Fresh params (from `key`) and optimiser state for `config` on `task`.

    `key` [] gives one state. A stack of K keys [K] gives K states stacked along a
    leading member axis (every array leaf [K, ...]), member i initialised exactly
    as `create_train_state(key[i], ...)` would: the input of a packed group.
    """
    spec = model_spec(config.model)
    tx, schedule = make_optimizer(config.train)

    @jax.jit  # one compilation instead of one per eager op of the initialisers
    def init(key):
        params = init_model(key, spec, task.input_size, task.output_size, seq_len=task.seq_len)
        return params, tx.init(params)

    if key.ndim:
        # One key at a time (not vmap): each member's initial numbers are those of a run alone.
        params, opt_state = _stack([init(k) for k in key])
    else:
        params, opt_state = init(key)
    return TrainState(
        step=jnp.zeros(key.shape, jnp.int32),
        params=params,
        opt_state=opt_state,
        bad_step=jnp.full(key.shape, -1, jnp.int32),
        apply_fn=functools.partial(apply_model, model_cfg=spec, target=task.target),
        tx=tx,
        lr_fn=schedule,
        loss=task.loss,
        metric=task.metric,
    )


def _stack(trees: list):
    """K pytrees of one structure -> one pytree with leaves stacked [K, ...]."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree, i: int):
    """Member i of a stacked pytree (leaves [K, ...] -> [...]); static fields kept."""
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def train_step(state: TrainState, batch: dict,
               lr_scale: jax.Array | None = None) -> tuple[TrainState, dict]:
    """One optimiser step on `batch` (x [batch, time, input], y, ...).

    Returns the new state and metrics {loss, <task metric>, grad_norm,
    learning_rate} (grad_norm before clipping). A non-finite loss or gradient
    leaves params and optimiser state unchanged and sets bad_step (once).

    `lr_scale` (float32 []): multiplies the learning rate of the state's schedule,
    so members of a packed group (vmapped over the state) can each have their
    own rate under one static optimiser. None: the schedule as it is.
    """

    def loss_fn(params):
        preds = state.apply_fn(params, batch["x"])
        return task_loss(preds, batch, state.loss), preds

    (loss, preds), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    lr = state.lr_fn(state.step)
    if lr_scale is not None:
        # AdamW's update (weight decay included) is linear in the learning rate, so
        # scaling it is AdamW at lr * lr_scale; a scale of 1.0 changes no bit.
        updates = jax.tree_util.tree_map(lambda u: u * lr_scale.astype(u.dtype), updates)
        lr = lr * lr_scale
    params = optax.apply_updates(state.params, updates)
    # After the first bad step nothing moves: the state keeps the last good params.
    keep = finite & (state.bad_step < 0)
    pick = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
        lambda n, o: jnp.where(keep, n, o), new, old)
    step = state.step + 1
    metrics = {
        "loss": loss,
        state.metric: task_metric(preds, batch, state.metric),
        "grad_norm": grad_norm,
        "learning_rate": lr,
    }
    new_state = state.replace(
        step=step,
        params=pick(params, state.params),
        opt_state=pick(opt_state, state.opt_state),
        bad_step=jnp.where((state.bad_step < 0) & ~finite, step, state.bad_step),
    )
    return new_state, metrics


def eval_step(state: TrainState, batch: dict) -> dict:
    """Held-out metrics {loss, <task metric>} of state.params on `batch`."""
    preds = state.apply_fn(state.params, batch["x"])
    return {"loss": task_loss(preds, batch, state.loss),
            state.metric: task_metric(preds, batch, state.metric)}


def diagnose(state: TrainState, batch: dict, spec: ModelSpec, target: str) -> dict:
    """Gradient flow and gate statistics on `batch`.

    Returns {"grad_norms": [time] ||dL/dh_t|| of the last layer} and, for a
    gru, "gates/layer{l}_z_mean" and "gates/layer{l}_z_saturated" per layer.
    """
    x = batch["x"]
    grads = hidden_grads(state.params, x, spec, target,
                         lambda preds: task_loss(preds, batch, state.loss))
    out = {"grad_norms": diagnostics.grad_norm_curve(grads)}
    if spec.cell == "gru":
        hs_all = run_layers(state.params, x, spec)
        inputs = [x, *hs_all[:-1]]
        dtype = jnp.bfloat16 if spec.dtype == "bfloat16" else None
        layers = state.params["layers"]
        for i, (layer, xs, hs) in enumerate(zip(layers, inputs, hs_all, strict=True)):
            z = diagnostics.update_gate(layer, xs, hs, dtype)
            for k, v in diagnostics.gate_stats(z).items():
                out[f"gates/layer{i}_{k}"] = v
    return out


# --- the run -------------------------------------------------------------------------

class _StopSignal:
    """Turns SIGTERM/SIGINT into a flag the loop polls (main thread only); a
    second signal of the same kind gets the previous handler."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        signal.signal(signum, self._old.get(signum, signal.SIG_DFL))

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


def _prepare_workdir(workdir: str, config_flat: dict) -> None:
    """Create `workdir` and store the config, or check it against the stored one.

    Raises WorkdirError if the folder cannot be written, or holds a run whose
    config differs in a key outside RESUMABLE_KEYS.
    """
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise WorkdirError(f"workdir {workdir}: cannot write there ({e.strerror or e}); "
                           "choose another --workdir") from None
    path = os.path.join(workdir, CONFIG_FILE)
    try:
        stored = read_json(path)
    except ValueError:
        raise WorkdirError(f"workdir {workdir}: {CONFIG_FILE} is not valid JSON; "
                           "use a new --workdir or delete this one") from None
    if stored is None:
        if os.path.isdir(os.path.join(workdir, "checkpoints")) and os.listdir(
                os.path.join(workdir, "checkpoints")):
            raise WorkdirError(f"workdir {workdir}: has checkpoints but no {CONFIG_FILE}, so "
                               "it is not a gru_jax run; use a new --workdir")
    else:
        stored = flatten(stored)
        diff = sorted(k for k in set(stored) | set(config_flat)
                      if k not in RESUMABLE_KEYS and stored.get(k, "<unset>")
                      != config_flat.get(k, "<unset>"))
        if diff:
            shown = ", ".join(f"{k}: {stored.get(k, '<unset>')!r} -> "
                              f"{config_flat.get(k, '<unset>')!r}" for k in diff[:6])
            more = f" (and {len(diff) - 6} more)" if len(diff) > 6 else ""
            raise WorkdirError(
                f"workdir {workdir} holds a run with a different config ({shown}{more}); "
                "use a new --workdir, or delete the old one to start over")
        old_steps, new_steps = stored.get("train.steps"), config_flat.get("train.steps")
        if old_steps != new_steps and config_flat.get("train.schedule") == "cosine":
            log.warning("train.steps changed from %s to %s: the cosine schedule is stretched "
                        "to the new length from the resumed step on", old_steps, new_steps)
    write_json_atomic(path, unflatten(config_flat))


def peak_memory() -> tuple[int, str]:
    """(bytes, source): the device allocator's peak if it reports one, else
    this process's peak resident set size (CPU)."""
    try:
        stats = jax.local_devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - some backends do not implement it
        stats = {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) * (1 if sys.platform == "darwin" else 1024), "maxrss"


def compiled_memory_bytes(compiled) -> int | None:
    """Peak memory of one call of a compiled program, by XLA's buffer assignment
    (arguments + outputs + temporaries): the same number on every backend, and
    per run even when many runs share a process."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if m is None:
        return None
    total = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
             - m.alias_size_in_bytes)
    # peak_memory_in_bytes, where reported, can leave out the temporaries (XLA:CPU).
    return int(max(total, getattr(m, "peak_memory_in_bytes", 0) or 0))


@functools.cache
def machine_info() -> dict:
    """Where a run ran: CPU model and cores, JAX backend and device, versions, commit.
    Results from different machines may differ (a chaotic run amplifies kernel rounding)."""
    import platform
    import subprocess

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(__file__), timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    dev = jax.devices()[0]
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "backend": jax.default_backend(),
            "device_kind": dev.device_kind, "device_count": jax.device_count(),
            "jax": jax.__version__, "python": platform.python_version(), "commit": commit}


def _any_process(flag: bool) -> bool:
    """`flag` of any process of a multi-host job (a collective: call it on all); alone: flag."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))


def _host(tree):
    """Device arrays -> numpy (0-d -> Python scalars)."""
    return jax.tree_util.tree_map(
        lambda a: np.asarray(a).item() if np.ndim(a) == 0 else np.asarray(a),
        jax.device_get(tree))


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


def _median_horizon(meta: dict) -> int | None:
    """Median of the gradient horizons at the evals during training (lower median)."""
    hs = sorted(h for _, h in meta["grad_horizons"])
    return int(hs[(len(hs) - 1) // 2]) if hs else None


def _stop_reason(m) -> str:
    """Why a run ended: solved (train.stop_when_solved), budget (train.steps), or its status."""
    if m.status != "done":
        return m.status
    return m.stop_reason or "budget"




class _Unpackable(Exception):
    """The members' checkpoints are at different steps: run them one by one."""


class _Member:
    """One run's own part of a session: config, workdir, checkpoints, TensorBoard
    writer, eval history, status. A session holds one member (a plain run) or K
    (a packed group, one vmapped program)."""

    def __init__(self, config, workdir: str):
        self.config, self.workdir = config, workdir
        tc = config.train
        root = jax.random.key(config.seed)
        self.init_key, self.data_key = jax.random.fold_in(root, 0), jax.random.fold_in(root, 1)
        self.meta = {"eval_history": [], "steps_to_solve": None, "wall_time_sec": 0.0,
                     "train_time_sec": 0.0, "train_steps_timed": 0, "grad_horizon": None,
                     "grad_norms": None, "grad_horizon_init": None, "grad_norms_init": None,
                     "grad_horizons": [], "solved_streak": 0}
        self.history = self.meta["eval_history"]
        self.ckpt = Checkpointer(workdir, keep=tc.keep_checkpoints, every=tc.checkpoint_every)
        self.writer = None
        self.resumed_from = None
        self.status, self.error, self.diverged_at = "done", None, None
        self.stop_reason: str | None = None  # "solved" when train.stop_when_solved ended it
        self.stopped_at: int | None = None  # the step a diverged member stays at
        self.summary: dict | None = None  # set once finished (summary.json written)
        self.closed = False

    def restore(self, target):
        """The state from the latest checkpoint (or `target` if none), meta updated."""
        restored = self.ckpt.restore_latest(target)
        if restored is None:
            return target
        step, state, meta = restored
        self.resumed_from = int(step)
        self.meta.update(meta)
        self.history = self.meta["eval_history"]
        log.info("resuming %s from the checkpoint at step %d", self.workdir, step)
        return state

    def open_writer(self, start: int) -> None:
        from gru_jax.harness.tb import NullWriter, Writer

        if not is_primary():  # one TensorBoard run per run, not per process
            self.writer = NullWriter()
            return
        # Steps up to `start` were logged by the session that saved the checkpoint; later
        # ones by a killed session may be stale and get logged again: TensorBoard drops them.
        self.writer = Writer(self.workdir, purge_step=start + 1)
        if start == 0:
            hparams = flatten(self.config)
            # False, True or an int: one type per column across a sweep, so a string.
            hparams["model.remat"] = str(hparams["model.remat"])
            self.writer.hparams_start(hparams)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.writer is not None:
                self.writer.close()
            self.ckpt.close()


class _Run:
    """The mutable part of one training session (train_and_evaluate's helper).

    It trains K >= 1 members whose configs differ at most in PACK_KEYS. K = 1 is a
    plain run (state unstacked, `train_step` jitted as it is). K > 1 stacks the
    states along a leading member axis ([K, ...] leaves) and advances all of them
    with one jitted `jax.vmap(train_step)`; each member keeps its own data stream
    (its seed), learning rate (a scale of member 0's schedule), checkpoints,
    TensorBoard run and summary.json, and stops alone when it diverges.
    """

    def __init__(self, configs: list, task: Task, workdirs: list[str]):
        self.t_start = time.perf_counter()
        self.configs, self.task = configs, task
        self.config = configs[0]
        self.tc = tc = self.config.train
        self.spec = model_spec(self.config.model)
        self.members = [_Member(c, w) for c, w in zip(configs, workdirs, strict=True)]
        self.packed = len(self.members) > 1
        self.single = jax.process_count() == 1
        try:
            self._restore_states()
        except BaseException:
            for m in self.members:
                m.close()
            raise
        self.num_params = int(sum(x.size for x in jax.tree_util.tree_leaves(
            self._member_state(0).params)))
        self.start = self.step = int(np.ravel(self.state.step)[0])

        # Batches are sharded over a 1-D device mesh on the batch axis, the state is
        # replicated (a no-op on one device; placing the state up front keeps the step
        # from compiling twice, once for the initial placement and once for its own).
        mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
        P = jax.sharding.PartitionSpec
        sharding = jax.sharding.NamedSharding(mesh, P("data"))
        replicated = jax.sharding.NamedSharding(mesh, P())
        self.state = jax.device_put(self.state, replicated)
        sample, batch_size = task.sample, tc.batch_size

        def step_fn(state, data_key, lr_scale):
            batch = sample(jax.random.fold_in(data_key, state.step), batch_size)
            batch = jax.lax.with_sharding_constraint(batch, sharding)
            # Looked up at trace time (tests swap in a poisoned train_step).
            return train_step(state, batch) if lr_scale is None else \
                train_step(state, batch, lr_scale)

        # Data keys and lr scales are arguments, not constants of the program, so runs that
        # differ only in seed (or packed lr) share one executable in the compilation cache.
        if self.packed:
            keys = jnp.stack([m.data_key for m in self.members])
            lr0 = self.tc.learning_rate
            scales = jnp.asarray([c.train.learning_rate / lr0 for c in configs], jnp.float32)
            run_step = jax.vmap(step_fn)
        else:
            keys, scales = self.members[0].data_key, None
            run_step = lambda state, key, _: step_fn(state, key, None)  # noqa: E731
        keys, scales = jax.device_put((keys, scales), replicated)
        # Compiled ahead of time so that XLA's own account of the step's memory is at hand.
        compiled = jax.jit(run_step, out_shardings=replicated).lower(
            self.state, keys, scales).compile()
        self.step_fn = lambda state: compiled(state, keys, scales)  # noqa: E731
        self.step_memory = compiled_memory_bytes(compiled)
        # On the mesh like the state (a jitted call must not mix device sets).
        self.eval_batch = jax.jit(task.eval_batch, static_argnums=1, out_shardings=replicated)(
            jax.random.key(EVAL_SEED), tc.eval_size)
        spec, target = self.spec, task.target
        n_diag = DIAGNOSTIC_EXAMPLES

        def eval_fn(state, batch):
            # Gradient diagnostics on the first examples only: a backward pass per eval.
            few = jax.tree_util.tree_map(lambda a: a[:n_diag], batch)
            return eval_step(state, batch), diagnose(state, few, spec, target)

        self.eval_fn = jax.jit(jax.vmap(eval_fn, in_axes=(0, None)) if self.packed else eval_fn)

        for m in self.members:
            m.open_writer(self.start)
        # Timing: training steps after the first (compiling) one, minus eval/log/save time.
        self.t_loop = None
        self.steps_timed = 0
        self.excluded = 0.0

    def _restore_states(self) -> None:
        """self.state: every member's latest checkpoint (or fresh), stacked if packed.

        Raises _Unpackable if the members' checkpoints are at different steps (a
        group killed between two members' saves, or members that ran apart)."""
        if not self.packed:
            m = self.members[0]
            self.state = m.restore(create_train_state(m.init_key, self.config, self.task))
            return
        fresh = create_train_state(jnp.stack([m.init_key for m in self.members]),
                                   self.config, self.task)
        states = [m.restore(_unstack(fresh, i)) for i, m in enumerate(self.members)]
        steps = {int(s.step) for s in states}
        if len(steps) > 1:
            raise _Unpackable(f"checkpoints at different steps {sorted(steps)}")
        self.state = _stack(states)

    def _member_state(self, i: int) -> TrainState:
        return _unstack(self.state, i) if self.packed else self.state

    def _view(self, tree, i: int):
        """Member i's part of host values (numpy [K, ...] leaves when packed; 0-d ->
        Python scalars, as `_host` gives a plain run)."""
        if not self.packed:
            return tree
        return jax.tree_util.tree_map(
            lambda a: a[i].item() if np.ndim(a) == 1 else a[i], tree)

    def active(self) -> list[tuple[int, _Member]]:
        """(index, member) of the members still training."""
        return [(i, m) for i, m in enumerate(self.members)
                if m.summary is None and m.stopped_at is None]

    def step_of(self, m: _Member) -> int:
        return self.step if m.stopped_at is None else m.stopped_at

    def _name(self, m: _Member) -> str:
        return f"{os.path.basename(os.path.normpath(m.workdir))}: " if self.packed else ""

    # -- pieces of the loop --

    def _meta(self, m: _Member) -> dict:
        now = time.perf_counter()
        train_t = (now - self.t_loop - self.excluded) if self.t_loop is not None else 0.0
        return {**m.meta, "eval_history": m.history,
                "wall_time_sec": m.meta["wall_time_sec"] + (now - self.t_start),
                "train_time_sec": m.meta["train_time_sec"] + train_t,
                "train_steps_timed": m.meta["train_steps_timed"] + self.steps_timed}

    def evaluate(self, step: int, *, image: bool = False, members=None) -> dict:
        """Eval metrics and diagnostics into each member's history and TensorBoard
        at `step` (default: the active members); with `image`, also the ||dL/dh_t||
        curve as a picture (~0.15 s to draw). Returns the first member's entry."""
        from gru_jax.harness.tb import plot_curve

        ev_all, diag_all = _host(self.eval_fn(self.state, self.eval_batch))
        entry = None
        for i, m in (self.active() if members is None else members):
            ev, diag = self._view(ev_all, i), dict(self._view(diag_all, i))
            norms = np.asarray(diag.pop("grad_norms"), np.float64)
            horizon = diagnostics.grad_horizon(norms)
            e = {"step": int(step), **{k: float(v) for k, v in ev.items()}}
            m.history.append(e)
            if (m.meta["steps_to_solve"] is None and np.isfinite(ev[self.task.metric])
                    and self.task.solved(ev)):
                m.meta["steps_to_solve"] = int(step)
            solved = bool(np.isfinite(ev[self.task.metric]) and self.task.solved(ev))
            m.meta["solved_streak"] = m.meta["solved_streak"] + 1 if solved else 0
            m.meta["grad_horizon"] = int(horizon)
            m.meta["grad_norms"] = [float(v) for v in norms]
            m.meta["grad_horizons"].append([int(step), int(horizon)])
            w = m.writer
            w.scalars(step, {f"eval/{k}": v for k, v in ev.items()})
            w.scalars(step, {"diagnostics/grad_horizon": horizon,
                             "diagnostics/grad_horizon_median": _median_horizon(m.meta),
                             **diag})
            if image:
                w.image("diagnostics/grad_norm_vs_t", step, plot_curve(
                    norms, title=f"||dL/dh_t|| at step {step} (horizon {horizon})",
                    xlabel="t", ylabel="||dL/dh_t||"))
            w.flush()
            log.info("%sstep %d: eval %s", self._name(m), step, ", ".join(
                f"{k} {v:.4g}" for k, v in e.items() if k != "step"))
            entry = entry or e
        return entry

    def diagnose_init(self) -> None:
        """||dL/dh_t|| and its horizon at initialisation (step 0, before any update),
        into each fresh member's meta and TensorBoard (step 0)."""
        _, diag_all = _host(self.eval_fn(self.state, self.eval_batch))
        for i, m in self.active():
            norms = np.asarray(self._view(diag_all, i)["grad_norms"], np.float64)
            m.meta["grad_horizon_init"] = diagnostics.grad_horizon(norms)
            m.meta["grad_norms_init"] = [float(v) for v in norms]
            m.writer.scalars(0, {"diagnostics/grad_horizon": m.meta["grad_horizon_init"]})

    def _stop_solved(self, step: int) -> None:
        """Finish each active member solved at the last `train.stop_when_solved` evals
        in a row (a checkpoint at `step` first, so a rerun does not train it again)."""
        k = self.tc.stop_when_solved
        for i, m in self.active():
            if k and m.meta["solved_streak"] >= k:
                m.stop_reason, m.stopped_at = "solved", step
                m.ckpt.save(step, self._member_state(i), self._meta(m), force=True)
                log.info("%ssolved at %d evals in a row: stopping at step %d",
                         self._name(m), k, step)
                self._finish_member(i, m)

    def _check_diverged(self) -> None:
        """Stop (and finish) each active member whose state records a bad step."""
        bad = np.ravel(np.asarray(self.state.bad_step))  # waits for the step: the sync point
        for i, m in self.active():
            if bad[i] >= 0:
                m.status, m.diverged_at = "diverged", int(bad[i])
                m.stopped_at = int(bad[i]) - 1  # the state holds the params after this step
                log.warning("%sloss or gradient not finite at step %d: stopping",
                            self._name(m), bad[i])
                # At once, so a group killed later does not run this member again.
                self._finish_member(i, m)

    def loop(self, stop: _StopSignal) -> None:
        from tqdm.auto import tqdm

        tc = self.tc
        bar = tqdm(total=tc.steps, initial=self.start, unit="step", dynamic_ncols=True,
                   disable=not (tc.progress and sys.stderr.isatty()))
        pending: list[dict] = []
        last_t, last_step, last_excl = time.perf_counter(), self.step, 0.0
        if self.step == 0:
            self.diagnose_init()
        self._stop_solved(self.step)  # a rerun of a run that stopped solved trains no more
        try:
            while self.step < tc.steps and self.active():
                self.state, metrics = self.step_fn(self.state)
                pending.append(metrics)
                self.step += 1
                step = self.step
                bar.update(1)
                if self.t_loop is None:  # the first step compiles: time from its end
                    jax.block_until_ready(self.state)
                    self.t_loop = last_t = time.perf_counter()
                    last_step = step
                else:
                    self.steps_timed += 1
                is_eval = step % tc.eval_every == 0 or step == tc.steps
                is_ckpt = step % tc.checkpoint_every == 0 or step == tc.steps
                is_log = step % tc.log_every == 0 or step == tc.steps
                # Several processes stop together, at a step where they all sync anyway.
                if not (is_eval or is_ckpt or is_log or (stop.signum and self.single)):
                    continue
                stopping = _any_process(stop.signum is not None)
                self._check_diverged()
                active = self.active()
                if not active:
                    return
                t0 = time.perf_counter()
                if is_log and pending:
                    logged = _host(pending)
                    pending.clear()
                    busy = t0 - last_t - (self.excluded - last_excl)
                    for i, m in active:
                        mine = [self._view(x, i) for x in logged]
                        mean = {k: float(np.mean([x[k] for x in mine])) for k in mine[0]}
                        if step > last_step and busy > 0:
                            mean["steps_per_sec"] = (step - last_step) / busy
                        m.writer.scalars(step, {f"train/{k}": v for k, v in mean.items()})
                    last_t, last_step, last_excl = t0, step, self.excluded
                    bar.set_postfix(loss=f"{mean['loss']:.4g}", refresh=False)
                if is_eval:
                    entry = self.evaluate(step, image=is_ckpt)
                    bar.set_postfix(**{f"eval_{self.task.metric}":
                                       f"{entry[self.task.metric]:.4g}"}, refresh=False)
                    self._stop_solved(step)
                    active = self.active()
                if is_ckpt or stopping:
                    for i, m in active:
                        m.writer.flush()  # all events up to a checkpoint are on disk with it
                        m.ckpt.save(step, self._member_state(i), self._meta(m), force=True)
                self.excluded += time.perf_counter() - t0
                if stopping:
                    for _, m in active:
                        m.status = "preempted"
                    log.warning("signal %s: saved a checkpoint at step %d; stopping",
                                stop.signum, step)
                    return
        finally:
            bar.close()

    def summary(self, m: _Member) -> RunSummary:
        meta = self._meta(m)
        train_time, timed = meta["train_time_sec"], meta["train_steps_timed"]
        final = {k: v for k, v in m.history[-1].items() if k != "step"} if m.history \
            else {}
        metric = self.task.metric
        solved = bool(final and final.get(metric) is not None and np.isfinite(final[metric])
                      and self.task.solved(final))
        mem, mem_source = peak_memory()
        s = {
            "status": m.status,
            "step": int(self.step_of(m)),
            "num_devices": jax.device_count(),
            "final": final,
            "num_params": self.num_params,
            "solved": solved,
            "steps_to_solve": m.meta["steps_to_solve"],
            # Packed: the group's speed (every member advances one step per program step).
            "steps_per_sec": timed / train_time if timed and train_time > 0 else None,
            "step_time_ms": 1000.0 * train_time / timed if timed and train_time > 0 else None,
            "wall_time_sec": meta["wall_time_sec"],
            "resumed_from": m.resumed_from,
            "grad_horizon": m.meta["grad_horizon"],
            "grad_norms": m.meta["grad_norms"],
            # Horizons at initialisation and the median over the evals of training (the last
            # one alone swings: a trained net may route gradient anywhere); threshold in
            # gru_jax.harness.diagnostics.HORIZON_FRACTION.
            "grad_horizon_init": m.meta["grad_horizon_init"],
            "grad_norms_init": m.meta["grad_norms_init"],
            "grad_horizon_median": _median_horizon(m.meta),
            "grad_horizons": m.meta["grad_horizons"],
            "stop_reason": _stop_reason(m),
            "peak_memory_bytes": mem,
            "peak_memory_source": mem_source,
            "step_memory_bytes": self.step_memory,  # of the whole (packed) program
            "pack_size": len(self.members),
            "eval_history": m.history,
            "task": TaskInfo(metric=metric, solved_at=self.task.solved_at,
                             baseline=self.task.baseline, input_len=self.task.seq_len,
                             target=self.task.target),
            "config": m.config.to_dict(),
            "machine": machine_info(),
        }
        return RunSummary(**s, diverged_at=m.diverged_at, error=m.error)

    def _finish_member(self, i: int, m: _Member) -> dict:
        """Final eval (unless preempted or already done at this step), summary.json, close."""
        step = self.step_of(m)
        if m.status != "preempted" and (not m.history or m.history[-1]["step"] != step):
            # A diverged member's params stay those of its last good step.
            self.evaluate(step, image=True, members=[(i, m)])
        m.summary = self.summary(m)
        if is_primary():
            write_summary(m.workdir, m.summary)
        m.writer.hparams_end(m.status, step)
        m.close()
        return m.summary

    def finish(self) -> list[dict]:
        """Finish every member not finished yet; every member's summary, in order."""
        for i, m in enumerate(self.members):
            if m.summary is None:
                self._finish_member(i, m)
        return [m.summary for m in self.members]

    def fail(self, e: BaseException) -> None:
        """summary.json with status "failed" for each unfinished member (best effort), close."""
        for m in self.members:
            if m.summary is not None:
                continue
            m.status, m.error = "failed", f"{type(e).__name__}: {e}"
            try:
                if is_primary():
                    write_summary(m.workdir, self.summary(m))
                m.writer.hparams_end("failed", self.step_of(m))
            except Exception:  # noqa: BLE001 - the original error matters more
                log.exception("could not write the failed run's summary")
        self.close()

    def close(self) -> None:
        for m in self.members:
            m.close()


def _train(configs: list, workdirs: list[str]) -> list[dict]:
    """Validate, prepare the workdirs, train the members in one session, finish.
    Raises `Preempted` after every member's checkpoint and summary are written."""
    task = validate(configs[0])
    for c in configs[1:]:
        validate(c)
    configs = [resolved(c) for c in configs]
    flats = [flatten(c) for c in configs]
    for f, w in zip(flats, workdirs, strict=True):
        diff = sorted(k for k in set(f) | set(flats[0])
                      if k not in PACK_KEYS and f.get(k) != flats[0].get(k))
        if diff:
            raise ConfigError(f"{w}: cannot pack runs that differ in {', '.join(diff)} "
                              f"(only {', '.join(sorted(PACK_KEYS))} may differ)")
    for f, w in zip(flats, workdirs, strict=True):
        if is_primary():  # the others would race on the same files (Orbax creates its own)
            _prepare_workdir(w, f)
    run = _Run(configs, task, workdirs)
    try:
        with _StopSignal() as stop:
            run.loop(stop)
    except BaseException as e:
        run.fail(e)
        raise
    summaries = run.finish()
    for s, w in zip(summaries, workdirs, strict=True):
        print(one_line(s, w), flush=True)
    if any(s.status == "preempted" for s in summaries):
        step = max(s.step for s in summaries)
        raise Preempted(f"preempted at step {step}; run the same command to resume")
    return [s.to_dict() for s in summaries]


def train_and_evaluate(config, workdir: str) -> dict:
    """Train `config` in `workdir`, resuming from its latest checkpoint, and
    return the summary (also written to <workdir>/summary.json).

    Raises ConfigError (before touching the workdir), WorkdirError, or
    `Preempted` (after saving a checkpoint and a "preempted" summary).
    A diverged run returns normally with status "diverged".
    """
    return _train([config], [workdir])[0]


def train_packed(configs: list, workdirs: list[str]) -> list[dict]:
    """Train K runs as one vmapped program: configs that differ only in `seed` and
    `train.learning_rate` (PACK_KEYS), run k in workdirs[k]. Returns their summaries.

    Each run's files (config.json, Orbax checkpoints, TensorBoard events,
    summary.json) are those `train_and_evaluate(configs[k], workdirs[k])` would
    write, with the same numbers to float tolerance, so a run can be resumed
    alone and a group from its runs' checkpoints. If those checkpoints are at
    different steps (a group killed between two runs' saves), the runs are
    trained one after another instead. A run that diverges stops alone; on
    SIGTERM every run saves and is marked preempted, then `Preempted` is raised.
    K = 1 is `train_and_evaluate`.
    """
    if len(configs) != len(workdirs) or not configs:
        raise ValueError("train_packed: one workdir per config, at least one")
    try:
        return _train(list(configs), list(workdirs))
    except _Unpackable as e:
        log.warning("%s: training the %d runs one after another", e, len(configs))
        return [train_and_evaluate(c, w) for c, w in zip(configs, workdirs, strict=True)]
