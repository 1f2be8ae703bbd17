"""The pure parts of training: losses, the train state, one optimiser step, one eval,
the gradient diagnostics, and packing K runs into one program.

* `train_step(state, batch, lr_scale)` is a pure function of its arguments (the
  optimiser, schedule, model and loss ride in the state as static fields).
* `sampled_step` draws the step's batch on device from the run's data key:
  the batch of step s is ``task.sample(fold_in(data_key, s), batch_size)``, so a
  resumed run sees the batches of an uninterrupted one.
* `packed(step)` is the same step over K runs stacked on a leading member axis
  (`jax.vmap` over states [K, ...], data keys [K] and learning-rate scales [K]);
  a single run is a pack of one.
* Divergence: a step whose loss or gradient norm is NaN/inf does not update the
  params; the state records that step in ``bad_step`` and every later step is a
  no-op, so the host only has to look at ``bad_step`` when it syncs anyway.
* `train_loop_program` compiles the packed steps the trainer runs (n per call);
  `compiled_memory_bytes` of it is *the* train-step memory (the trainer's summary,
  the study's cost table and the ensemble benchmark all use it).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from gru_jax.bench.timing import compiled_memory_bytes  # noqa: F401 - the trainer's account
from gru_jax.harness import diagnostics, optimizers
from gru_jax.harness.models import (
    ModelSpec,
    apply_model,
    hidden_grads,
    init_model,
    model_spec,
    run_layers,
)
from gru_jax.harness.tasks.base import Task

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
    """clip_by_global_norm(clip_norm) then train.optimizer (weight decay on kernels only)."""
    schedule = make_schedule(train_cfg)
    tx = optimizers.optimizer(train_cfg.optimizer, schedule, train_cfg.weight_decay)
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
    train_key = {k: v for k, v in config.train.to_dict().items() if k not in _HOST_ONLY}
    init = _init_program(spec, task.input_size, task.output_size, task.seq_len, tx,
                         json.dumps(train_key, sort_keys=True, default=str))
    if key.ndim:
        # One key at a time (not vmap): each member's initial numbers are those of a run alone.
        params, opt_state = stack([init(k) for k in key])
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


_INITS: dict = {}  # in-process: a sweep worker initialises many runs of few shapes
_INITS_KEPT = 8
# train keys the initial state cannot depend on (the schedule's length only moves the
# rate, and optax's initial state of a schedule is a step count)
_HOST_ONLY = {"steps", "eval_every", "eval_size", "log_every", "checkpoint_every",
              "keep_checkpoints", "stop_when_solved", "diagnose_every", "progress"}


def _init_program(spec, input_size: int, output_size: int, seq_len: int, tx, train_key: str):
    """The jitted init (params, optimiser state) of one model and optimiser, kept per
    (spec, sizes, train config): a fresh closure per run re-traced and re-lowered it,
    about 1 s of every sweep run (before its clock starts)."""
    key = (spec, input_size, output_size, seq_len, train_key)
    if key not in _INITS:
        @jax.jit  # one compilation instead of one per eager op of the initialisers
        def init(k):
            params = init_model(k, spec, input_size, output_size, seq_len=seq_len)
            return params, tx.init(params)

        while len(_INITS) >= _INITS_KEPT:
            _INITS.pop(next(iter(_INITS)))
        _INITS[key] = init
    return _INITS[key]


def stack(trees: list):
    """K pytrees of one structure -> one pytree with leaves stacked [K, ...]."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree, i: int):
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


# --- packing and the compiled program ------------------------------------------------

StepFn = Callable[..., tuple[TrainState, dict]]  # (state, batch, lr_scale) -> (state, metrics)


def sampled_step(step_fn: StepFn, task: Task, batch_size: int, sharding=None) -> StepFn:
    """(state, data_key, lr_scale) -> (state, metrics): `step_fn` on the step's own
    batch, drawn on device (sharded over the batch axis with `sharding`)."""

    def step(state, data_key, lr_scale):
        batch = task.sample(jax.random.fold_in(data_key, state.step), batch_size)
        if sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, sharding)
        return step_fn(state, batch, lr_scale)

    return step


def packed(step: StepFn) -> StepFn:
    """`step` over K runs: every argument and result gains a leading member axis [K]."""
    return jax.vmap(step)


def data_mesh() -> tuple[jax.sharding.NamedSharding, jax.sharding.NamedSharding]:
    """(batch sharding, replicated): a 1-D mesh of every device on the batch axis."""
    mesh = jax.sharding.Mesh(jax.devices(), ("data",))
    P = jax.sharding.PartitionSpec
    return jax.sharding.NamedSharding(mesh, P("data")), jax.sharding.NamedSharding(mesh, P())


def train_loop_program(state: TrainState, data_keys: jax.Array, lr_scales: jax.Array,
                       task: Task, batch_size: int, step_fn: StepFn = train_step):
    """The trainer's program: n packed steps in one call (a `lax.fori_loop`) for a pack
    of K runs, compiled ahead of time: (state [K, ...], data_keys [K], lr_scales [K]
    float32, n int32 []) -> (state, metric sums over the n steps {name: [K]}), the
    arguments placed replicated on the data mesh. One step is n = 1.

    Why a loop: a small model's step takes about as long as Python takes to dispatch
    it (~1 ms on CPU), so the trainer calls this once per eval/log/checkpoint interval
    instead of once per step; n is an argument, so one program serves every interval.
    What times a step (the benchmarks, the study's cost table) times this program over
    n steps, so it measures what the trainer runs.
    """
    sharding, replicated = data_mesh()
    step = packed(sampled_step(step_fn, task, batch_size, sharding))

    def loop(state, keys, scales, n):
        _, metrics = jax.eval_shape(step, state, keys, scales)
        zeros = jax.tree_util.tree_map(lambda m: jnp.zeros(m.shape, m.dtype), metrics)

        def body(_, carry):
            state, sums = carry
            state, m = step(state, keys, scales)
            return state, jax.tree_util.tree_map(jnp.add, sums, m)

        return jax.lax.fori_loop(0, n, body, (state, zeros))

    n = jnp.zeros((), jnp.int32)
    return jax.jit(loop, out_shardings=replicated).lower(
        state, data_keys, lr_scales, n).compile()
