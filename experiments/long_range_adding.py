"""The long-range study on the adding problem: GRU, chrono-GRU, LSTM, tanh RNN and minGRU
over hidden size x sequence length, 3 seeds per point, one budget.

Every run: AdamW at peak lr 1e-2 (warmup 100 steps, cosine to 0 at 1000), global-norm
clip 1.0, weight decay 1e-4 on kernels, batch 32, at most 1000 steps, eval on a fixed
held-out batch of 256 every 50 steps. Solved at eval MSE <= 0.01 (the mean predictor
scores 0.167); a run stops once two evals in a row are solved
(`train.stop_when_solved=2`), so only unsolved points cost the whole budget. Along
`task.seq_len` the sweep prunes (PRUNE_ALONG): a point is not run when every seed of
the same arm and hidden size failed at the next shorter length.

One run of the grid (a single point, e.g. to look at it in TensorBoard)::

    python scripts/train.py --config=experiments/long_range_adding.py \\
        --workdir=runs/lr_adding_one --config.model.hidden_size=64 --config.task.seq_len=200

The full study (commits its results into results/long_range/adding; run two shards
at once on a 2-core machine, both with --shard=0/1 so that each takes the next free
point)::

    python scripts/sweep.py --config=experiments/long_range_adding.py \\
        --workdir=results/long_range/adding
    python scripts/report.py --study=results/long_range

The reduced grid (`make study`: 2 hidden sizes x 2 lengths x 2 seeds, a few minutes)::

    python scripts/sweep.py --config=experiments/long_range_adding.py:reduced \\
        --workdir=runs/long_range/adding
"""

from gru_jax.harness.config import base_config
from gru_jax.proj.long_range.first_protocol.report import study_points

GRIDS = {
    "full": {"hidden": (16, 32, 64, 128), "seq_len": (10, 20, 50, 100, 200, 500, 1000),
             "seeds": (0, 1, 2)},
    "reduced": {"hidden": (16, 64), "seq_len": (20, 100), "seeds": (0, 1)},
}
PRUNE_ALONG = "task.seq_len"


def get_config(arg: str = "full"):
    del arg  # both grids train with the same config
    config = base_config("adding")
    config.model.hidden_size = 64
    config.task.seq_len = 100
    config.train.steps = 1000
    config.train.batch_size = 32
    config.train.learning_rate = 1e-2
    config.train.eval_every = 50
    config.train.eval_size = 256
    config.train.checkpoint_every = 250
    config.train.stop_when_solved = 2
    return config


def get_sweep(arg: str = "full"):
    """The arms of `study_report.ARM_OVERRIDES` over the grid, in increasing seq_len."""
    return study_points(**GRIDS[arg])
