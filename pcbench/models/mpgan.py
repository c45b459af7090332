"""MP-GAN (Kansal et al., arXiv:2106.11535): message passing on the fully connected particle graph.

Each message-passing step updates every particle from the mean over all other particles of an
edge network f_e(x_i, x_j, |x_i - x_j|) through a node network f_n(x_i, m_i), with a residual
connection: cost O(N^2) per jet, the baseline of the EPiC papers' speed comparison.  Generator:
per-particle Gaussian noise (``latent_node``) through ``mp_iters`` steps to 3 features;
discriminator: ``mp_iters`` steps on the particles, mean pooling, an MLP to one score; LSGAN loss.
Widths follow the paper's JetNet defaults (edge MLP 96-160-192, node MLP 256-256, 2 steps).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import JetStats
from .gan import LSGAN

__all__ = ["MPGAN", "MessagePassing"]


def _mlp(sizes: list[int], final_act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if final_act or i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class MessagePassing(nn.Module):
    """One step on (B, N, F): x_i <- x_i + f_n(x_i, mean_{j != i} f_e(x_i, x_j, |x_i - x_j|))."""

    def __init__(self, feats: int, fe: list[int], fn: list[int]):
        super().__init__()
        self.fe = _mlp([2 * feats + 1, *fe])
        self.fn = _mlp([feats + fe[-1], *fn, feats], final_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, f = x.shape
        xi = x.unsqueeze(2).expand(b, n, n, f)
        xj = x.unsqueeze(1).expand(b, n, n, f)
        dist = torch.linalg.norm(xi - xj, dim=-1, keepdim=True)
        msg = self.fe(torch.cat([xi, xj, dist], -1))
        off_diag = 1.0 - torch.eye(n, device=x.device, dtype=x.dtype)[None, :, :, None]
        m = (msg * off_diag).sum(2) / max(n - 1, 1)
        return x + self.fn(torch.cat([x, m], -1))


class _Generator(nn.Module):
    def __init__(self, c: dict[str, Any]):
        super().__init__()
        self.mp = nn.ModuleList(MessagePassing(c["latent_node"], c["fe"], c["fn"]) for _ in range(c["mp_iters"]))
        self.out = nn.Linear(c["latent_node"], 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.mp:
            z = layer(z)
        return self.out(z)


class _Discriminator(nn.Module):
    def __init__(self, c: dict[str, Any]):
        super().__init__()
        self.embed = nn.Linear(3, c["disc_node"])
        self.mp = nn.ModuleList(MessagePassing(c["disc_node"], c["fe"], c["fn"]) for _ in range(c["mp_iters"]))
        self.head = _mlp([c["disc_node"], *c["fnd"], 1], final_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.embed(x), 0.2)
        for layer in self.mp:
            x = layer(x)
        return self.head(x.mean(1))


class MPGAN(LSGAN):
    """MP-GAN with least-squares loss; ``configs["full"]`` after the paper's JetNet settings."""

    name = "mp-gan"
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"latent_node": 32, "disc_node": 32, "fe": [96, 160, 192], "fn": [256, 256], "fnd": [128],
                 "mp_iters": 2, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5, "batch_size": 128, "epochs": 500},
        "small": {"latent_node": 16, "disc_node": 16, "fe": [32, 32], "fn": [64], "fnd": [32],
                  "mp_iters": 2, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "batch_size": 128, "epochs": 40},
    }

    def __init__(self, config: dict[str, Any], stats: JetStats):
        super().__init__(config, stats)
        self.gen = _Generator(self.config)
        self.disc = _Discriminator(self.config)

    def noise(self, b, n, generator=None):
        return (torch.randn(b, n, self.config["latent_node"], generator=generator, device=self.device),)
