"""Precision, recall, density and coverage of generated samples (Naeem et al., ICML 2020,
arXiv:2002.09797), the CaloChallenge's ``prdc`` numbers (k = 5).

With r_k(x) the distance of x to its k-th nearest neighbour within its own sample (Euclidean):
precision = fraction of generated points inside some real point's k-NN ball; recall = fraction
of real points inside some generated point's k-NN ball; density = mean over generated points of
the number of real balls containing it, / k; coverage = fraction of real points whose ball
contains at least one generated point.  "Inside" is strict (d < r_k), as in the ``prdc`` package.
Distances are computed in chunks, so memory stays at chunk x N.
"""

from __future__ import annotations

import numpy as np

__all__ = ["prdc", "kth_neighbour_distance"]


def _sq_dist(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def kth_neighbour_distance(x: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """(N,) distance of each row of x (N, F) to its k-th nearest other row.

    The distance matrix is symmetric, so only its blocks on and above the diagonal are computed
    (half the matrix products): each off-diagonal block gives candidates to the rows of both of
    its chunks.  Every row keeps its k + 1 smallest squared distances so far (itself included);
    the (k + 1)-th of them at the end is the k-th neighbour's."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if k >= n:
        raise ValueError(f"k = {k} neighbours need more than {n} rows")
    sq = (x * x).sum(1)
    best = np.full((n, k + 1), np.inf)

    def keep(rows: slice, d: np.ndarray) -> None:
        both = np.concatenate([best[rows], d], axis=1)
        best[rows] = np.partition(both, k, axis=1)[:, :k + 1]

    for i in range(0, n, chunk):
        rows_i = slice(i, min(i + chunk, n))
        for j in range(i, n, chunk):
            rows_j = slice(j, min(j + chunk, n))
            d = _sq_dist(x[rows_i], x[rows_j], sq[rows_j])
            keep(rows_i, d)
            if j != i:
                keep(rows_j, d.T)
    return np.sqrt(best.max(axis=1))


def prdc(real: np.ndarray, gen: np.ndarray, k: int = 5, chunk: int = 2048) -> dict[str, tuple[float, float]]:
    """{precision, recall, density, coverage: (value, error)} of ``gen`` (M, F) against ``real`` (N, F).

    Errors are binomial, sqrt(f (1 - f) / n), for the three fractions and the standard error of
    the mean count / k for density: the statistical spread at these sample sizes (neighbour
    radii held fixed).
    """
    real, gen = np.asarray(real, dtype=np.float64), np.asarray(gen, dtype=np.float64)
    r_real, r_gen = kth_neighbour_distance(real, k, chunk), kth_neighbour_distance(gen, k, chunk)
    real_sq = (real * real).sum(1)
    in_real_balls = np.zeros(len(gen))          # per generated point: how many real balls hold it
    real_covered = np.zeros(len(real), bool)     # per real point: its ball holds a generated point
    real_recalled = np.zeros(len(real), bool)    # per real point: inside some generated ball
    for j in range(0, len(gen), chunk):
        d = np.sqrt(_sq_dist(gen[j:j + chunk], real, real_sq))  # (chunk, N)
        inside = d < r_real[None, :]
        in_real_balls[j:j + chunk] = inside.sum(1)
        real_covered |= inside.any(0)
        real_recalled |= (d < r_gen[j:j + chunk, None]).any(0)
    def frac(hit: np.ndarray) -> tuple[float, float]:
        f = float(hit.mean())
        return f, float(np.sqrt(f * (1 - f) / len(hit)))

    return {"precision": frac(in_real_balls > 0), "recall": frac(real_recalled),
            "density": (float(in_real_balls.mean() / k), float(in_real_balls.std() / k / np.sqrt(len(gen)))),
            "coverage": frac(real_covered)}
