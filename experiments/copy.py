"""The copy memory task: GRU vs LSTM vs tanh RNN over the delay T.

Arjovsky et al.'s form (see `gru_jax.harness.tasks.copy`), made small enough for a
CPU: C = 5 symbols out of K = 8 to recall after a delay of T blanks (the input
has T + 2C steps). Chance on the recalled symbols is 1/8; solved at >= 99%.

One run, a GRU with 128 units at T = 20 (solves it)::

    python scripts/train.py --config=experiments/copy.py --workdir=runs/copy_gru128_T20

Measured on the project's 2-core CPU machine (shared with other jobs, so
+-30%): eval accuracy 1.0 at the first eval after 500 steps (eval every 100),
1500 steps in 29 s wall time (43 s CPU), about 84 train steps/s.

The default study (`get_sweep`: cell in gru, lstm, rnn x T 10, 20, 40; 9 runs
of 1500 steps), then its report::

    python scripts/sweep.py  --config=experiments/copy.py --workdir=runs/copy
    python scripts/report.py --workdir=runs/copy

It took 4.5 minutes (270 s wall, 362 s CPU; 2 shared CPU cores). Final
accuracy on the recalled symbols:

    T      10      20      40
    gru    1.0     1.0     0.997   (solved at steps 500, 500, 1000)
    lstm   0.999   0.571   0.745   (T = 10 solved at step 700)
    rnn    0.435   0.134   0.147

At this budget (1500 steps, lr 1e-2) the GRU solves every T, the LSTM only
T = 10 (it is still learning at T = 20 and 40: more steps would help), and the
tanh RNN stays near chance past T = 10. The paper's setting (C = 10, T = 100)
needs far more steps: ``--config.task.copy_len=10 --config.task.seq_len=100
--config.train.steps=20000`` (not run here; a GRU with 128 units at C = 10,
T = 20 reached 0.90 in 1500 steps).
"""

from gru_jax.harness.config import base_config


def get_config():
    config = base_config("copy")
    config.model.cell = "gru"
    config.model.hidden_size = 128  # 64 units reach only 0.95 (C = 5, T = 20) in 3000 steps
    config.task.seq_len = 20  # the delay T; the input has T + 2 * copy_len steps
    config.task.copy_len = 5
    config.task.num_symbols = 8
    config.train.steps = 1500
    config.train.batch_size = 64
    config.train.learning_rate = 1e-2  # AdamW, warmup 100 then cosine, clip 1.0 (the defaults)
    config.train.eval_every = 100
    config.train.eval_size = 512
    return config


def get_sweep():
    """cell x T: 9 runs."""
    return [
        {"model.cell": cell, "task.seq_len": seq_len}
        for cell in ("gru", "lstm", "rnn")
        for seq_len in (10, 20, 40)
    ]
