"""One trainer for every experiment: `train_and_evaluate(config, workdir) -> summary`.

Data flow: config -> task batches -> model (cells under scan) -> loss -> optax
update -> metrics (TensorBoard) and checkpoints (Orbax) -> the run's summary
(`summary.RunSummary`). The pure pieces (steps, losses, diagnostics, packing) are
in `gru_jax.harness.steps`; this package is the loop around them:

    loop.py      train_and_evaluate / train_packed: the loop and its events
    session.py   a session's members (one run each) and what the loop shares
    programs.py  the compiled programs and held-out batches, cached in-process
    stop.py      the stop signals and `Preempted`

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

from gru_jax.harness.keys import NOT_HPARAMS
from gru_jax.harness.status import EXIT_PREEMPTED
from gru_jax.harness.train.loop import one_line, train_and_evaluate, train_packed
from gru_jax.harness.train.programs import DIAGNOSTIC_EXAMPLES, EVAL_SEED
from gru_jax.harness.train.stop import STOP_SIGNALS, Preempted

__all__ = ["DIAGNOSTIC_EXAMPLES", "EVAL_SEED", "EXIT_PREEMPTED", "NOT_HPARAMS", "STOP_SIGNALS",
           "Preempted", "one_line", "train_and_evaluate", "train_packed"]
