"""The GraphCNN point-cloud generator (Valsesia et al., ICLR 2019) in the configuration of the MP-GAN
paper's baselines (``rkansal47/MPGAN``, ``ext_models.GraphCNNGANG``), in plain torch.

z (B, latent_dim) -> linear + leaky ReLU -> P nodes of ``layers[0]`` features; then for each layer
an edge-conditioned convolution (Simonovsky & Komodakis 2017; torch_geometric's ``NNConv`` with
mean aggregation, root weight and bias) on the k-nearest-neighbour graph of the current node
features (Euclidean, self excluded unless k = P), followed by batch normalisation (running
statistics: the network is evaluated in eval mode) and, except after the last layer, leaky ReLU:

    x'_i = x_i R + b + mean_{j in kNN(i)} x_j W(x_j - x_i),    W(e) = reshape(Linear(e), (F_in, F_out))

Module names follow the authors' state dicts (``layers.k.{root,bias,nn}``, the same edge networks
again as ``edge_weights.k``, ``bn_layers.k.module``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EdgeConditionedConv", "GraphCNNGenerator", "knn_indices"]


def knn_indices(x: torch.Tensor, k: int, loop: bool) -> torch.Tensor:
    """(B, N, k) indices of each node's k nearest nodes of the same graph in x (B, N, F)."""
    d = torch.cdist(x, x)
    if not loop:
        d = d + torch.diag(torch.full((x.shape[1],), float("inf"), device=x.device, dtype=x.dtype))
    return d.topk(k, dim=2, largest=False).indices


class EdgeConditionedConv(nn.Module):
    """x'_i = x_i root + bias + mean_j x_j reshape(nn(x_j - x_i)) over the given neighbours."""

    def __init__(self, in_size: int, out_size: int, edge_net: nn.Linear):
        super().__init__()
        self.in_size, self.out_size = in_size, out_size
        self.root = nn.Parameter(torch.empty(in_size, out_size))
        self.bias = nn.Parameter(torch.zeros(out_size))
        self.nn = edge_net
        nn.init.xavier_uniform_(self.root)

    def forward(self, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        b, n, f = x.shape
        xj = torch.gather(x.unsqueeze(1).expand(b, n, n, f), 2,
                          neighbours.unsqueeze(-1).expand(-1, -1, -1, f))  # (B, N, k, F)
        w = self.nn(xj - x.unsqueeze(2)).reshape(b, n, neighbours.shape[2], self.in_size, self.out_size)
        msg = torch.einsum("bnki,bnkio->bnko", xj, w).mean(2)
        return msg + x @ self.root + self.bias


class _BatchNorm(nn.Module):
    """torch_geometric's BatchNorm: a BatchNorm1d over all nodes, kept as ``module``."""

    def __init__(self, size: int):
        super().__init__()
        self.module = nn.BatchNorm1d(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, f = x.shape
        return self.module(x.reshape(b * n, f)).reshape(b, n, f)


class GraphCNNGenerator(nn.Module):
    """z (B, latent_dim) -> (B, num_particles, out_feats) normalised particles (no mask)."""

    def __init__(self, latent_dim: int, layers: list[int], num_particles: int, num_knn: int, out_feats: int = 3,
                 tanh: bool = False, alpha: float = 0.2):
        super().__init__()
        self.latent_dim, self.num_particles, self.num_knn, self.tanh, self.alpha = (
            latent_dim, num_particles, num_knn, tanh, alpha)
        self.first = layers[0]
        sizes = [*layers, out_feats]
        self.dense = nn.Linear(latent_dim, num_particles * layers[0])
        self.edge_weights = nn.ModuleList(nn.Linear(a, a * b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.layers = nn.ModuleList(EdgeConditionedConv(a, b, e)
                                    for a, b, e in zip(sizes[:-1], sizes[1:], self.edge_weights))
        self.bn_layers = nn.ModuleList(_BatchNorm(b) for b in sizes[1:])

    def noise(self, b: int, generator: torch.Generator | None, sd: float = 0.2) -> torch.Tensor:
        """N(0, sd^2) latent vectors (b, latent_dim)."""
        return torch.randn((b, self.latent_dim), generator=generator, device=self.dense.weight.device) * sd

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.dense(z), self.alpha).reshape(len(z), self.num_particles, self.first)
        loop = self.num_knn == self.num_particles
        last = len(self.layers) - 1
        for i, (conv, bn) in enumerate(zip(self.layers, self.bn_layers)):
            x = bn(conv(x, knn_indices(x, self.num_knn, loop)))
            if i < last:
                x = F.leaky_relu(x, self.alpha)
        return torch.tanh(x) if self.tanh else x
