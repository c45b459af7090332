"""EPiC-GAN (Buhmann, Kasieczka, Thaler, arXiv:2301.08128): an equivariant point-cloud GAN.

Generator: per-particle noise (``latent_local``) and a global noise vector (``latent``) through
R EPiC layers; critic: EPiC layers with a pooled read-out; least-squares GAN loss; Adam
(lr 1e-4, beta1 0.9, eps 1e-14); batches of equal multiplicity of at most 128 jets.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from .base import JetStats
from .epic import EPiCDiscriminator, EPiCNetwork
from .gan import LSGAN

__all__ = ["EPiCGAN"]


class EPiCGAN(LSGAN):
    """EPiC-GAN; ``configs["full"]`` is the reference code's default (6 generator, 3 critic layers)."""

    name = "epic-gan"
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"hidden": 128, "latent": 10, "latent_local": 3, "gen_layers": 6, "disc_layers": 3,
                 "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.9, "batch_size": 128, "epochs": 500},
        "small": {"hidden": 64, "latent": 10, "latent_local": 3, "gen_layers": 3, "disc_layers": 2,
                  "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "batch_size": 128, "epochs": 40},
    }

    def __init__(self, config: dict[str, Any], stats: JetStats):
        super().__init__(config, stats)
        c = self.config
        self.gen = EPiCNetwork(c["latent_local"], c["latent"], c["hidden"], c["latent"], c["gen_layers"], 3)
        self.disc = EPiCDiscriminator(3, c["hidden"], c["latent"], c["disc_layers"])

    def noise(self, b, n, generator=None):
        dev = self.device
        return (torch.randn(b, self.config["latent"], generator=generator, device=dev),
                torch.randn(b, n, self.config["latent_local"], generator=generator, device=dev))
