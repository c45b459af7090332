"""Frechet distances: between Gaussians fitted to two samples, and FPD extrapolated to N -> infinity."""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg
from scipy.optimize import curve_fit, nnls

__all__ = ["frechet_distance", "fpd", "normalise_by_real_max"]


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two multivariate Gaussians.

    Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2 (real and
    non-negative for covariance matrices), whose non-zero ones are those of the symmetric
    B^T S2 B for any S1 = B B^T: B = L, the Cholesky factor, or, where S1 is singular (a constant
    feature), its eigenvectors of non-zero eigenvalue times their square roots (the null space
    dropped, so that no rounding-level eigenvalue enters a square root; a singular S2 is factored
    in its place).  This equals the trace of scipy's ``sqrtm`` used by the reference (pytorch-fid,
    jetnet) to rounding, is free of complex round-off, and at 362 features takes a fifth of the
    time of the general eigenvalues of S1 S2.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    (left, full), middle = _factor(sigma1), sigma2
    if full:
        other, full = _factor(sigma2)
        if not full:  # a singular S2 is factored instead: Tr (S1 S2)^(1/2) = Tr (S2 S1)^(1/2)
            left, middle = other, sigma1
    inner = left.T @ middle @ left
    eig = linalg.eigvalsh((inner + inner.T) / 2, check_finite=False)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def _factor(sigma: np.ndarray) -> tuple[np.ndarray, bool]:
    """(B, full rank) with sigma = B B^T: the Cholesky factor where sigma is well within full rank,
    else its eigenvectors of eigenvalue above D eps max(diag) times their square roots."""
    tol = len(sigma) * np.finfo(np.float64).eps * max(float(np.max(np.diag(sigma), initial=0.0)), 1e-300)
    try:
        chol = linalg.cholesky(sigma, lower=True, check_finite=False)
        if np.min(np.diag(chol)) ** 2 > tol:
            return chol, True
    except linalg.LinAlgError:
        pass
    w, u = linalg.eigh(sigma, check_finite=False)
    keep = w > tol
    return u[:, keep] * np.sqrt(w[keep]), bool(keep.all())


def normalise_by_real_max(real: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide every feature by max |x| over the real sample (1 where that is 0), as jetnet does."""
    maxes = np.max(np.abs(real), axis=0)
    maxes = np.where(maxes == 0, 1.0, maxes)
    return real / maxes, gen / maxes


def _mean_cov(xc: np.ndarray, rows: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1) of x[rows], given xc = x - centre (float64; centre: the whole
    sample's mean), from the distinct rows drawn weighted by their counts: equal to
    ``np.cov(x[rows])`` to rounding, and cheaper (a draw of n rows from N holds
    N (1 - exp(-n / N)) distinct ones; the data are centred once, not per draw, and the draw's
    own mean offset mu, of order std / sqrt(n), is taken out as n mu mu^T)."""
    n = len(rows)
    counts = np.bincount(rows, minlength=len(xc))
    keep = np.flatnonzero(counts)
    w = counts[keep].astype(np.float64)
    a = xc[keep]  # a copy (fancy indexing): weighted in place
    mu = w @ a / n
    a *= np.sqrt(w)[:, None]
    return mu + centre, (a.T @ a - n * np.outer(mu, mu)) / (n - 1)


def fpd(real: np.ndarray, gen: np.ndarray, min_samples: int = 20_000, max_samples: int = 50_000,
        num_batches: int = 20, num_points: int = 10, normalise: bool = True,
        seed: int = 42) -> tuple[float, float]:
    """Frechet physics distance (Kansal et al., arXiv:2211.10295), extrapolated to infinite N.

    As jetnet's ``fpd``: for ``num_points`` batch sizes regular in 1/N between ``min_samples``
    and ``max_samples``, the mean Frechet distance over ``num_batches`` resamplings (with
    replacement, ``default_rng(seed)``, real then generated: jetnet's draws); a straight-line
    fit in 1/N with non-negative intercept and slope; FPD is the intercept, its error the fit's.
    Each resampling's mean and covariance come from its distinct rows weighted by their counts
    (``_mean_cov``: jetnet's values to rounding, without copying the repeated rows).

    Args:
        real, gen: (N, F) features.

    Returns:
        (FPD, error), in the units of the (normalised) features squared.
    """
    x, y = normalise_by_real_max(real, gen) if normalise else (real, gen)
    (xc, cx), (yc, cy) = ((np.asarray(v, np.float64) - v.mean(0), v.mean(0)) for v in (x, y))
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    means = []
    for n in sizes:
        vals = []
        for _ in range(num_batches):
            rows_a = rng.choice(len(x), size=n)
            rows_b = rng.choice(len(y), size=n)
            vals.append(frechet_distance(*_mean_cov(xc, rows_a, cx), *_mean_cov(yc, rows_b, cy)))
        means.append(np.mean(vals))
    return _intercept_fit(1 / sizes, np.asarray(means))


def _intercept_fit(t: np.ndarray, means: np.ndarray) -> tuple[float, float]:
    """(intercept, its error) of the line c + s t through ``means`` with c, s >= 0: jetnet's
    ``curve_fit``; where that bounded fit is stuck (residuals more than twice the least-squares
    solution's: it starts at (1, 1) and does not move for distances of order 1e10 and more), the
    exact non-negative least-squares solution, with the covariance s^2 (A^T A)^-1 of its
    residuals.  Non-finite distances give (inf, nan)."""
    if not np.all(np.isfinite(means)):
        return math.inf, math.nan
    params, cov = curve_fit(lambda x, c, s: c + s * x, t, means, bounds=([0, 0], [np.inf, np.inf]))
    a = np.column_stack([np.ones_like(t), t])
    exact, _ = nnls(a, means)
    rss = lambda p: float(np.sum((a @ p - means) ** 2))  # noqa: E731
    if rss(params) > 2 * rss(exact) + 1e-300:  # stuck, not merely converged to its tolerance (ratio 1 + 1e-5)
        params, cov = exact, rss(exact) / max(len(t) - 2, 1) * np.linalg.inv(a.T @ a)
    return float(params[0]), float(np.sqrt(np.diag(cov)[0]))
