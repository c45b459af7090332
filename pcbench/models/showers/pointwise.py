"""PointWise Net: the CaloClouds point network (Buhmann et al., arXiv:2305.04847, 2309.05704).

Every point is transformed alone (no interaction between points), conditioned on a per-shower
context (incident energy, number of points) and the noise level: a stack of "concat-squash"
layers y = (W x + b) * sigmoid(G c) + H c, c = [context, time embedding], with LeakyReLU between
them.  The time embedding is random Fourier features of ln(sigma) / 4 (fixed) and a linear
layer.  Shapes: x (B, N, d), sigma (B,), context (B, C) -> (B, N, d).

Without autograd (sampling) each layer folds the shower's gate and bias into its weights,
y = x (W^T diag(g)) + (b g + h), one batched matrix product per layer instead of a product and
two passes over the (B, N, d_out) output: the same numbers to float32 rounding, about 10 % faster
on CPU (``benchmarks/shower_generation_time.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConcatSquashLinear", "PointWiseNet"]


class ConcatSquashLinear(nn.Module):
    """y = layer(x) * sigmoid(gate(ctx)) + bias(ctx); ``fold``: without autograd, fold the gate and
    bias into per-shower weights (a class switch, for checks and timings of the plain form)."""

    fold = True

    def __init__(self, dim_in: int, dim_out: int, dim_ctx: int):
        super().__init__()
        self.layer = nn.Linear(dim_in, dim_out)
        self.gate = nn.Linear(dim_ctx, dim_out)
        self.bias = nn.Linear(dim_ctx, dim_out, bias=False)

    def forward(self, ctx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """ctx (B, 1, C), x (B, N, d_in) -> (B, N, d_out)."""
        gate = torch.sigmoid(self.gate(ctx))
        if torch.is_grad_enabled() or not self.fold:
            return self.layer(x) * gate + self.bias(ctx)
        weight = self.layer.weight.T * gate  # (B, d_in, d_out)
        return torch.baddbmm(self.layer.bias * gate + self.bias(ctx), x, weight)


class PointWiseNet(nn.Module):
    """The network F(x, sigma, context); ``widths`` are the hidden layer widths (CaloClouds II:
    128, 256, 512, 256, 128)."""

    def __init__(self, point_dim: int = 4, context_dim: int = 2, widths: tuple[int, ...] = (128, 256, 512, 256, 128),
                 time_dim: int = 64, fourier_scale: float = 16.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("fourier", torch.randn(time_dim // 2, 1, generator=g) * fourier_scale)
        self.time = nn.Linear(time_dim, time_dim)
        dims = (point_dim, *widths, point_dim)
        self.layers = nn.ModuleList(ConcatSquashLinear(a, b, context_dim + time_dim) for a, b in zip(dims[:-1], dims[1:]))

    def time_embedding(self, sigma: torch.Tensor) -> torch.Tensor:
        """(B,) -> (B, time_dim)."""
        f = 2 * math.pi * (sigma.log().view(-1, 1) / 4) @ self.fourier.T
        return self.time(torch.cat([f.cos(), f.sin()], -1))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        ctx = torch.cat([context, self.time_embedding(sigma)], -1).unsqueeze(1)
        for i, layer in enumerate(self.layers):
            x = layer(ctx, x)
            if i < len(self.layers) - 1:
                x = F.leaky_relu(x, 0.01, inplace=not torch.is_grad_enabled())  # in place: a fresh tensor
        return x
