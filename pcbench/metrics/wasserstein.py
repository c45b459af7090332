"""1-Wasserstein distances of one-dimensional distributions, batched as the jetnet library does."""

from __future__ import annotations

import numpy as np

__all__ = ["w1", "w1_batched"]


def w1(x: np.ndarray, y: np.ndarray) -> float:
    """W1 between the empirical distributions of two 1-D samples: the integral of |F_x - F_y|.

    The same quantity as ``scipy.stats.wasserstein_distance`` (tested to rounding), computed from
    the two sorted samples merged with a stable sort (linear on two sorted runs) instead of
    scipy's extra sorts, which matters for the millions of particles of W1P.
    """
    x = np.sort(np.ravel(x).astype(np.float64, copy=False))
    y = np.sort(np.ravel(y).astype(np.float64, copy=False))
    both = np.sort(np.concatenate([x, y]), kind="stable")
    widths = np.diff(both)
    fx = np.searchsorted(x, both[:-1], side="right") / len(x)
    fy = np.searchsorted(y, both[:-1], side="right") / len(y)
    return float(np.sum(np.abs(fx - fy) * widths))


def w1_batched(real: np.ndarray, gen: np.ndarray, num_eval_samples: int = 50_000, num_batches: int = 5,
               seed: int = 42, real_mask: np.ndarray | None = None,
               gen_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """W1 per feature on ``num_batches`` resamplings; mean and standard deviation over batches.

    As jetnet's ``w1m``/``w1p``/``w1efp``: each batch draws ``num_eval_samples`` objects with
    replacement from each sample (real first, then generated, from ``default_rng(seed)``; jetnet
    uses an unseeded generator), and compares the features of the drawn objects.

    Args:
        real, gen: (N, F) per-object features, or (N, P, F) per-particle features with masks.
        real_mask, gen_mask: (N, P) bool for per-particle features: only True particles count.

    Returns:
        (F,) means and (F,) standard deviations (numpy's std, ddof=0, as jetnet).
    """
    rng = np.random.default_rng(seed)
    n_feat = real.shape[-1]
    vals = np.empty((num_batches, n_feat))
    for b in range(num_batches):
        i = rng.choice(len(real), size=num_eval_samples)
        j = rng.choice(len(gen), size=num_eval_samples)
        x = real[i][real_mask[i]] if real_mask is not None else real[i].reshape(-1, n_feat)
        y = gen[j][gen_mask[j]] if gen_mask is not None else gen[j].reshape(-1, n_feat)
        if len(x) == 0 or len(y) == 0:
            vals[b] = np.inf
            continue
        vals[b] = [w1(x[:, f], y[:, f]) for f in range(n_feat)]
    return vals.mean(axis=0), vals.std(axis=0)
