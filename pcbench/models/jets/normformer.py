"""PC-JeDi's transformer noise predictor (Leigh et al., arXiv:2303.05376; code ``rodem-hep/PC-JeDi``,
``src/models/transformers.py``, ``FullTransformerEncoder``; sizes in ``configs/model/default.yaml``).

With "|" concatenation, an MLP block = Linear -> LeakyReLU(0.1) -> LayerNorm, and c the condition
(B, C) (time encoding and jet conditions):

* context: k = MLP_k(c) (``ctxt_blocks`` blocks of ``ctxt_hidden``, then Linear to ``ctxt_dim``);
* embedding: h_i = Linear(Block(x_i | k)) to ``model_dim``;
* each of ``layers`` NormFormer layers (pre-LayerNorm plus a LayerNorm after attention):
  h <- h + LN2(MHA(LN1 h)); h <- h + FF(LN3 h_i | k), FF = Linear(Block(.)) of width ``ff_hidden``;
* a final LayerNorm, then eps_hat_i = Linear(Block(h_i | k)) (linear output).

Self-attention only (``heads`` heads, no positional encoding, no dropout), so the network is
permutation equivariant.  pcbench's batches hold clouds of one multiplicity: no padding mask.
Shapes: x (B, n, F), c (B, C) -> (B, n, F); the cost is O(n^2) in attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DenseBlocks", "NormFormerLayer", "PCJeDiTransformer"]


class DenseBlocks(nn.Sequential):
    """``blocks`` x (Linear -> LeakyReLU(0.1) -> LayerNorm) of width ``hidden``, then Linear to ``n_out``."""

    def __init__(self, n_in: int, hidden: int, n_out: int, blocks: int = 1):
        layers: list[nn.Module] = []
        for i in range(blocks):
            layers += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.LeakyReLU(0.1), nn.LayerNorm(hidden)]
        super().__init__(*layers, nn.Linear(hidden, n_out))


def _with_context(h: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.cat([h, k.unsqueeze(1).expand(-1, h.shape[1], -1)], -1)


class NormFormerLayer(nn.Module):
    """h <- h + LN2(MHA(LN1 h)); h <- h + FF(LN3 h | k) (module docstring)."""

    def __init__(self, dim: int, heads: int, ff_hidden: int, ctxt_dim: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model_dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(dim) for _ in range(3))
        self.ff = DenseBlocks(dim + ctxt_dim, ff_hidden, dim)

    def attention(self, h: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        q, k, v = (f(h).view(b, n, self.heads, d // self.heads).transpose(1, 2) for f in (self.q, self.k, self.v))
        return self.o(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))

    def forward(self, h: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        h = h + self.ln2(self.attention(self.ln1(h)))
        return h + self.ff(_with_context(self.ln3(h), k))


class PCJeDiTransformer(nn.Module):
    """The PC-JeDi noise predictor (module docstring).

    Args:
        features: F, features per particle in and out (3).
        cond: C, size of the condition (time encoding + jet conditions).
        model_dim, layers, heads, ff_hidden: the transformer (published: 128, 4, 8, 256).
        embed_hidden: width of the embedding and output blocks (256).
        ctxt_hidden, ctxt_blocks, ctxt_dim: the context network (128, 2, 64).
    """

    def __init__(self, features: int, cond: int, model_dim: int, layers: int, heads: int, ff_hidden: int,
                 embed_hidden: int, ctxt_hidden: int, ctxt_blocks: int, ctxt_dim: int):
        super().__init__()
        self.context = DenseBlocks(cond, ctxt_hidden, ctxt_dim, ctxt_blocks)
        self.embed = DenseBlocks(features + ctxt_dim, embed_hidden, model_dim)
        self.layers = nn.ModuleList(NormFormerLayer(model_dim, heads, ff_hidden, ctxt_dim) for _ in range(layers))
        self.final_norm = nn.LayerNorm(model_dim)
        self.out = DenseBlocks(model_dim + ctxt_dim, embed_hidden, features)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        k = self.context(c)
        h = self.embed(_with_context(x, k))
        for layer in self.layers:
            h = layer(h, k)
        return self.out(_with_context(self.final_norm(h), k))
