"""The long-range study's capacity control (second protocol): the copy task at a short
delay (T = 10) with C = 2 ... 32 symbols of K = 8 to recall, for the GRU and the LSTM
at H = 16 ... 128, the better of two rates (3e-3, 1e-2), two seeds, capped at 6000
steps. It says which C each size holds before the delay matters, so the delay sweep
is not a capacity test (Collins et al. 2017: about one number per unit).

    python scripts/sweep.py --config=experiments/long_range_capacity.py \\
        --workdir=results/long_range/capacity --workers=2

One run of it::

    python scripts/train.py --config=experiments/long_range_capacity.py \\
        --workdir=runs/capacity_one --config.task.copy_len=8 --config.model.hidden_size=32

`:reduced`: C in {2, 8}, the GRU at H = 16, one rate and seed (make study).
"""

from gru_jax.proj.long_range import design

REDUCED = {"copy_lens": (2, 8), "arms": ("gru",), "hidden": (16,), "lrs": (1e-2,),
           "seeds": (0,)}


def get_config(arg: str = "full"):
    del arg
    config = design.base_config("copy")
    config.task.seq_len = design.CAPACITY["delay"]
    config.train.steps = design.CAPACITY["cap"]
    return config


def get_sweep(arg: str = "full"):
    if arg not in ("full", "reduced"):
        raise ValueError(f"config argument must be full or reduced, got {arg!r}")
    return design.capacity_points(**(REDUCED if arg == "reduced" else {}))
