"""The r-GAN fully connected point-cloud generator (Achlioptas et al., arXiv:1707.02392), in the
configuration of the MP-GAN paper's FC baselines (``rkansal47/MPGAN``, ``ext_models.rGANG``).

A latent vector z (B, latent_dim) goes through linear layers of widths ``fc`` with leaky ReLU
(slope 0.2), then a linear layer to P * F outputs and a tanh: (B, P, F) normalised particles,
every slot a particle (no mask).  Module names (``model.k``) follow the authors' state dicts.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FCGenerator"]


class FCGenerator(nn.Module):
    """z (B, latent_dim) -> (B, num_particles, out_feats) in (-1, 1)."""

    def __init__(self, latent_dim: int, fc: list[int], num_particles: int, out_feats: int = 3, alpha: float = 0.2):
        super().__init__()
        self.latent_dim, self.num_particles, self.out_feats = latent_dim, num_particles, out_feats
        layers: list[nn.Module] = []
        for a, b in zip([latent_dim, *fc[:-1]], fc):
            layers += [nn.Linear(a, b), nn.LeakyReLU(alpha)]
        layers += [nn.Linear(fc[-1], num_particles * out_feats), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def noise(self, b: int, generator: torch.Generator | None, sd: float = 0.2) -> torch.Tensor:
        """N(0, sd^2) latent vectors (b, latent_dim)."""
        return torch.randn((b, self.latent_dim), generator=generator, device=self.model[0].weight.device) * sd

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).reshape(len(z), self.num_particles, self.out_feats)
