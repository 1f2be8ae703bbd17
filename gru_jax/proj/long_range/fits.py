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
log density, intervals add log(Phi(hi) - Phi(lo)); sigma is bounded below by
SIGMA_MIN. The interval of a coefficient is the percentile interval of refits on
groups (seeds, or lineages) resampled with replacement (every observation of a group
moves with it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np

SIGMA_MIN = 0.05  # log units: 5%, well below the ladder's resolution (log sqrt 2 = 0.35)
SIGMA_MAX = 1e3  # (log units) a bootstrap draw can push sigma up without bound


@dataclasses.dataclass(frozen=True)
class Fit:
    coef: tuple[float, ...]  # [features]
    sigma: float
    n: int  # observations
    censored: int  # observations that are not exact


def _logpdf(z):
    return -0.5 * z * z - 0.5 * math.log(2 * math.pi)


def _neg_log_lik(theta, Xe, ye, Xc, lo, hi, upper, lower):
    """The negative log likelihood and its gradient in theta = (coef, log sigma), of
    exact observations ye at Xe and intervals [lo, hi] at Xc (`upper` / `lower`: the
    side that is open).

    Exact y: log phi(z) - log sigma, z = (y - mu) / sigma. An interval: log(Phi(zh) -
    Phi(zl)), its derivatives -(phi(zh) - phi(zl)) / (sigma P) in mu and -(zh phi(zh) -
    zl phi(zl)) / P in log sigma, where an open side's terms are 0."""
    from scipy.special import log_ndtr, ndtr

    coef, log_sigma = theta[:-1], theta[-1]
    sigma = math.exp(log_sigma)
    z = (ye - Xe @ coef) / sigma
    ll = np.sum(_logpdf(z) - log_sigma)
    grad = np.append(Xe.T @ (z / sigma), np.sum(z * z - 1.0))
    if len(lo):
        mu = Xc @ coef
        zl, zh = (lo - mu) / sigma, (hi - mu) / sigma
        # log P: right-censored log(1 - Phi(zl)) = log_ndtr(-zl), left log_ndtr(zh)
        p = np.where(upper | lower, 1.0, ndtr(zh) - ndtr(zl))
        log_p = np.where(upper, log_ndtr(-zl), np.where(
            lower, log_ndtr(zh), np.log(np.maximum(p, 1e-300))))
        ll += np.sum(log_p)
        with np.errstate(invalid="ignore", over="ignore"):
            # phi(z) / P as exp(log phi - log P): stable far in the tails
            zl, zh = np.where(lower, 0.0, zl), np.where(upper, 0.0, zh)
            rl = np.where(lower, 0.0, np.exp(_logpdf(zl) - log_p))
            rh = np.where(upper, 0.0, np.exp(_logpdf(zh) - log_p))
        grad[:-1] += Xc.T @ ((rl - rh) / sigma)
        grad[-1] += np.sum(zl * rl - zh * rh)
    return -ll, -grad


def _split(X, lo, hi) -> tuple:
    """`_neg_log_lik`'s arguments after theta: the exact observations, the intervals
    and their open sides (split once per fit, not at every evaluation)."""
    exact, c = lo == hi, lo != hi
    return X[exact], lo[exact], X[c], lo[c], hi[c], np.isinf(hi[c]), np.isinf(lo[c])


@functools.cache
def _threadpools():
    import scipy.optimize  # noqa: F401 - load scipy's BLAS first: the controller
    from threadpoolctl import ThreadpoolController  # sees the libraries loaded now

    return ThreadpoolController()  # finding the BLAS libraries once (it reads /proc)


def one_blas_thread(fn):
    """Run `fn` on one BLAS thread: on these tiny matrices a BLAS thread pool only
    spins (100x slower on a loaded 2-core machine)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with _threadpools().limit(limits=1):
            return fn(*args, **kwargs)
    return wrapped


@one_blas_thread
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
    # sigma >= SIGMA_MIN: when every observation is an interval a line can pass
    # through all of them, and the likelihood keeps growing as sigma -> 0
    bounds = [(None, None)] * k + [(math.log(SIGMA_MIN), math.log(SIGMA_MAX))]
    res = minimize(_neg_log_lik, np.append(start, math.log(max(resid, SIGMA_MIN))),
                   jac=True, args=_split(X, lo, hi), method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 2000})
    return Fit(tuple(float(c) for c in res.x[:-1]), float(math.exp(res.x[-1])), n,
               int((~exact).sum()))


@one_blas_thread
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
