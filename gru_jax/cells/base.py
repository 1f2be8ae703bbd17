"""The protocol every recurrent cell follows, so experiments swap cells by name.

A cell is four pure functions over a params pytree (a flat dict of arrays):

    init(key, input_size, hidden_size, **options) -> params
    project(params, x, dtype) -> xp          # x [..., input] -> pytree of [..., *]
    step(params, carry, xp_t, dtype, rec_mask=None) -> (carry, y_t)
    zero_carry(params, batch_shape) -> carry

`project` holds every term that depends on the input alone (input kernels
and input biases), so a time loop can hoist it out and run one large matrix
product over all time steps; `step` holds the recurrence. `dtype` is the
compute dtype of the matrix products (None: the params' dtype); gate
nonlinearities and the carry stay in float32 or wider. `rec_mask`
[batch, hidden] (recurrent dropout) multiplies the state where it enters the
recurrent products, not where it carries over (Keras's semantics).
Beside the functions, a cell names the part of its carry a head reads
(`hidden_of`; y_t = hidden_of(carry_t) for every cell here), the input
size its params expect (`input_size`; None: not checked) and the shape of
every params array (`param_shapes`; None: not checked), which `check_params`
compares at every public entry point.

The checks here read shapes and dtypes only, so under `jax.jit` they run once
at trace time and add nothing to the compiled program; each raises one line
naming the argument, the shape (or dtype) it got and the one it expects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]
Carry = Any


class Cell(NamedTuple):
    name: str
    init: Callable[..., Params]
    project: Callable[..., Any]
    step: Callable[..., tuple[Carry, jax.Array]]
    zero_carry: Callable[[Params, tuple[int, ...]], Carry]
    hidden_of: Callable[[Carry], jax.Array]  # the part of the carry a head reads
    input_size: Callable[[Params], int] | None = None  # features xs must have
    # params -> {name: shape} the cell expects (read from one anchor kernel)
    param_shapes: Callable[[Params], dict[str, tuple]] | None = None


def carry_dtype(params: Params):
    """float32, or float64 when the params are float64 (x64 parity tests)."""
    leaf = jax.tree_util.tree_leaves(params)[0]
    return jnp.promote_types(leaf.dtype, jnp.float32)


def hidden_size_of(params: Params) -> int:
    """H, read from any [..., H] bias or kernel of the cell."""
    return next(iter(params.values())).shape[-1]


def zero_state(params: Params, batch_shape: tuple[int, ...]) -> jax.Array:
    """A zero hidden state [*batch_shape, H] in the carry dtype (the zero carry of the
    cells whose carry is their hidden state)."""
    return jnp.zeros((*batch_shape, hidden_size_of(params)), carry_dtype(params))


def count_params(params) -> int:
    """Number of scalars in a params pytree."""
    return sum(x.size for x in jax.tree_util.tree_leaves(params))


def shape_str(shape) -> str:
    """(3, 20) -> "[3, 20]", the way every check here prints a shape."""
    return "[" + ", ".join(map(str, shape)) + "]"


def anchor_sizes(params: Params, key: str, cell_name: str) -> tuple[int, int]:
    """(input, hidden) from the [input, hidden] kernel `key`; one line if it is absent."""
    if key not in params:
        raise ValueError(f"params lack {key!r}: not {cell_name} params (from init_{cell_name})? "
                         f"got keys {sorted(params)}")
    shape = jnp.shape(params[key])
    if len(shape) != 2:
        raise ValueError(f"params[{key!r}] must be [input, hidden], got shape {shape_str(shape)}")
    return shape


def check_params(cell: Cell, params) -> None:
    """Raise one line unless `params` are `cell`'s: a dict with exactly the keys
    `cell.param_shapes` names, each array of that shape. Shapes only (trace time)."""
    if cell.param_shapes is None:
        return
    if not isinstance(params, Mapping):
        hint = " (stacked layers from init_stacked go to stacked_scan)" \
            if isinstance(params, (list, tuple)) else ""
        raise TypeError(f"params must be a dict of {cell.name} arrays, got "
                        f"{type(params).__name__}{hint}")
    want = cell.param_shapes(params)
    missing = sorted(set(want) - set(params))
    extra = sorted(set(params) - set(want))
    if missing or extra:
        raise ValueError(f"{cell.name} params: missing {missing}, unexpected {extra}; "
                         f"expected keys {sorted(want)}")
    for name, shape in want.items():
        got = jnp.shape(params[name])
        if got != tuple(shape):
            raise ValueError(f"{cell.name} params[{name!r}] has shape {shape_str(got)}, "
                             f"expected {shape_str(shape)}")
        dt = jnp.result_type(params[name])
        if not jnp.issubdtype(dt, jnp.inexact):
            raise TypeError(f"params[{name!r}] must be float or complex, got {dt}")


def is_complex(*trees) -> bool:
    """Any array leaf of `trees` complex."""
    return any(jnp.iscomplexobj(a) for t in trees for a in jax.tree_util.tree_leaves(t))


def state_dtype(dtype, *others):
    """The dtype a state of `dtype` keeps after a step with `others` (inputs,
    params): itself, made complex when any of them is complex (a real state
    would drop the imaginary part, as flax's cells do not)."""
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.complexfloating) and is_complex(*others):
        return jnp.promote_types(dtype, jnp.complex64)
    return dtype


def check_state(what: str, a, shape: tuple, because: str = "") -> None:
    """`a` (a carry leaf) must have exactly `shape` (no broadcasting) and a
    float or complex dtype (an integer state would truncate every step)."""
    got = jnp.shape(a)
    if got != tuple(shape):
        raise ValueError(f"{what} must have shape {shape_str(shape)}{because}, "
                         f"got {shape_str(got)}")
    dt = jnp.result_type(a)
    if not jnp.issubdtype(dt, jnp.inexact):
        raise TypeError(f"{what} must be float or complex, got {dt}")


def check_step(where: str, cell: Cell, params, carry, x, carry_name: str = "h",
               leaf_names=None) -> None:
    """One step's arguments: params `cell`'s, x [*batch, input], every carry
    leaf (named `leaf_names`, default `carry_name`) [*batch, hidden] with x's
    batch shape. Raises one line prefixed with `where`."""
    check_params(cell, params)
    In, H = cell.input_size(params) if cell.input_size else None, hidden_size_of(params)
    xs = jnp.shape(x)
    if len(xs) < 1 or (In is not None and xs[-1] != In):
        raise ValueError(f"{where}: x must be [*batch, {In}] (input size {In}), got "
                         f"{shape_str(xs)}")
    leaves = jax.tree_util.tree_leaves(carry)
    names = tuple(leaf_names or (carry_name,))
    if len(leaves) != len(names) or (len(names) > 1 and not isinstance(carry, (tuple, list))):
        want = names[0] if len(names) == 1 else "the pair (" + ", ".join(names) + ")"
        raise ValueError(f"{where}: {carry_name} must be {want}, each [*batch, {H}], got "
                         f"{type(carry).__name__} with {len(leaves)} array(s)")
    for name, leaf in zip(names, leaves, strict=True):
        check_state(f"{where}: {name}", leaf, (*xs[:-1], H),
                    f" (x's batch shape {shape_str(xs[:-1])}, hidden {H})")
