"""Censored power-law fits: recover known exponents from censored synthetic data."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gru_jax.proj.long_range import fits

ROOT = Path(__file__).resolve().parents[2]


def _design(rng, n_seeds=6):
    T = np.array([10, 20, 40, 80, 160, 320, 640], float)
    H = np.array([16, 32, 64, 128], float)
    t, h, g = (a.ravel() for a in np.meshgrid(T, H, np.arange(n_seeds), indexing="ij"))
    X = np.column_stack([np.ones_like(t), np.log(t), np.log(h)])
    return X, g


def test_tobit_recovers_alpha_where_dropping_censored_points_is_biased():
    rng = np.random.default_rng(0)
    X, g = _design(rng)
    truth = np.array([2.0, 0.8, -0.3])
    y = X @ truth + rng.normal(0, 0.3, len(X))
    cap = np.log(80.0)
    lo = np.minimum(y, cap)
    hi = np.where(y > cap, np.inf, y)
    assert 0.3 < np.mean(y > cap) < 0.6  # half the runs hit the cap
    fit = fits.interval_regression(X, lo, hi)
    assert fit.censored == int(np.sum(y > cap))
    assert fit.coef[1:] == pytest.approx(tuple(truth[1:]), abs=0.06)
    assert fit.sigma == pytest.approx(0.3, abs=0.05)
    keep = y <= cap  # the naive fit: unsolved runs left out, which flattens alpha
    naive, *_ = np.linalg.lstsq(X[keep], y[keep], rcond=None)
    assert abs(naive[1] - truth[1]) > 3 * abs(fit.coef[1] - truth[1])


def test_brackets_fit_a_boundary_growth_and_the_bootstrap_covers_it():
    rng = np.random.default_rng(1)
    H = np.repeat([16.0, 32, 64, 128], 3)
    groups = np.tile([0, 1, 2], 4)
    X = np.column_stack([np.ones_like(H), np.log(H)])
    log_t = X @ np.array([1.0, 0.7]) + rng.normal(0, 0.1, len(H))
    rung = np.log(np.sqrt(2))  # brackets one ladder rung wide around the true boundary
    lo = np.floor(log_t / rung) * rung
    hi = lo + rung
    fit, ci = fits.bootstrap(X, lo, hi, groups, reps=100)
    assert fit.censored == len(H) and fit.coef[1] == pytest.approx(0.7, abs=0.1)
    assert ci[0, 1] <= 0.7 <= ci[1, 1] and ci[1, 1] - ci[0, 1] < 0.5


def test_likelihood_gradient_matches_finite_differences():
    """Exact, two-sided, right- and left-censored observations together."""
    from scipy.optimize import approx_fprime

    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(8), rng.normal(size=8)])
    y = X @ np.array([0.5, 1.0]) + rng.normal(0, 0.5, 8)
    lo = np.array([y[0], y[1], y[2] - 0.3, y[3] - 0.2, y[4], -np.inf, y[6] - 1, y[7]])
    hi = np.array([y[0], y[1], y[2] + 0.3, np.inf, np.inf, y[5], y[6] + 2, y[7]])
    obs = fits._split(X, lo, hi)
    for theta in ([0.4, 0.9, np.log(0.5)], [2.0, -1.0, np.log(0.2)]):
        theta = np.array(theta)
        numeric = approx_fprime(theta, lambda t: fits._neg_log_lik(t, *obs)[0],
                                1e-7)
        np.testing.assert_allclose(fits._neg_log_lik(theta, *obs)[1], numeric,
                                   rtol=1e-4, atol=1e-5)


def test_fits_run_every_blas_library_on_one_thread():
    """scipy.optimize brings its own OpenBLAS: a limit set before it loaded would
    miss it, and its thread pool would spin (100x slower on a loaded machine). A
    fresh process, so scipy is not loaded yet when the limit is first set."""
    code = """if True:
        from gru_jax.proj.long_range import fits

        @fits.one_blas_thread
        def threads():
            import scipy.optimize  # noqa: F401 - as a fit loads it
            from threadpoolctl import threadpool_info
            return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

        print(threads())"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    threads = ast.literal_eval(out.stdout.strip() or "None")
    assert threads and set(threads) == {1}, out.stdout + out.stderr


def test_one_line_errors():
    with pytest.raises(ValueError, match="2 observations for 3 parameters"):
        fits.interval_regression(np.ones((2, 2)), [0, 1], [0, 1])
    with pytest.raises(ValueError, match="unbounded on both sides"):
        fits.interval_regression(np.ones((3, 1)), [0, -np.inf, 1], [0, np.inf, 1])


def test_a_degenerate_bootstrap_draw_keeps_sigma_bounded(monkeypatch):
    """A bootstrap draw of the committed chrono-gru runs (every solve at 100 or 200
    steps: intervals only) pushed log sigma past exp's range; SIGMA_MAX bounds it."""
    d = np.load(Path(__file__).resolve().parents[1] / "data" / "fit_sigma_overflow.npz")
    fit = fits.interval_regression(d["X"], d["lo"], d["hi"])
    assert fits.SIGMA_MIN <= fit.sigma <= fits.SIGMA_MAX and np.isfinite(fit.coef).all()
    monkeypatch.setattr(fits, "SIGMA_MAX", np.inf)
    with pytest.raises(OverflowError):
        fits.interval_regression(d["X"], d["lo"], d["hi"])
