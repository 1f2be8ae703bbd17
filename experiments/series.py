"""Forecasting real series: GRU(50), LSTM(50), tanh RNN(50) + Dense(1) against classical baselines.

The seed articles' Keras models (`Sequential([GRU(50), Dense(1)])` and its
LSTM and SimpleRNN twins, 8001 / 10451 / 2651 parameters) on four series that
ship with statsmodels (`gru_jax.proj.series.sources`): monthly CO2, monthly
El Nino sea temperature, yearly sunspots and the yearly Nile flow. Windows of
10 values -> the next one; train / validation / test = 70 / 15 / 15 % by
time, scaled on train only. CO2 is modelled in first differences
(`task.difference`): its test values lie above every training value, and on
levels the GRU cannot reach them (the `difference=False` GRU rows show it).
Trained by this project's trainer: Adam (AdamW, weight decay 0), batch 32,
learning rate 1e-3 with 50 warmup steps and cosine decay, 1000 steps, the
final parameters (no early stopping); the validation MSE is logged and is
what the WOA search minimises. The test split is scored once, after training.

One run (the GRU on sunspots; `--config.task.dataset=...`, or your own
`--config.task.csv=FILE --config.task.column=NAME`)::

    python scripts/train.py --config=experiments/series.py --workdir=runs/series_one
    python scripts/predict.py --workdir=runs/series_one

The study (`get_sweep`: 4 series x 3 cells x 3 seeds, the levels GRU on CO2,
the 3 cells forecasting CO2 12 months ahead, and the WOA-tuned GRU per series;
seeds packed into one program), then its
report with the baselines (persistence, seasonal naive, linear AR, ARIMA, ETS)
into results/series and the README section::

    python scripts/sweep.py  --config=experiments/series.py --workdir=runs/series --pack
    python scripts/report.py --workdir=runs/series --series_results=results/series
    python scripts/report.py --series_readme=README.md --series_results=results/series

The WOA search behind WOA_BEST (per series; validation MSE, 8 candidates)::

    python scripts/search.py --config=experiments/series.py --workdir=runs/series_woa/co2 \\
        --sampler=woa --budget=8 --population=4 --seed=0 \\
        --config.task.dataset=co2 --config.task.difference=True

Measured on the project's 2-core CPU machine while other jobs shared it (load
around 12, so +-50%): the sweep took 557 s wall for its 60 runs (20 programs of
3 packed seeds, 15-40 s each, compile included); the four WOA searches (run
with an earlier version of the trainer, which gives the same numbers) 148 s
(co2), 99 s (elnino), 179 s (sunspots) and 289 s (nile); the report about 8
min (60 checkpoints reloaded, the ARIMA and ETS fits, ARIMA/ETS re-run from
every origin for the 12-month horizon). results/series/manifest.json has the
commit, machine and times; the tables and verdicts are in
results/series/series.md and the README.
"""

import gru_jax.proj.series  # noqa: F401  (registers the forecast and series tasks)
from gru_jax.harness.config import base_config

DATASETS = ("co2", "elnino", "sunspots", "nile")
DIFFERENCED = ("co2",)  # trending: modelled in first differences
CELLS = ("gru", "lstm", "rnn")
SEEDS = (0, 1, 2)
MULTI_STEP = 12  # CO2 a year ahead: all 12 months at once (direct), one head output each

# The best candidate (lowest validation MSE) of each series' WOA search (command above),
# trained again with SEEDS. Searched: hidden 8..64, learning rate 3e-4..1e-2, window 4..24.
WOA_BEST: dict[str, dict] = {
    "co2": {"model.hidden_size": 28, "train.learning_rate": 0.00387, "task.seq_len": 15},
    "elnino": {"model.hidden_size": 64, "train.learning_rate": 0.01, "task.seq_len": 4},
    "sunspots": {"model.hidden_size": 8, "train.learning_rate": 0.00648, "task.seq_len": 24},
    "nile": {"model.hidden_size": 15, "train.learning_rate": 0.000473, "task.seq_len": 4},
}


def get_config():
    config = base_config("series")
    config.model.cell = "gru"
    config.model.hidden_size = 50  # the articles' GRU(50) / LSTM(50) / SimpleRNN(50)
    config.model.variant = "reset_after"  # Keras' default GRU: 8001 parameters with Dense(1)
    config.task.dataset = "sunspots"
    config.task.difference = False  # levels; the sweep differences CO2 (DIFFERENCED)
    config.task.seq_len = 10  # window of 10 values -> the next one
    config.task.horizon = 1
    config.train.steps = 1000
    config.train.batch_size = 32  # Keras' default batch size
    config.train.learning_rate = 1e-3  # Keras' Adam default
    config.train.weight_decay = 0.0  # plain Adam, as in Keras
    config.train.warmup_steps = 50
    config.train.eval_every = 100
    config.train.checkpoint_every = 1000  # one save at the end: runs are short
    config.train.progress = False
    return config


def get_search_space():
    """{dotted key: (low, high, scale, type)} for scripts/search.py: size, rate, window."""
    return {
        "model.hidden_size": (8, 64, "log", int),
        "train.learning_rate": (3e-4, 1e-2, "log", float),
        "task.seq_len": (4, 24, "linear", int),
    }


def get_sweep():
    """The study's runs (see the module docstring)."""
    points = [
        {"task.dataset": d, "task.difference": d in DIFFERENCED, "model.cell": cell, "seed": s}
        for d in DATASETS for cell in CELLS for s in SEEDS
    ]
    points += [{"task.dataset": "co2", "task.difference": False, "model.cell": "gru", "seed": s}
               for s in SEEDS]
    points += [{"task.dataset": "co2", "task.difference": True, "task.horizon": MULTI_STEP,
                "model.cell": cell, "seed": s} for cell in CELLS for s in SEEDS]
    points += [{"task.dataset": d, "task.difference": d in DIFFERENCED, "model.cell": "gru",
                **WOA_BEST[d], "seed": s} for d in WOA_BEST for s in SEEDS]
    return points
