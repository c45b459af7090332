"""DeepTreeGAN's multilayer perceptron (``DeGeSim`` fgsim, ``models/common/ffn.py``): ``layers``
linear layers without bias, hidden width max(``hidden``, in, out), each but the last followed by
an optional dropout, a normalisation and LeakyReLU(0.1); the last layer linear.

Normalisations: ``batch``, the batch statistics of every call (BatchNorm without affine parameters
or running statistics, as the reference; generated jets depend on the batch they are made in),
``spectral`` (spectral norm on every linear layer, the critic's), or none.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BatchStatNorm", "FFN", "harmonic_width"]


class BatchStatNorm(nn.Module):
    """(x - mean) / sqrt(var + eps) over every row of x (..., F) (biased variance; a single row
    gives zeros, where ``BatchNorm1d`` refuses)."""

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        mean = flat.mean(0)
        var = flat.var(0, correction=0)
        return (x - mean) / torch.sqrt(var + self.eps)


def harmonic_width(a: int, b: int) -> int:
    """int(2 a b / (a + b)), the reference's width between two sizes."""
    return int(2 * a * b / (a + b))


class FFN(nn.Module):
    """x (..., n_in) -> (..., n_out) (module docstring)."""

    def __init__(self, n_in: int, n_out: int, norm: str = "batch", hidden: int = 100, layers: int = 3,
                 dropout: float = 0.0, bias: bool = False):
        super().__init__()
        if norm not in ("batch", "spectral", "none"):
            raise ValueError(f"norm {norm!r}: expected batch, spectral or none")
        width = max(hidden, n_in, n_out)
        sizes = [n_in] + [width] * (layers - 1) + [n_out]
        mods: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            lin = nn.Linear(a, b, bias=bias)
            mods.append(nn.utils.parametrizations.spectral_norm(lin) if norm == "spectral" else lin)
            if i < layers - 1:
                if dropout:
                    mods.append(nn.Dropout(dropout))
                if norm == "batch":
                    mods.append(BatchStatNorm())
                mods.append(nn.LeakyReLU(0.1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
