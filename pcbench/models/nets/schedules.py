"""Learning-rate schedules of the reference codes, as factors of the base learning rate."""

from __future__ import annotations

import math

__all__ = ["cosine_warmup"]


def cosine_warmup(step: int, warmup: int, max_iters: int) -> float:
    """The reference's learning-rate factor: 0.5 (1 + cos(pi t / max_iters)), times t / warmup
    while t <= warmup."""
    factor = 0.5 * (1.0 + math.cos(math.pi * step / max_iters))
    return factor * step / warmup if step <= warmup else factor
