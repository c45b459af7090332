"""EPiC layers: equivariant point-cloud blocks (Buhmann, Kasieczka, Thaler, arXiv:2301.08128).

An EPiC layer keeps a short global vector beside the points: the global vector is updated from
the mean and the sum of the points' features and itself, each point from itself and the global
vector, with residual connections; the cost is O(N) in the number of points.  Linear layers are
weight-normalised and activations are leaky ReLUs, as in the reference code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["EPiCLayer", "EPiCNetwork", "EPiCDiscriminator"]


def _wn(n_in: int, n_out: int) -> nn.Module:
    return weight_norm(nn.Linear(n_in, n_out))


class EPiCLayer(nn.Module):
    """One EPiC layer on (global (B, G), local (B, N, H)); ``cond`` (B, C) is appended to the global input."""

    def __init__(self, hidden: int, global_dim: int, cond_dim: int = 0):
        super().__init__()
        self.fc_global1 = _wn(2 * hidden + global_dim + cond_dim, hidden)
        self.fc_global2 = _wn(hidden, global_dim)
        self.fc_local1 = _wn(hidden + global_dim + cond_dim, hidden)
        self.fc_local2 = _wn(hidden, hidden)

    def forward(self, g: torch.Tensor, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = [x.mean(1), x.sum(1), g] + ([cond] if cond is not None else [])
        g = F.leaky_relu(self.fc_global2(F.leaky_relu(self.fc_global1(torch.cat(pooled, 1)))) + g)
        g_local = torch.cat([g] + ([cond] if cond is not None else []), 1).unsqueeze(1).expand(-1, x.shape[1], -1)
        x = F.leaky_relu(self.fc_local2(F.leaky_relu(self.fc_local1(torch.cat([x, g_local], 2)))) + x)
        return g, x


class EPiCNetwork(nn.Module):
    """Points in, points out: the EPiC-GAN generator, or (with a condition) EPiC-FM's velocity field.

    Args:
        local_in: features per input point (local noise for the GAN; 3 for flow matching).
        global_in: size of the global input (global noise; for flow matching the condition).
        hidden: width H of the point and layer features.
        global_dim: size G of the global vector.
        layers: number of EPiC layers R.
        out: features per output point.
        cond_dim: size of a condition appended in every layer (time, jet mass and pT).
    """

    def __init__(self, local_in: int, global_in: int, hidden: int, global_dim: int, layers: int, out: int = 3,
                 cond_dim: int = 0):
        super().__init__()
        self.local_0 = _wn(local_in, hidden)
        self.global_0 = _wn(max(global_in, 1), hidden)
        self.global_1 = _wn(hidden, global_dim)
        self.layers = nn.ModuleList(EPiCLayer(hidden, global_dim, cond_dim) for _ in range(layers))
        self.local_out = _wn(hidden, out)
        self.cond_dim = cond_dim

    def forward(self, z_global: torch.Tensor, z_local: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = F.leaky_relu(self.local_0(z_local))
        g = F.leaky_relu(self.global_1(F.leaky_relu(self.global_0(z_global))))
        g_in, x_in = g, x
        for layer in self.layers:
            g, x = layer(g, x, cond)
            g, x = g + g_in, x + x_in  # skip connection to the layer stack's input
        return self.local_out(x)


class EPiCDiscriminator(nn.Module):
    """The EPiC-GAN critic: point MLP, pooled global vector, EPiC layers, pooled read-out to one score."""

    def __init__(self, feats: int, hidden: int, global_dim: int, layers: int):
        super().__init__()
        self.fc_l1, self.fc_l2 = _wn(feats, hidden), _wn(hidden, hidden)
        self.fc_g1, self.fc_g2 = _wn(2 * hidden, hidden), _wn(hidden, global_dim)
        self.layers = nn.ModuleList(EPiCLayer(hidden, global_dim) for _ in range(layers))
        self.fc_g3, self.fc_g4, self.fc_g5 = _wn(2 * hidden + global_dim, hidden), _wn(hidden, hidden), _wn(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.fc_l1(x))
        x = F.leaky_relu(self.fc_l2(x) + x)
        g = F.leaky_relu(self.fc_g2(F.leaky_relu(self.fc_g1(torch.cat([x.mean(1), x.sum(1)], 1)))))
        for layer in self.layers:
            g, x = layer(g, x)
        h = F.leaky_relu(self.fc_g3(torch.cat([x.mean(1), x.sum(1), g], 1)))
        h = F.leaky_relu(self.fc_g4(h) + h)
        return self.fc_g5(h)
