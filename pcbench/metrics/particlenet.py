"""ParticleNet (Qu, Gouskos, arXiv:1902.08570) as the MP-GAN authors trained it for FPND, in plain torch.

The architecture of the jetnet library's ``_ParticleNet`` (arXiv:2106.11535): k = 16 nearest
neighbours; three EdgeConv blocks (edge MLP of 3 x (Linear, BatchNorm, ReLU) with widths 64, 128,
256, mean aggregation over neighbours of h(x_i, x_j - x_i)), each block's output concatenated
with its input; the first block finds neighbours in (etarel, phirel) only, later blocks in the
full feature space; all slots, zero padding included, take part; global mean pooling; ``fc1``
(256) gives the activations FPND uses.  The kNN graph is built densely per jet (pairwise
distances and top-k, the node itself excluded) instead of with ``torch_cluster``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ParticleNet"]


class _EdgeNet(nn.Module):
    """h(x_i, x_j - x_i): 3 x (Linear, BatchNorm, ReLU) on the concatenated edge features."""

    def __init__(self, in_size: int, width: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.Linear(in_size * 2 if i == 0 else width, width), nn.BatchNorm1d(width), nn.ReLU()]
        self.model = nn.Sequential(*layers)
        self._fused: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def fuse(self) -> None:
        """Fold each eval-mode BatchNorm into its Linear (the same function up to float rounding)."""
        fused = []
        for lin, bn in ((self.model[i], self.model[i + 1]) for i in (0, 3, 6)):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused.append(((lin.weight * scale[:, None]).detach(), ((lin.bias - bn.running_mean) * scale + bn.bias).detach()))
        self._fused = fused

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Mean over each point's neighbours ``idx`` (B, N, k) of h; x is (B, N, F)."""
        if self._fused is None:
            nbr = _gather(x, idx)
            centre = x.unsqueeze(2).expand_as(nbr)
            edges = torch.cat([centre, nbr - centre], dim=-1)
            return self.model(edges.reshape(-1, edges.shape[-1])).reshape(*edges.shape[:-1], -1).mean(dim=2)
        (w1, b1), (w2, b2), (w3, b3) = self._fused
        f = x.shape[-1]
        # W [x_i, x_j - x_i] = (W_a - W_b) x_i + W_b x_j: project the points once, gather per edge
        own = torch.nn.functional.linear(x, w1[:, :f] - w1[:, f:], b1)
        other = torch.nn.functional.linear(x, w1[:, f:])
        h = torch.relu_(own.unsqueeze(2) + _gather(other, idx))
        h = torch.relu_(torch.nn.functional.linear(h, w2, b2))
        h = torch.relu_(torch.nn.functional.linear(h, w3, b3))
        return h.mean(dim=2)


def _gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(B, N, k, F) features of the neighbours ``idx`` (B, N, k) of each point of x (B, N, F)."""
    b, n, k = idx.shape
    flat = idx.reshape(b, n * k, 1).expand(-1, -1, x.shape[-1])
    return torch.gather(x, 1, flat).reshape(b, n, k, x.shape[-1])


def _knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, N, k) indices of each point's k nearest other points (Euclidean) within its jet."""
    d = torch.cdist(x, x)
    d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    return d.topk(k, dim=-1, largest=False).indices


class ParticleNet(nn.Module):
    """The FPND ParticleNet; ``forward`` takes (B, N, F) normalised particle features."""

    def __init__(self, num_particles: int = 30, num_features: int = 3, num_classes: int = 5, k: int = 16):
        super().__init__()
        self.k = k
        widths = [64, 128, 256]
        sizes = [num_features]
        self.edge_nets = nn.ModuleList()
        for w in widths:
            self.edge_nets.append(_EdgeNet(sizes[-1], w))
            sizes.append(sizes[-1] + w)
        self.fc1 = nn.Sequential(nn.Linear(sizes[-1], 256))
        self.fc2 = nn.Linear(256, num_classes)

    def activations(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 256) fc1 outputs before the ReLU (the FPND activations)."""
        for i, net in enumerate(self.edge_nets):
            idx = _knn(x[..., :2] if i == 0 else x, min(self.k, x.shape[1] - 1))
            x = torch.cat([net(x, idx), x], dim=-1)
        return self.fc1(x.mean(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_classes) class logits (dropout omitted: inference only)."""
        return self.fc2(torch.relu(self.activations(x)))

    def load_jetnet_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state dict saved from jetnet's ``_ParticleNet`` (its duplicated EdgeConv keys dropped)."""
        self.load_state_dict({k: v for k, v in state.items() if not k.startswith("edge_convs.")})

    def fuse(self) -> ParticleNet:
        """Switch to inference with BatchNorm folded into the Linear layers (call after loading)."""
        self.eval()
        for net in self.edge_nets:
            net.fuse()
        return self
