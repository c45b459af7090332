"""DeepTreeGANv2's iterative-pooling critic (Scham et al., arXiv:2312.00042; code
``DeGeSim/nips23DeepTreeGANv2``, ``fgsim/models/disc/disc_deeptree.py``, ``models/mpl/gatmin.py``,
``models/pool/std_pool.py``; sizes in ``wd/scan_cdr5_fullcopy/af5e229/hyperparameters.yaml``).

The particles (B, n, 3) are judged at L + 1 resolutions: a head on the particles, then L times
embed (to D = heads x 10 features), pool onto m_k learned seed nodes per jet (``pool_nodes``,
published 30, 6, 1) and judge again; the score of each head is separate (the losses sum them).

* readout R(x) over the nodes of a jet: [count, sum, mean |x - mean|, max] per feature;
* central node update U(x) = x + Out(h | Glob(R(h))), h = Emb(x) (latent 40, global 40);
* head: Lin(R(U(U(x))) | jet condition) -> one score;
* embedding: FFN with batch statistics to D, then a central node update;
* pooling (GATv2 attention onto seeds s_k): for each head, alpha_kj = softmax_j a . LReLU_0.2(W_l x_j
  - W_r s_k), pooled_k = sum_j alpha_kj W_l x_j + bias, the heads concatenated.

The critic's MLPs are spectrally normalised with dropout 0.5 (the embedding's first MLP uses batch
statistics instead).  Invariant under permutations of the particles.  ``forward`` also returns
the latents used by the generator's feature-matching term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ffn import FFN

__all__ = ["readout", "CentralNodeUpdate", "BipartitePool", "PoolCritic"]


def readout(x: torch.Tensor) -> torch.Tensor:
    """(B, n, F) -> (B, 1 + 3F): [n, sum, mean absolute deviation, max] over the nodes."""
    count = torch.full((x.shape[0], 1), float(x.shape[1]), dtype=x.dtype, device=x.device)
    mad = (x - x.mean(1, keepdim=True)).abs().mean(1)
    return torch.cat([count, x.sum(1), mad, x.amax(1)], 1)


class CentralNodeUpdate(nn.Module):
    """x + Out(h | Glob(R(h))), h = Emb(x) (module docstring)."""

    def __init__(self, features: int, latent: int = 40, n_global: int = 40, **ffn):
        super().__init__()
        self.emb = FFN(features, latent, **ffn)
        self.glob = FFN(1 + 3 * latent, n_global, **ffn)
        self.out = FFN(latent + n_global, features, **ffn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        g = self.glob(readout(h))
        return x + self.out(torch.cat([h, g[:, None].expand(-1, x.shape[1], -1)], 2))


class BipartitePool(nn.Module):
    """GATv2 attention of ``seeds`` learned nodes onto a jet's nodes: (B, n, D) -> (B, seeds, D)."""

    def __init__(self, dim: int, seeds: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"pooling width {dim} is not a multiple of heads {heads}")
        self.heads, self.out = heads, dim // heads
        self.seeds = nn.Parameter(torch.randn(seeds, dim))
        self.lin_l, self.lin_r = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.att = nn.Parameter(torch.randn(heads, self.out) / self.out ** 0.5)
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        m = self.seeds.shape[0]
        xl = self.lin_l(x).view(b, 1, n, self.heads, self.out)
        sr = self.lin_r(self.seeds).view(1, m, 1, self.heads, self.out)
        z = F.leaky_relu(xl - sr, 0.2).reshape(-1, self.heads, self.out)
        alpha = (z * self.att).sum(-1).view(b, m, n, self.heads).softmax(2)
        # the weighted sum over the nodes as one matrix product per jet and head: (B, heads, m, out)
        pooled = alpha.permute(0, 3, 1, 2) @ xl[:, 0].permute(0, 2, 1, 3)
        return pooled.permute(0, 2, 1, 3).reshape(b, m, -1) + self.bias


class _Head(nn.Module):
    def __init__(self, features: int, n_cond: int, updates: int, **ffn):
        super().__init__()
        self.updates = nn.ModuleList(CentralNodeUpdate(features, **ffn) for _ in range(updates))
        self.lin = FFN(1 + 3 * features + n_cond, 1, **ffn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for u in self.updates:
            x = u(x)
        r = readout(x)
        return self.lin(torch.cat([r, cond], 1))[:, 0], r


class PoolCritic(nn.Module):
    """The iterative-pooling critic (module docstring).

    Args:
        features: per particle (3); n_cond: jet-condition features.
        pool_nodes: seeds per jet after each pooling (published 30, 6, 1 for 150 particles).
        heads: attention heads (16; the pooled width is heads x 10).
        updates: central node updates per head (2); dropout: in the spectral-norm MLPs (0.5).
    """

    def __init__(self, features: int, n_cond: int, pool_nodes: list[int], heads: int = 16, updates: int = 2,
                 dropout: float = 0.5, hidden: int = 100):
        super().__init__()
        dim = heads * 10
        sn = {"norm": "spectral", "dropout": dropout, "hidden": hidden}
        widths = [features] + [dim] * len(pool_nodes)
        self.heads = nn.ModuleList(_Head(w, n_cond, updates, **sn) for w in widths)
        self.embed = nn.ModuleList(
            nn.Sequential(FFN(w, dim, norm="batch", hidden=hidden, bias=True), CentralNodeUpdate(dim, **sn))
            for w in widths[:-1])
        self.pools = nn.ModuleList(BipartitePool(dim, m, heads) for m in pool_nodes)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Scores (L + 1, B) and the latents (each head's readout of the raw input, every
        embedding and every pooling)."""
        scores, latents = [], []
        for i, head in enumerate(self.heads):
            s, r = head(x, cond)
            scores.append(s)
            if i == 0:
                latents.append(r[:, 1:])  # sum, mad, max of the particles (the count left out)
            if i < len(self.pools):
                x = self.embed[i](x)
                latents.append(x)
                x = self.pools[i](x)
                latents.append(x)
        return torch.stack(scores), latents
