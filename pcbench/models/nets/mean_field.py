"""MDMA's mean-field attention networks (Käch, Melzer-Pellmann, Krücker, arXiv:2408.04997; code
``kaechb/MDMA``, branch ``NeurIPS``, ``models.py``): one mean-field token per cloud attends to
the particles and is handed back to every particle, so the cost is linear in the multiplicity.

With a = LeakyReLU(0.01), "|" concatenation, n the multiplicity and <n> the training mean, one
block maps particles x (B, n, E) and the token f (B, 1, E) to

    h = W0 a(x);  q = LN(W0 a(f));  u = MHA(q, h, h);  c = Wc (u | n / <n>);
    x <- W1 (h | c) + x;  f <- a(Wf c)

(W0 is shared by particles and token, as the reference; the token has no residual).  Generator:
per-particle N(0, 1) noise z (B, n, 3), x = a(E z), f = sum_i x_i / <n>, ``layers`` blocks,
output Linear(a(x)).  Critic: every linear layer row-normalised without bias
(:class:`RowNormLinear`), the attention's input projections weight-normalised; x = a(E x),
f = a(Ef sum_i x_i / <n>), ``layers`` blocks, score = Out(a(F2(a(F1(a(f | n / <n>)))))); it also
returns the final token (for the mean-field matching loss).  Generator permutation equivariant,
critic invariant; pcbench's batches hold one multiplicity, so no padding mask is needed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RowNormLinear", "MeanFieldBlock", "MeanFieldGenerator", "MeanFieldCritic"]

Linear = Callable[[int, int], nn.Module]


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.01)


class RowNormLinear(nn.Module):
    """y = x (V / ||V_row||)^T: every output's weight row has unit norm, no bias, no gain (the
    reference's ``WeightNormalizedLinear`` with its defaults)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.v = nn.Parameter(nn.Linear(n_in, n_out).weight.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.v / self.v.norm(dim=1, keepdim=True))


class _WeightNormLinear(nn.Module):
    """x (g V / ||V_row||)^T + b with one learnable gain per row (torch's ``weight_norm``, dim 0)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        base = nn.Linear(n_in, n_out)
        self.v = nn.Parameter(base.weight.detach().clone())
        self.g = nn.Parameter(base.weight.detach().norm(dim=1, keepdim=True))
        self.bias = nn.Parameter(base.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.g * self.v / self.v.norm(dim=1, keepdim=True), self.bias)


class MeanFieldBlock(nn.Module):
    """One mean-field block (module docstring); ``linear`` builds its linear layers,
    ``attn_linear`` the attention's query, key and value projections."""

    def __init__(self, dim: int, hidden: int, heads: int, linear: Linear = nn.Linear,
                 attn_linear: Linear = nn.Linear):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden {hidden} is not a multiple of heads {heads}")
        self.heads = heads
        self.fc0 = linear(dim, hidden)
        self.fc1 = linear(2 * hidden, dim)
        self.fc_token = linear(hidden + 1, hidden)
        self.fc_next = linear(hidden, dim)
        self.norm = nn.LayerNorm(hidden)
        self.q, self.k, self.v = (attn_linear(hidden, hidden) for _ in range(3))
        self.o = nn.Linear(hidden, hidden)

    def _attend(self, q: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        hd = d // self.heads
        q = self.q(q).view(b, 1, self.heads, hd).transpose(1, 2)
        k, v = (f(h).view(b, n, self.heads, hd).transpose(1, 2) for f in (self.k, self.v))
        return self.o(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, 1, d))

    def forward(self, x: torch.Tensor, token: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc0(_act(x))
        u = self._attend(self.norm(self.fc0(_act(token))), h)
        c = self.fc_token(torch.cat([u, cond], -1))
        x = self.fc1(torch.cat([h, c.expand(-1, x.shape[1], -1)], -1)) + x
        return x, _act(self.fc_next(c))


def _cond(x: torch.Tensor, mean_n: float) -> torch.Tensor:
    return torch.full((x.shape[0], 1, 1), x.shape[1] / mean_n, dtype=x.dtype, device=x.device)


class MeanFieldGenerator(nn.Module):
    """MDMA's generator: noise (B, n, F) -> particles (B, n, F) (module docstring).

    Args: features F (3); dim E (16), hidden H (48), heads (16), layers (7): the published sizes;
    mean_n: <n>, the training clouds' mean multiplicity.
    """

    def __init__(self, features: int, dim: int, hidden: int, heads: int, layers: int, mean_n: float):
        super().__init__()
        self.mean_n = float(mean_n)
        self.embed = nn.Linear(features, dim)
        self.blocks = nn.ModuleList(MeanFieldBlock(dim, hidden, heads) for _ in range(layers))
        self.out = nn.Linear(dim, features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        cond = _cond(z, self.mean_n)
        x = _act(self.embed(z))
        token = x.sum(1, keepdim=True) / self.mean_n
        for block in self.blocks:
            x, token = block(x, token, cond)
        return self.out(_act(x))


class MeanFieldCritic(nn.Module):
    """MDMA's critic: clouds (B, n, F) -> scores (B,) and the final token (B, E) (module docstring)."""

    def __init__(self, features: int, dim: int, hidden: int, heads: int, layers: int, mean_n: float):
        super().__init__()
        self.mean_n = float(mean_n)
        self.embed = RowNormLinear(features, dim)
        self.embed_token = RowNormLinear(dim, dim)
        self.blocks = nn.ModuleList(MeanFieldBlock(dim, hidden, heads, RowNormLinear, _WeightNormLinear)
                                    for _ in range(layers))
        self.fc1, self.fc2, self.out = RowNormLinear(dim + 1, hidden), RowNormLinear(hidden, dim), RowNormLinear(dim, 1)

    def forward(self, x: torch.Tensor, with_token: bool = False):
        cond = _cond(x, self.mean_n)
        x = _act(self.embed(x))
        token = _act(self.embed_token(x.sum(1, keepdim=True) / self.mean_n))
        for block in self.blocks:
            x, token = block(x, token, cond)
        score = self.out(_act(self.fc2(_act(self.fc1(_act(torch.cat([token, cond], -1)))))))[:, 0, 0]
        return (score, token[:, 0]) if with_token else score
