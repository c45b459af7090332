"""Correlations between observables: how well a model reproduces the reference's Pearson matrix.

A generator can match every one-dimensional distribution and still get their correlations wrong
(e.g. the energies of neighbouring layers of a shower, or a jet's mass and its tau21).  The
metric compares the Pearson correlation matrices of the same observables in the two samples:

    D = C_gen - C_ref   (d x d),   max |D_ij| and mean |D_ij| over the pairs i < j.

Both are 0 for identical samples and at most 2.  A column that is constant in a sample (an
always-empty layer) has no correlation: its entries are set to 0 (and the diagonal to 1), so a
model that leaves a layer empty where the reference fills it is charged for the missing
correlations.  Errors: the standard deviation over bootstrap resamplings of both samples (seeded).
Finite-sample noise makes the value positive even for two samples of one distribution (of order
1 / sqrt(n)): the truth row shows that floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["pearson_matrix", "CorrelationDifference", "correlation_difference"]


def pearson_matrix(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The (d, d) Pearson correlation matrix of the columns of ``x`` (n, d), optionally weighted
    per row (bootstrap counts); constant columns get 0 off the diagonal, 1 on it."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"expected an (n >= 2, d) array of observables, got shape {x.shape}")
    w = np.ones(len(x)) if weights is None else np.asarray(weights, np.float64)
    mean = w @ x / w.sum()
    xc = x - mean
    cov = (xc * w[:, None]).T @ xc / w.sum()
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    scale = np.abs(mean) + sd
    live = sd > 1e-12 * np.where(scale > 0, scale, 1.0)  # constant columns (to rounding) carry no correlation
    denom = np.outer(np.where(live, sd, 1.0), np.where(live, sd, 1.0))
    corr = np.where(np.outer(live, live), cov / denom, 0.0)
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


@dataclass(frozen=True)
class CorrelationDifference:
    """max |C_gen - C_ref| and mean |C_gen - C_ref| over pairs i < j, their bootstrap errors, and
    the difference matrix (d, d) itself (for the figure)."""

    max_abs: float
    max_abs_error: float
    mean_abs: float
    mean_abs_error: float
    difference: np.ndarray
    names: tuple[str, ...]


def _scores(d: np.ndarray) -> tuple[float, float]:
    iu = np.triu_indices(len(d), 1)
    a = np.abs(d[iu])
    return float(a.max(initial=0.0)), float(a.mean()) if len(a) else 0.0


def correlation_difference(real: np.ndarray, gen: np.ndarray, names: tuple[str, ...] | None = None,
                           n_boot: int = 10, seed: int = 42) -> CorrelationDifference:
    """Compare the Pearson matrices of ``real`` (n, d) and ``gen`` (m, d), the same d observables.

    Rows with a non-finite value are dropped (in that sample only).  ``n_boot`` bootstrap
    resamplings of both samples (``default_rng(seed)``, multinomial counts) give the errors.
    """
    real, gen = np.asarray(real, np.float64), np.asarray(gen, np.float64)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f"expected two (n, d) arrays of the same observables, got {real.shape} and {gen.shape}")
    if real.shape[1] < 2:
        raise ValueError(f"a correlation needs at least 2 observables, got {real.shape[1]}")
    real, gen = real[np.isfinite(real).all(1)], gen[np.isfinite(gen).all(1)]
    d = pearson_matrix(gen) - pearson_matrix(real)
    vmax, vmean = _scores(d)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        wr = rng.multinomial(len(real), np.full(len(real), 1.0 / len(real))).astype(np.float64)
        wg = rng.multinomial(len(gen), np.full(len(gen), 1.0 / len(gen))).astype(np.float64)
        boots.append(_scores(pearson_matrix(gen, wg) - pearson_matrix(real, wr)))
    b = np.asarray(boots) if boots else np.zeros((1, 2))
    names = tuple(names) if names is not None else tuple(f"x{i}" for i in range(real.shape[1]))
    return CorrelationDifference(vmax, float(b[:, 0].std()), vmean, float(b[:, 1].std()), d, names)
