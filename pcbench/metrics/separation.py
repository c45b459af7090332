"""Separation power of two histograms (the CaloChallenge's histogram score).

S = 1/2 sum_i (p_i - q_i)^2 / (p_i + q_i) over bins, p and q the two histograms normalised to
unit sum (the triangular discrimination, arXiv:2009.03796 eq. 15; CaloChallenge
``evaluate_plotting_helper._separation_power``).  S = 0 for identical histograms, 1 for
disjoint ones.  Entries outside the bins are dropped before normalising, as ``plt.hist(...,
density=True)`` does.
"""

from __future__ import annotations

import numpy as np

__all__ = ["separation_power", "separation_power_samples", "separation_power_counts"]


def separation_power(h1: np.ndarray, h2: np.ndarray) -> float:
    """S of two histograms of counts (any normalisation; each is normalised to unit sum)."""
    p = np.asarray(h1, dtype=np.float64)
    q = np.asarray(h2, dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else p
    q = q / q.sum() if q.sum() > 0 else q
    return float(0.5 * np.sum((p - q) ** 2 / (p + q + 1e-16)))


def separation_power_samples(real: np.ndarray, gen: np.ndarray, bins: np.ndarray, n_boot: int = 10,
                             seed: int = 42) -> tuple[float, float]:
    """S between the histograms of two samples on ``bins``, and its error.

    The error is the standard deviation of S over ``n_boot`` bootstrap resamplings of both
    samples (``default_rng(seed)``): the statistical spread of the score at these sample sizes.
    """
    real, gen = np.asarray(real).ravel(), np.asarray(gen).ravel()
    value = separation_power(np.histogram(real, bins)[0], np.histogram(gen, bins)[0])
    if n_boot < 2:
        return value, float("nan")
    rng = np.random.default_rng(seed)
    boots = [separation_power(np.histogram(real[rng.integers(0, len(real), len(real))], bins)[0],
                              np.histogram(gen[rng.integers(0, len(gen), len(gen))], bins)[0]) for _ in range(n_boot)]
    return value, float(np.std(boots))


def separation_power_counts(h1: np.ndarray, h2: np.ndarray, n_boot: int = 10, seed: int = 42) -> tuple[float, float]:
    """S of two histograms of counts, and its error from Poisson resamplings of every bin
    (for histograms filled without keeping the entries, such as the cell-energy spectrum)."""
    value = separation_power(h1, h2)
    rng = np.random.default_rng(seed)
    boots = [separation_power(rng.poisson(h1), rng.poisson(h2)) for _ in range(n_boot)]
    return value, float(np.std(boots)) if n_boot > 1 else float("nan")
