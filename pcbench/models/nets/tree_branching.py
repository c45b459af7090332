"""DeepTreeGAN's tree-branching generator (Scham et al., arXiv:2311.12616 and arXiv:2312.00042;
code ``DeGeSim/nips23DeepTreeGANv2``, ``fgsim/models/gen/gen_deeptree.py``,
``models/common/deeptree/branching.py``, ``models/common/dyn_hlvs.py``).

A root vector z (B, 1, F_0) grows into a tree: level l holds n_l = b_0 ... b_{l-1} nodes of width
F_l, the leaves (prod b = P particles) have F_L = 3 features.  With c = n / P (the multiplicity
condition) and every MLP an :class:`~pcbench.models.nets.ffn.FFN` with batch statistics, level l:

1. global features g = Post(sum_nodes Pre(x_l) | c) (10 features; Pre to int(2 F_l 10/(F_l + 10)));
2. branching: each parent p makes b_l children Proj(x_p | c | g) reshaped to b_l x F_l, plus x_p
   (its own parent: the v2 code's residual), then Reduce to F_{l+1}; older levels keep their
   first F_{l+1} features;
3. one GIN layer (eps 0) over the edges from every ancestor to every descendant, on all nodes:
   x_v <- x_v + GIN(h_v + sum_{u ancestor of v} h_u), h = (x | c | g).

The P leaves are returned in tree order; a jet of n particles keeps the first n (the
reference's ``cut`` pruning).  Shapes: z (B, F_0) -> (B, P, 3).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .ffn import FFN, harmonic_width

__all__ = ["TreeGenerator", "GLOBAL_FEATURES"]

#: the global features of every level (the reference's n_global)
GLOBAL_FEATURES = 10


class _Level(nn.Module):
    def __init__(self, width: int, next_width: int, branches: int, hidden: int, n_cond: int = 1):
        super().__init__()
        g = GLOBAL_FEATURES
        pre = harmonic_width(width, g)
        self.branches, self.next_width = branches, next_width
        self.pre, self.post = FFN(width, pre, hidden=hidden), FFN(pre + n_cond, g, hidden=hidden)
        self.proj = FFN(width + n_cond + g, width * branches, hidden=hidden)
        self.reduce = FFN(width, next_width, hidden=hidden)
        self.gin = FFN(next_width + n_cond + g, next_width, hidden=hidden)


class TreeGenerator(nn.Module):
    """The tree generator (module docstring).

    Args:
        branches: b_0 ... b_{L-1}, children per node at each level (product: P).
        widths: F_0 ... F_L, node features per level (F_L = 3 features per particle).
        hidden: the MLPs' least hidden width (published 100).
    """

    def __init__(self, branches: list[int], widths: list[int], hidden: int = 100):
        super().__init__()
        if len(widths) != len(branches) + 1:
            raise ValueError(f"widths {widths}: expected {len(branches) + 1} levels for branches {branches}")
        self.branches, self.widths = list(branches), list(widths)
        self.num_leaves = math.prod(branches)
        self.levels = nn.ModuleList(_Level(widths[i], widths[i + 1], b, hidden) for i, b in enumerate(branches))

    def forward(self, z: torch.Tensor, n: int | torch.Tensor) -> torch.Tensor:
        """z (B, F_0) and the multiplicity n -> the first n leaves (B, n, 3); with one
        multiplicity per jet, n (B,), all P leaves (B, P, 3), jet i's particles its first n_i."""
        b = z.shape[0]
        if isinstance(n, torch.Tensor):
            cond = (n.to(z.dtype) / self.num_leaves).reshape(b, 1)
        else:
            cond = torch.full((b, 1), n / self.num_leaves, dtype=z.dtype, device=z.device)
        tree = [z[:, None, :]]
        for level, nb in zip(self.levels, self.branches):
            parents = tree[-1]
            g = level.post(torch.cat([level.pre(parents).sum(1), cond], 1))
            ctx = torch.cat([cond, g], 1)  # (B, 1 + G)
            k = parents.shape[1]
            proj = level.proj(torch.cat([parents, ctx[:, None].expand(-1, k, -1)], 2))
            children = proj.reshape(b, k * nb, parents.shape[2]) + parents.repeat_interleave(nb, dim=1)
            tree = [t[..., :level.next_width] for t in tree] + [level.reduce(children)]
            tree = self._gin(tree, ctx, level.gin)
        return tree[-1] if isinstance(n, torch.Tensor) else tree[-1][:, :n]

    def _gin(self, tree: list[torch.Tensor], ctx: torch.Tensor, gin: nn.Module) -> list[torch.Tensor]:
        """x_v + GIN(h_v + sum of h over v's ancestors) on every node of every level at once."""
        hs = [torch.cat([t, ctx[:, None].expand(-1, t.shape[1], -1)], 2) for t in tree]
        above = torch.zeros_like(hs[0])
        inputs = []
        for i, h in enumerate(hs):
            if i:
                above = (above + hs[i - 1]).repeat_interleave(self.branches[i - 1], dim=1)
            inputs.append(h + above)
        out = gin(torch.cat(inputs, 1))
        sizes = [t.shape[1] for t in tree]
        return [t + o for t, o in zip(tree, out.split(sizes, dim=1))]
