"""What every task gives the trainer.

A batch is a dict of arrays::

    x: [batch, time, input_size] float32      the model input
    y: [batch] (target="last") or [batch, time] (target="sequence")
       float32 for loss="mse" (y [batch, 1] for regression), int32 for loss="xent"
    w: [batch, time] float32, sequence targets only: the METRIC's weights, 1 where
       the step is scored (copy: the recall steps). The loss ignores w: it is the
       plain mean over all [batch, time] steps (the copy task's loss in Arjovsky
       et al. 2016). A task needing a weighted loss would add its own key.

`sample(key, batch_size)` is a pure function of its key, so the training data
at step s are `sample(jax.random.fold_in(data_key, s), batch_size)`: a run
resumed at any step sees exactly the batches it would have seen. Held-out
evaluation data come from `eval_batch(key, size)` (a fixed key for generated
tasks; for datasets the key is unused and the batch is the test split, or its
first `size` examples when `size` is smaller).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from gru_jax.harness.metrics import reached

Batch = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    input_size: int  # features per time step
    output_size: int  # 1 for regression, number of classes for xent
    seq_len: int  # time steps of the model input
    target: str  # "last": one prediction from the last step; "sequence": one per step
    loss: str  # "mse" or "xent"
    metric: str  # name of the task metric in summary["final"]: "mse" or "accuracy"
    solved_at: float  # threshold on `metric`
    baseline: float  # loss of the best memoryless predictor (reported beside results)
    sample: Callable[[jax.Array, int], Batch]
    eval_batch: Callable[[jax.Array, int], Batch]

    def solved(self, metrics: dict) -> bool:
        """Solved: `metrics[self.metric]` reaches `solved_at` (mse <= it, accuracy >= it)."""
        return reached(self.metric, float(metrics[self.metric]), self.solved_at)


def mse_task(name: str, *, input_size: int, output_size: int, seq_len: int, solved_at: float,
             baseline: float, sample: Callable, eval_batch: Callable) -> Task:
    """A regression Task: `output_size` values predicted from the last step, trained and
    scored by mean squared error (solved at MSE <= `solved_at`)."""
    return Task(name=name, input_size=input_size, output_size=output_size, seq_len=seq_len,
                target="last", loss="mse", metric="mse", solved_at=solved_at,
                baseline=baseline, sample=sample, eval_batch=eval_batch)
