"""Tuning matters: the adding problem at T = 200 with a short budget of 300 steps.

At the default learning rate of this file (1e-3, Adam's usual default) a GRU
with 32 units stays at the mean predictor (eval MSE 0.159 after 300 steps);
at 1e-2 it reaches 0.006. The search tunes learning rate (log, 1e-4..1; at 1 training diverges),
hidden size (log, int, 8..64) and clipping norm (log, 0.1..10); every
candidate trains the same 300 steps.

One run of the base config::

    python scripts/train.py --config=experiments/search_adding.py --workdir=runs/search_one

Whale optimization vs random search, 24 candidates each (6 generations of 4;
also --sampler=tpe|cmaes, Optuna's; --workers=2 for two workers on one search)::

    python scripts/search.py --config=experiments/search_adding.py \\
        --workdir=runs/search_woa_s0 --sampler=woa --budget=24 --population=4 --seed=0
    python scripts/search.py --config=experiments/search_adding.py \\
        --workdir=runs/search_random_s0 --sampler=random --budget=24 --population=4 --seed=0

A grid at a similar budget (`get_sweep`: 3 learning rates x 3 hidden sizes x
2 clipping norms, 18 runs)::

    python scripts/sweep.py --config=experiments/search_adding.py --workdir=runs/search_grid

Measured on the project's 2-core CPU machine (shared, +-30%): one candidate
takes 10-20 s (compile included; about 60 steps/s at hidden 32); a
24-candidate search 4.3-7.2 min wall (6.5-10 min CPU), the grid 5.6 min.
Best eval MSE over 3 search seeds: WOA median 1.84e-4, random search 2.18e-4,
the grid 1.84e-4 (bench_results/search_adding.md has the table).
"""

from gru_jax.harness.config import base_config


def get_config():
    config = base_config("adding")
    config.model.cell = "gru"
    config.model.hidden_size = 32
    config.task.seq_len = 200
    config.train.steps = 300
    config.train.batch_size = 64
    config.train.learning_rate = 1e-3
    config.train.warmup_steps = 30
    config.train.clip_norm = 1.0
    config.train.eval_every = 150
    config.train.checkpoint_every = 300  # one save at the end: candidates are short
    config.train.progress = False
    return config


def get_search_space():
    """{dotted key: (low, high, scale, type)} for scripts/search.py."""
    return {
        "train.learning_rate": (1e-4, 1.0, "log", float),
        "model.hidden_size": (8, 64, "log", int),
        "train.clip_norm": (0.1, 10.0, "log", float),
    }


def get_sweep():
    """The grid baseline: learning rate x hidden size x clipping norm, 18 runs."""
    return [
        {"train.learning_rate": lr, "model.hidden_size": hidden, "train.clip_norm": clip}
        for lr in (1e-3, 1e-2, 1e-1)
        for hidden in (8, 23, 64)
        for clip in (0.3, 3.0)
    ]
