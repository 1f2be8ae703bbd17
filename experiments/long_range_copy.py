"""The long-range study on the copy task: GRU, chrono-GRU, LSTM, tanh RNN and minGRU
over hidden size x delay T, 3 seeds per point, one budget.

The task (`gru_jax.harness.tasks.copy`): recall C = 5 symbols out of K = 8 after a delay of T
blanks (input length T + 10); accuracy on the recalled symbols, chance 1/8, solved
at >= 0.99. Every run: AdamW at peak lr 1e-2 (warmup 100, cosine to 0 at 1500), clip
1.0, batch 64, at most 1500 steps, eval on 256 held-out sequences every 50 steps;
stops once two evals in a row are solved; the sweep prunes along task.seq_len as in
experiments/long_range_adding.py.

One run of the grid (a single point, e.g. to look at it in TensorBoard)::

    python scripts/train.py --config=experiments/long_range_copy.py \\
        --workdir=runs/lr_copy_one --config.model.hidden_size=128 --config.task.seq_len=40

The study (into the committed results folder), and its reduced grid (`make study`)::

    python scripts/sweep.py --config=experiments/long_range_copy.py \\
        --workdir=results/long_range/copy
    python scripts/sweep.py --config=experiments/long_range_copy.py:reduced \\
        --workdir=runs/long_range/copy
"""

from gru_jax.harness.config import base_config
from gru_jax.proj.long_range.first_protocol.report import study_points

GRIDS = {
    "full": {"hidden": (16, 32, 64, 128), "seq_len": (10, 20, 40, 80, 160),
             "seeds": (0, 1, 2)},
    "reduced": {"hidden": (16, 64), "seq_len": (10, 40), "seeds": (0, 1)},
}
PRUNE_ALONG = "task.seq_len"


def get_config(arg: str = "full"):
    del arg
    config = base_config("copy")
    config.model.hidden_size = 64
    config.task.seq_len = 20
    config.task.copy_len = 5
    config.task.num_symbols = 8
    config.train.steps = 1500
    config.train.batch_size = 64
    config.train.learning_rate = 1e-2
    config.train.eval_every = 50
    config.train.eval_size = 256
    config.train.checkpoint_every = 250
    config.train.stop_when_solved = 2
    return config


def get_sweep(arg: str = "full"):
    """The arms of `study_report.ARM_OVERRIDES` over the grid, in increasing seq_len."""
    return study_points(**GRIDS[arg])
