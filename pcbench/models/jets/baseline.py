"""The trivial baseline: every particle's features drawn independently from the training marginals.

No correlations at all (between the features of a particle, between particles, with the
multiplicity): any generator worth the name must beat it.  Multiplicities come from the training
distribution, as for every pcbench generator.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ...data import JetSet
from .base import JetGenerator, JetStats

__all__ = ["IndependentParticles"]


class IndependentParticles(JetGenerator):
    """Baseline with nothing to train; keeps up to ``max_particles`` training particles."""

    name = "independent"
    fitted = True
    configs: ClassVar[dict[str, dict[str, Any]]] = {"full": {"max_particles": 500_000, "epochs": 0},
                                                    "small": {"max_particles": 100_000, "epochs": 0}}

    def __init__(self, config: dict[str, Any], stats: JetStats, jets: JetSet | None = None):
        super().__init__(config, stats)
        pool = np.zeros((1, 3), np.float32)
        if jets is not None:
            pool = jets.particles[jets.mask]
            rng = np.random.default_rng(0)
            if len(pool) > config["max_particles"]:
                pool = pool[rng.choice(len(pool), config["max_particles"], replace=False)]
        self.register_buffer("pool", stats.normalise(torch.as_tensor(pool, dtype=torch.float64)).float())

    @classmethod
    def build(cls, config: dict[str, Any], stats: JetStats, jets: JetSet | None = None) -> IndependentParticles:
        return cls(config, stats, jets)

    def trainable(self) -> dict[str, nn.Module]:
        return {}

    def make_optimizers(self):
        return {}

    def training_step(self, x, optimizers, modules):
        return {}

    def generate(self, n_jets, multiplicity, generator):
        idx = torch.randint(len(self.pool), (n_jets, multiplicity, 3), generator=generator, device=self.device)
        return torch.gather(self.pool.unsqueeze(0).expand(n_jets, -1, -1), 1, idx)
