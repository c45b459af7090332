"""Small array idioms shared across domains."""

from __future__ import annotations

import numpy as np

__all__ = ["slots"]


def slots(counts: np.ndarray) -> np.ndarray:
    """(sum(counts),) each entry's position within its group, for entries grouped consecutively,
    group ``i`` having ``counts[i]`` of them: 0..counts[0]-1, 0..counts[1]-1, ..."""
    counts = np.asarray(counts, np.int64)
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
