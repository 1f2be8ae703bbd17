"""Your own cell through the trainer: a leaky tanh RNN on the adding problem.

    h' = (1 - a) * h + a * tanh(x W + h U + b),   a = sigmoid(alpha)  [hidden], learned

The cell is five pure functions in a `gru_jax.Cell`; `gru_jax.register_cell`
makes ``model.cell=leaky`` valid in this config, its sweep and its report::

    python scripts/train.py --config=experiments/custom_cell.py --workdir=runs/leaky
    python scripts/sweep.py --config=experiments/custom_cell.py --workdir=runs/leaky_vs_rnn

The optimiser is a plain optax name (``train.optimizer``); a factory of your
own is registered the same way, with `gru_jax.harness.optimizers.register_optimizer`.
"""

import jax
import jax.numpy as jnp

import gru_jax
from gru_jax.harness.config import base_config


def init_leaky(key, input_size, hidden_size, *, param_dtype=jnp.float32):
    """{w_i [input, hidden], w_h [hidden, hidden], b [hidden], alpha [hidden]}."""
    k1, k2 = jax.random.split(key)
    return {
        "w_i": jax.nn.initializers.lecun_normal()(k1, (input_size, hidden_size), param_dtype),
        "w_h": jax.nn.initializers.orthogonal()(k2, (hidden_size, hidden_size), param_dtype),
        "b": jnp.zeros((hidden_size,), param_dtype),
        "alpha": jnp.zeros((hidden_size,), param_dtype),  # a = 0.5 at the start
    }


def project(params, x, dtype=None):
    """x [..., input] -> x W + b [..., hidden]: the part the scan hoists out of the loop."""
    return x @ params["w_i"] + params["b"]


def step(params, h, xp, dtype=None, rec_mask=None):
    """h [batch, hidden], xp [batch, hidden] -> (h', h')."""
    hd = h if rec_mask is None else h * rec_mask
    a = jax.nn.sigmoid(params["alpha"])
    h = (1 - a) * h + a * jnp.tanh(xp + hd @ params["w_h"])
    return h, h


LEAKY = gru_jax.register_cell(gru_jax.Cell(
    name="leaky",
    init=init_leaky,
    project=project,
    step=step,
    zero_carry=lambda params, batch_shape: jnp.zeros((*batch_shape, params["b"].shape[-1])),
    hidden_of=lambda h: h,
    input_size=lambda params: params["w_i"].shape[0],
))


def get_config():
    config = base_config("adding")
    config.model.cell = "leaky"
    config.model.hidden_size = 32
    config.task.seq_len = 50
    config.train.steps = 1000
    config.train.optimizer = "adam"  # any optax optimiser by name
    config.train.eval_every = 50
    return config


def get_sweep():
    """The leaky RNN against the plain tanh RNN over T: 4 runs."""
    return [{"model.cell": cell, "task.seq_len": t} for cell in ("leaky", "rnn") for t in (20, 50)]
