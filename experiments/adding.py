"""The adding problem: GRU vs LSTM vs tanh RNN over hidden size and sequence length.

One run, a GRU with 64 units at T = 50 (solves it: eval MSE <= 0.01, the
mean predictor scores 0.167)::

    python scripts/train.py --config=experiments/adding.py --workdir=runs/adding_gru64_T50

Measured on the project's 2-core CPU machine (shared, so +-30%): solved at
step 150, the first eval at or below 0.01 (eval every 50 steps); 3000 steps
in about 35 s wall time, about 140 train steps/s.

The default study (`get_sweep`: cell in gru, lstm, rnn x hidden 16, 64 x
T 20, 50; 12 runs of 3000 steps), then its report::

    python scripts/sweep.py  --config=experiments/adding.py --workdir=runs/adding
    python scripts/report.py --workdir=runs/adding

It took 4 minutes (242 s wall, 310 s CPU; all 12 runs in one process, 2 CPU
cores). GRU and LSTM solve every cell of the grid (within 150-350 steps); the
tanh RNN solves T = 20 (400-1500 steps) but not T = 50.

Smaller and faster, e.g. a smoke test: add ``--config.train.steps=300``.
"""

from gru_jax.harness.config import base_config


def get_config():
    config = base_config("adding")
    config.model.cell = "gru"
    config.model.hidden_size = 64
    config.task.seq_len = 50
    config.train.steps = 3000
    config.train.batch_size = 64
    config.train.learning_rate = 1e-2  # AdamW, warmup 100 then cosine, clip 1.0 (the defaults)
    config.train.eval_every = 50
    return config


def get_sweep():
    """cell x hidden_size x seq_len: 12 runs."""
    return [
        {"model.cell": cell, "model.hidden_size": hidden, "task.seq_len": seq_len}
        for cell in ("gru", "lstm", "rnn")
        for hidden in (16, 64)
        for seq_len in (20, 50)
    ]
