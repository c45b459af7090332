"""The "Local EPiC" noise predictor of EPiC-JeDi (Buhmann et al., arXiv:2310.00049; code
``DebajyotiS/PC-JeDi``, branch ``all``, ``src/models/epic.py``: the network of the published
EPiC-JeDi runs).

An EPiC network whose every linear layer also sees the condition c (B, C) (the time encoding and,
if conditional, the jet's mass and pT).  With sigma = LeakyReLU(0.01), s = ``sum_scale`` (0.01),
pooling P(h) = [mean_i h_i, s sum_i h_i] and "|" concatenation:

* stem: h_i = sigma(L1(x_i | c)), h_i = sigma(L2(h_i | c) + h_i); g = sigma(L4(sigma(L3(P(h) | c)) | c));
* each of the ``layers`` blocks: u = sigma(A(P(h) | g | c)); g = sigma(B(u | c) + g);
  v_i = sigma(Cl(h_i | g | c)); h_i = sigma(D(v_i | c) + h_i);
* output: eps_hat_i = Out(h_i | c), linear.

Every linear layer is weight-normalised with one scalar gain, W = g V / ||V||_F (the reference's
own weight norm, not torch's per-row one).  Shapes: x (B, n, F) -> (B, n, F_out); the cost is
O(n).  pcbench's batches hold clouds of one multiplicity, so no padding mask is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ScalarWeightNormLinear", "LocalEPiC"]


class ScalarWeightNormLinear(nn.Module):
    """A linear layer W x + b with W = g V / ||V||_F (one scalar gain g, initialised to ||V||_F)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        base = nn.Linear(n_in, n_out)
        self.v = nn.Parameter(base.weight.detach().clone())
        self.g = nn.Parameter(base.weight.detach().norm().reshape(()))
        self.bias = nn.Parameter(base.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.g * self.v / self.v.norm(), self.bias)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.01)


class _Block(nn.Module):
    def __init__(self, hidden: int, global_dim: int, cond: int):
        super().__init__()
        self.a = ScalarWeightNormLinear(2 * hidden + global_dim + cond, hidden)
        self.b = ScalarWeightNormLinear(hidden + cond, global_dim)
        self.c = ScalarWeightNormLinear(hidden + global_dim + cond, hidden)
        self.d = ScalarWeightNormLinear(hidden + cond, hidden)

    def forward(self, h: torch.Tensor, g: torch.Tensor, c: torch.Tensor, s: float) -> tuple[torch.Tensor, torch.Tensor]:
        u = _act(self.a(torch.cat([h.mean(1), s * h.sum(1), g, c], 1)))
        g = _act(self.b(torch.cat([u, c], 1)) + g)
        n = h.shape[1]
        local = torch.cat([g, c], 1).unsqueeze(1).expand(-1, n, -1)
        v = _act(self.c(torch.cat([h, local], 2)))
        h = _act(self.d(torch.cat([v, local[..., g.shape[1]:]], 2)) + h)
        return h, g


class LocalEPiC(nn.Module):
    """The Local EPiC network (module docstring).

    Args:
        features: F, features per point in and out (3: etarel, phirel, ptrel).
        cond: C, size of the condition.
        hidden: H, width of the point features.
        global_dim: G, size of the global vector (10 in the published runs).
        layers: number of blocks (6 in the published runs).
        sum_scale: s, the factor of the summed points in the pooling (0.01).
    """

    def __init__(self, features: int, cond: int, hidden: int, global_dim: int, layers: int, sum_scale: float = 0.01):
        super().__init__()
        self.sum_scale = sum_scale
        self.l1 = ScalarWeightNormLinear(features + cond, hidden)
        self.l2 = ScalarWeightNormLinear(hidden + cond, hidden)
        self.l3 = ScalarWeightNormLinear(2 * hidden + cond, hidden)
        self.l4 = ScalarWeightNormLinear(hidden + cond, global_dim)
        self.blocks = nn.ModuleList(_Block(hidden, global_dim, cond) for _ in range(layers))
        self.out = ScalarWeightNormLinear(hidden + cond, features)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        cl = c.unsqueeze(1).expand(-1, n, -1)
        h = _act(self.l1(torch.cat([x, cl], 2)))
        h = _act(self.l2(torch.cat([h, cl], 2)) + h)
        s = self.sum_scale
        g = _act(self.l4(torch.cat([_act(self.l3(torch.cat([h.mean(1), s * h.sum(1), c], 1))), c], 1)))
        for block in self.blocks:
            h, g = block(h, g, c, s)
        return self.out(torch.cat([h, cl], 2))
