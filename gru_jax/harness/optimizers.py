"""``train.optimizer`` by name: any optax optimiser, or a factory registered by name.

    >>> import functools, optax
    >>> register_optimizer("sgd_momentum", functools.partial(optax.sgd, momentum=0.9))

An optimiser (an optax function or a registered factory) is called as
``factory(learning_rate=schedule, **extras)``: the extras are ``weight_decay``
(``train.weight_decay``) and ``mask`` (decay the kernels only, not the biases),
each passed only where the factory takes that keyword (optax's adamw, lion,
lamb do; adam and sgd do not, and ignore ``train.weight_decay``). The trainer
puts ``clip_by_global_norm(train.clip_norm)`` in front.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import jax
import optax

Factory = Callable[..., optax.GradientTransformation]
OPTIMIZERS: dict[str, Factory] = {}  # the registered ones; optax's are found by name


def register_optimizer(name: str, factory: Factory) -> None:
    """Make ``train.optimizer=<name>`` build `factory` (see the module docstring)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_optimizer: name must be an identifier, got {name!r}")
    if not callable(factory):
        raise TypeError(f"register_optimizer: factory must be callable, "
                        f"got {type(factory).__name__}")
    OPTIMIZERS[name] = factory


def _optax_optimizer(name: str) -> Factory | None:
    """optax.<name> if it is an optimiser (a function whose first argument is the
    learning rate), else None."""
    fn = getattr(optax, name, None) if not name.startswith("_") else None
    if not inspect.isfunction(fn):
        return None
    params = list(inspect.signature(fn).parameters)
    return fn if params[:1] == ["learning_rate"] else None


def factory_of(name: str) -> Factory | None:
    """The factory ``train.optimizer=name`` builds (a registered one first), or None."""
    return OPTIMIZERS.get(name) or (_optax_optimizer(name) if isinstance(name, str) else None)


def check_name(name) -> str | None:
    """The config check of ``train.optimizer``: None, or what is wrong (read at
    validation time, so a factory registered by an experiment file counts)."""
    if isinstance(name, str) and factory_of(name) is not None:
        return None
    extra = f" or a registered one ({', '.join(sorted(OPTIMIZERS))})" if OPTIMIZERS else ""
    return f"must name an optax optimiser (adamw, adam, sgd, lion, ...){extra}, got {name!r}"


def _kernels(params):
    return jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)


def optimizer(name: str, learning_rate: optax.ScalarOrSchedule, weight_decay: float
              ) -> optax.GradientTransformation:
    """The optimiser `name` at `learning_rate`, weight decay on the kernels (where it takes one)."""
    factory = factory_of(name)
    if factory is None:
        raise ValueError(f"train.optimizer: {check_name(name)}")
    try:
        accepts = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: pass the learning rate alone
        accepts = {}
    extras = {"weight_decay": weight_decay, "mask": _kernels}
    return factory(learning_rate=learning_rate,
                   **{k: v for k, v in extras.items() if k in accepts})
