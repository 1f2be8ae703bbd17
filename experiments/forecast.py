"""One-step forecasting with the seed articles' Keras models: GRU vs LSTM vs RNN.

The models are Keras ``Sequential([GRU(50), Dense(1)])`` and its LSTM and
SimpleRNN twins: 50 units on one input feature, the last state into one linear
output. Same sizes here (checked by tests/proj/test_experiments.py):

    GRU(50)  + Dense(1): 7950 + 51 =  8001 parameters (reset_after, Keras' default)
    LSTM(50) + Dense(1): 10400 + 51 = 10451
    RNN(50)  + Dense(1): 2600 + 51 =  2651

Input: a window of 10 values, target: the next value (`gru_jax.proj.series.forecast_task`;
normalised series, held-out windows from the last 20%). Training uses this
project's trainer (AdamW with weight decay 0, i.e. Adam; warmup, cosine, clip
1.0), not Keras' fit loop. Solved at held-out MSE <= 0.05 (sine: noise floor
~0.02, persistence 0.100) or <= 0.01 (mackey_glass: persistence 0.680).

One run, the GRU on the noisy sine (solves it)::

    python scripts/train.py --config=experiments/forecast.py --workdir=runs/forecast_gru50_sine

Measured on the project's 2-core CPU machine (shared with other jobs, so
+-30%): held-out MSE 0.0215 after 2000 steps (solved at the first eval, step
100); 12 s wall time (12 s CPU), about 1100 train steps/s. With
``--config.task.series=mackey_glass``: MSE 5.0e-5 (solved at step 200).

The default study (`get_sweep`: cell in gru, lstm, rnn x series sine,
mackey_glass; 6 runs of 2000 steps), then its report::

    python scripts/sweep.py  --config=experiments/forecast.py --workdir=runs/forecast
    python scripts/report.py --workdir=runs/forecast

It took 44 s wall (60 s CPU; 2 shared CPU cores). Final held-out MSE:

             sine     mackey_glass
    gru      0.0215   5.0e-5
    lstm     0.0216   6.5e-5
    rnn      0.0217   3.1e-5

Every model solves both series; on the sine all three sit at the noise floor.
"""

import gru_jax.proj.series  # noqa: F401  (registers the forecast and series tasks)
from gru_jax.harness.config import base_config


def get_config():
    config = base_config("forecast")
    config.model.cell = "gru"
    config.model.hidden_size = 50  # the articles' GRU(50) / LSTM(50) / SimpleRNN(50)
    config.model.variant = "reset_after"  # Keras' default GRU (8001 parameters with the head)
    config.task.seq_len = 10  # window of 10 values -> the next one
    config.task.series = "sine"
    config.train.steps = 2000
    config.train.batch_size = 32  # Keras' default batch size
    config.train.learning_rate = 1e-2
    config.train.weight_decay = 0.0  # plain Adam, as in Keras
    config.train.eval_every = 100
    return config


def get_sweep():
    """cell x series: 6 runs."""
    return [
        {"model.cell": cell, "task.series": series}
        for cell in ("gru", "lstm", "rnn")
        for series in ("sine", "mackey_glass")
    ]
