"""The whale optimization algorithm (WOA) and random search as ask/tell proposers.

Pure numpy: each proposer is driven by one numpy Generator seeded from one
seed, so the same seed and the same scores give the same proposals, which is
what lets the Optuna sampler (`gru_jax.harness.search.sampler`) rebuild the
population from a study's finished trials by replaying them.

The whale optimization algorithm (Mirjalili & Lewis 2016, Advances in
Engineering Software 95) moves a population of P "whales" X_i in [0, 1]^d
around the best position found so far, X*. With a falling linearly from 2
to 0 over the search (a = 2 (1 - s / B) after s of the budget's B trainings;
2 (1 - g / G) at generation g of G when no proposal repeats an earlier one),
and per whale the uniform draws r1, r2, p in [0, 1] and l in [-1, 1]::

    A = 2 a r1 - a,  C = 2 r2
    p <  0.5, |A| <  1:  X_i' = X* - A |C X* - X_i|              (encircling prey)
    p <  0.5, |A| >= 1:  X_i' = X_r - A |C X_r - X_i|            (search for prey,
                                                                 X_r a random whale)
    p >= 0.5:            X_i' = |X* - X_i| e^{b l} cos(2 pi l) + X*  (bubble-net spiral, b = 1)

then clipped to the cube. Early on (a near 2) |A| >= 1 is common and whales
explore around random members; late (a near 0) they close in on X*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gru_jax.harness.errors import ConfigError

PROPOSERS = ("woa", "random")  # the samplers whose proposals are replayed from a seed


class RandomSearch:
    """Uniform proposals in the unit cube; `tell` only keeps the best.

    With the same seed its first P proposals are WhaleSearch's initial
    population, so the two methods start from the same candidates.
    """

    needs_scores = False  # its proposals never depend on the scores told

    def __init__(self, dim: int, seed: int):
        self.dim = dim
        self.rng = np.random.default_rng(seed)
        self.best_x: np.ndarray | None = None
        self.best_score = math.inf

    def ask(self, n: int, progress: float | None = None) -> np.ndarray:
        """n proposals [n, dim] in [0, 1] (`progress` is unused)."""
        return self.rng.random((n, self.dim))

    def tell(self, x: np.ndarray, scores: Sequence[float]) -> None:
        """Scores [n] of the proposals x [n, dim] (lower is better; inf: failed)."""
        _update_best(self, x, scores)


def _update_best(proposer, x: np.ndarray, scores: Sequence[float]) -> None:
    scores = np.asarray(scores, np.float64)
    if scores.size and np.isfinite(scores).any():
        i = int(np.nanargmin(np.where(np.isfinite(scores), scores, np.inf)))
        if scores[i] < proposer.best_score:  # strict: ties keep the earlier (replay-stable)
            proposer.best_x, proposer.best_score = np.array(x[i]), float(scores[i])


def woa_a(generation: int, generations: int) -> float:
    """a = 2 (1 - g / G): 2 at the start, falling linearly towards 0 (Mirjalili's
    reference code uses a = 2 - t (2 / Max_iter) at iteration t)."""
    return 2.0 * (1.0 - generation / generations)


def woa_update(positions: np.ndarray, leader: np.ndarray, a: float,
               rng: np.random.Generator, b: float = 1.0) -> np.ndarray:
    """One WOA move of every whale: positions [P, d], leader X* [d] -> new [P, d].

    Per whale i (scalars A and C per whale, as in the authors' reference code)::

        A = 2 a r1 - a, C = 2 r2, r1, r2, p ~ U[0, 1], l ~ U[-1, 1]
        p <  0.5, |A| <  1:  X* - A |C X* - X_i|
        p <  0.5, |A| >= 1:  X_r - A |C X_r - X_i|, X_r a uniformly drawn whale
        p >= 0.5:            |X* - X_i| e^{b l} cos(2 pi l) + X*

    The result is clipped to [0, 1]. Pure given the generator's state: the draws
    are taken in a fixed order (r1, r2, p, l, r), P of each.
    """
    x = np.asarray(positions, np.float64)
    leader = np.asarray(leader, np.float64)
    n = x.shape[0]
    r1, r2, p = rng.random(n), rng.random(n), rng.random(n)
    l = rng.uniform(-1.0, 1.0, n)  # noqa: E741 - the paper's name
    r = rng.integers(0, n, n)
    A, C = (2 * a * r1 - a)[:, None], (2 * r2)[:, None]
    encircle = leader - A * np.abs(C * leader - x)
    x_rand = x[r]
    explore = x_rand - A * np.abs(C * x_rand - x)
    spiral = (np.abs(leader - x) * (np.exp(b * l) * np.cos(2 * np.pi * l))[:, None] + leader)
    new = np.where((p < 0.5)[:, None],
                   np.where(np.abs(A) < 1, encircle, explore),
                   spiral)
    return np.clip(new, 0.0, 1.0)


class WhaleSearch:
    """The whale optimization algorithm as an ask/tell proposer over [0, 1]^dim.

    Generation 0 is `population` uniform points; generation g >= 1 moves the
    previous generation's whales with `woa_update` around the best point told so
    far, at a = 2 (1 - progress) when `ask` is given the fraction of the budget
    spent, else at a = `woa_a(g, generations)`. Whales keep their moved positions whatever
    they score (no greedy selection, as in the paper). If nothing has scored yet
    (every candidate failed), the population is drawn afresh.
    """

    needs_scores = True  # generation g + 1 moves around the best of generations <= g

    def __init__(self, dim: int, population: int, generations: int, seed: int,
                 b: float = 1.0):
        if population < 1 or generations < 1:
            raise ValueError("WhaleSearch: population and generations must be >= 1")
        self.dim, self.population, self.generations, self.b = dim, population, generations, b
        self.rng = np.random.default_rng(seed)
        self.generation = 0
        self.positions: np.ndarray | None = None
        self.best_x: np.ndarray | None = None
        self.best_score = math.inf

    def ask(self, n: int | None = None, progress: float | None = None) -> np.ndarray:
        """The next generation's first n (default all P) whales [n, dim]; `progress`
        in [0, 1] is the fraction of the budget spent (sets a)."""
        n = self.population if n is None else n
        if n > self.population:
            raise ValueError(f"WhaleSearch.ask: at most {self.population} per generation")
        if self.positions is None or self.best_x is None:
            self.positions = self.rng.random((self.population, self.dim))
        else:
            a = (woa_a(self.generation, self.generations) if progress is None
                 else 2.0 * (1.0 - min(max(progress, 0.0), 1.0)))
            self.positions = woa_update(self.positions, self.best_x, a, self.rng, self.b)
        return self.positions[:n].copy()

    def tell(self, x: np.ndarray, scores: Sequence[float]) -> None:
        """Scores [n] of the last `ask` (lower is better; inf: failed)."""
        _update_best(self, x, scores)
        self.generation += 1


def make_proposer(method: str, dim: int, population: int, generations: int, seed: int):
    """RandomSearch or WhaleSearch by name ("random" | "woa")."""
    if method == "random":
        return RandomSearch(dim, seed)
    if method == "woa":
        return WhaleSearch(dim, population, generations, seed)
    raise ConfigError(f"--sampler: a proposer is one of {', '.join(PROPOSERS)}, "
                      f"got {method!r}")
