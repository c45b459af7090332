"""Histogram divergences between one-dimensional distributions (the EPiC-FM tables' KL)."""

from __future__ import annotations

import numpy as np

__all__ = ["kl_divergence", "kl_divergence_bootstrap"]


def kl_divergence(real: np.ndarray, gen: np.ndarray, bins: int = 50, eps: float = 1e-8) -> float:
    """KL(real || gen) of histograms on ``bins`` equal bins over the real sample's 0.1-99.9 %
    quantile range (entries outside go to the edge bins); each bin's probability is floored at
    ``eps`` and renormalised, so that an empty generated bin gives a large but finite value.
    """
    lo, hi = np.quantile(real, [0.001, 0.999])
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)

    def probs(x: np.ndarray) -> np.ndarray:
        h = np.histogram(np.clip(x, lo, hi), bins=edges)[0].astype(np.float64)
        p = np.maximum(h / max(h.sum(), 1.0), eps)
        return p / p.sum()

    p, q = probs(np.asarray(real)), probs(np.asarray(gen))
    return float(np.sum(p * np.log(p / q)))


def kl_divergence_bootstrap(real: np.ndarray, gen: np.ndarray, n_boot: int = 10, seed: int = 42,
                            bins: int = 50) -> tuple[float, float]:
    """KL(real || gen) on the full samples, and its error: the std over ``n_boot`` bootstrap
    resamplings of both samples (``default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    boots = [kl_divergence(real[rng.integers(0, len(real), len(real))], gen[rng.integers(0, len(gen), len(gen))], bins)
             for _ in range(n_boot)]
    return kl_divergence(real, gen, bins), float(np.std(boots))
