"""Power laws fitted to censored observations, with bootstrap intervals over seeds.

One model serves both of the study's fits: y = X @ coef + e, e ~ N(0, sigma^2), on
log scales, where each observation is an interval [lo, hi] of y:

* steps-to-solve against T and H (the headline alpha): log S = a + alpha log T +
  beta log H; a solved run is exact (lo = hi = log S), an unsolved one is
  right-censored at its cap (lo = log cap, hi = +inf);
* the boundary against H: log T* = a + b log H; a bracket [longest solved,
  shortest failed] is interval-censored, a boundary above the top rung
  right-censored, one below the first rung left-censored.

The fit is maximum likelihood (Tobit / interval regression): exact points add
log density, intervals add log(Phi(hi) - Phi(lo)). The interval of a coefficient
is the percentile interval of refits on seeds resampled with replacement (every
observation of a seed moves with it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Fit:
    coef: tuple[float, ...]  # [features]
    sigma: float
    n: int  # observations
    censored: int  # observations that are not exact


def _logpdf(z):
    return -0.5 * z * z - 0.5 * math.log(2 * math.pi)


def _neg_log_lik(theta, X, lo, hi, exact):
    from scipy.special import log_ndtr, ndtr

    coef, log_sigma = theta[:-1], theta[-1]
    sigma = math.exp(log_sigma)
    mu = X @ coef
    ll = np.sum(_logpdf((lo[exact] - mu[exact]) / sigma) - log_sigma)
    c = ~exact
    if c.any():
        zl, zh = (lo[c] - mu[c]) / sigma, (hi[c] - mu[c]) / sigma
        upper = np.isinf(zh)  # right-censored: log(1 - Phi(zl)) = log_ndtr(-zl)
        p = np.where(upper, 0.0, ndtr(zh) - ndtr(zl))
        ll += np.sum(np.where(upper, log_ndtr(-zl), np.log(np.maximum(p, 1e-300))))
    return -ll


def interval_regression(X: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Fit:
    """Maximum-likelihood fit of y = X coef + N(0, sigma^2) to y in [lo, hi].

    X [n, features] (a column of ones for an intercept), lo and hi [n] (-inf / +inf
    for an open side; lo == hi for an exact observation). Raises ValueError if
    there are fewer observations than parameters or nothing is bounded.
    """
    from scipy.optimize import minimize

    X, lo, hi = (np.asarray(a, np.float64) for a in (X, lo, hi))
    n, k = X.shape
    if n <= k:
        raise ValueError(f"interval_regression: {n} observations for {k + 1} parameters")
    exact = lo == hi
    with np.errstate(invalid="ignore"):  # inf - inf where both sides are open
        mid = np.where(exact, lo, np.where(np.isfinite(lo) & np.isfinite(hi), (lo + hi) / 2,
                                           np.where(np.isfinite(lo), lo, hi)))
    if not np.isfinite(mid).all():
        raise ValueError("interval_regression: an observation unbounded on both sides")
    start, *_ = np.linalg.lstsq(X, mid, rcond=None)
    resid = np.std(mid - X @ start) or 0.1
    res = minimize(_neg_log_lik, np.append(start, math.log(resid)),
                   args=(X, lo, hi, exact), method="Nelder-Mead" if k > 3 else "BFGS",
                   options={"maxiter": 20000})
    return Fit(tuple(float(c) for c in res.x[:-1]), float(math.exp(res.x[-1])), n,
               int((~exact).sum()))


def bootstrap(X, lo, hi, groups: Sequence, *, reps: int = 200, seed: int = 0,
              level: float = 0.95) -> tuple[Fit, np.ndarray]:
    """The fit and the percentile interval [2, features] of each coefficient over
    `reps` refits on groups (seeds) drawn with replacement."""
    X, lo, hi = (np.asarray(a, np.float64) for a in (X, lo, hi))
    groups = np.asarray(groups)
    fit = interval_regression(X, lo, hi)
    names = np.unique(groups)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        pick = np.concatenate([np.flatnonzero(groups == g)
                               for g in rng.choice(names, len(names))])
        try:
            draws.append(interval_regression(X[pick], lo[pick], hi[pick]).coef)
        except ValueError:  # a draw with too few points: skip it
            continue
    q = (1 - level) / 2
    return fit, np.quantile(np.asarray(draws), [q, 1 - q], axis=0)
