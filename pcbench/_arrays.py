"""Small array idioms shared across domains."""

from __future__ import annotations

import numpy as np

__all__ = ["slots", "wrap_phi"]


def slots(counts: np.ndarray) -> np.ndarray:
    """(sum(counts),) each entry's position within its group, for entries grouped consecutively,
    group ``i`` having ``counts[i]`` of them: 0..counts[0]-1, 0..counts[1]-1, ..."""
    counts = np.asarray(counts, np.int64)
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Angles wrapped into [-pi, pi)."""
    return (dphi + np.pi) % (2 * np.pi) - np.pi
