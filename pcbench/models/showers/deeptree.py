"""DeepTree for showers: the DeepTreeGAN family (Scham et al., arXiv:2311.12616, arXiv:2312.00042)
as submitted to the CaloChallenge for data set 2 (code ``DeGeSim/cms_graph_gan`` at 9978dba,
``fgsim/models/gen/gen_deeptree.py``, ``fgsim/models/disc/disc_deeptree.py``; file and line of
every setting in docs/generators-showers.md).

A shower is a cloud of one point per voxel, (E, z, alpha, r) in a scaled space (E: Box-Cox then
standardised; the voxel indices dequantised with U(0, 1), divided by the bin counts, logit,
standardised), conditioned on c = (E_inc, n_hits, E_inc / n_hits), each mapped to a standard
normal through its training quantiles.  The generator grows a tree from z ~ N(0, 1) (B, F_0):
1 -> b_0 -> b_0 b_1 ... -> prod b = 6000 leaves of 4 features, and a shower of n hits keeps its
first n leaves (the reference's ``cut`` pruning).  Each level l, with g the level's global
features and GCU(x, r) = a * LeakyReLU_0.1(b), (a | b) = W_j(W_x x + W_r r) (gated conditioning,
``models/common/gated_cond.py``):

1. g = Post(sum_nodes Pre(x_l) | c) (``DynHLVsLayer``; both MLPs end in batch norm + LeakyReLU);
2. branching: p = x_p + GCU(x_p, c | g); children = Proj(p) split into b_l, each plus
   GCU(child, p); Reduce to F_{l+1}; every older node keeps its first F_{l+1} features;
3. one gated GIN layer over the edges from every ancestor to every node of the tree:
   h = x + GCU(x, c | g), x' = GIN(h_v + sum_{u ancestor of v} h_u), x <- x' + GCU(x', h).

The critic is DeepTreeGANv2's pooling critic (``pool_critic``) on the ragged clouds: a hinge head
on the points, then 3 x (embed to heads x 10 features, GATv2-pool onto 30, 6, 1 learned seeds,
head), 4 scores summed in the hinge losses.  The generator's loss adds 10 x ``knn_distance``.
Showers are sampled with n_hits drawn from training showers of a similar incident energy (the
reference took the n_hits of the evaluation shower itself), points go back to voxel indices by
floor, each generated shower is rolled by a random whole number of alpha bins, and points in the
same voxel are summed by the projection (the reference first moves them to free neighbours).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy import special, stats
from torch import nn

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...errors import ConfigError
from ...geometry import get_geometry
from ...geometry.cylindrical import CylindricalGeometry
from ..nets.ffn import FFN, BatchStatNorm, harmonic_width
from ..nets.pool_critic import BipartitePool, CentralNodeUpdate
from ..nets.tree_branching import TreeGenerator
from ..trainer import Phase, TrainOptions
from .base import ShowerGenerator, ShowerRun
from .pipeline import PipelineSteps, sample_in_batches

__all__ = ["DeepTreeShowers", "GatedCondition", "GatedTreeGenerator", "RaggedPoolCritic", "ShowerScaler",
           "knn_distance", "cdf_distance"]

#: the losses are recorded as means over this many steps
RECORD_EVERY = 50


# --- building blocks ----------------------------------------------------------------------------
class GatedCondition(nn.Module):
    """GCU(x, r) = a * LeakyReLU_0.1(b), (a | b) = W_j(W_x x + W_r r); the three linear maps with
    bias and spectral norm (``models/common/gated_cond.py``).  x (..., x_dim), r (..., r_dim)."""

    def __init__(self, x_dim: int, r_dim: int, out_dim: int):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.out_dim = out_dim
        self.x_tf, self.r_tf = sn(nn.Linear(x_dim, 2 * out_dim)), sn(nn.Linear(r_dim, 2 * out_dim))
        self.joined = sn(nn.Linear(2 * out_dim, 2 * out_dim))

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        a, b = self.joined(self.x_tf(x) + self.r_tf(r)).split(self.out_dim, -1)
        return a * F.leaky_relu(b, 0.1)


class FixedWidthFFN(FFN):
    """``jets.ffn.FFN`` with hidden width exactly ``hidden`` (the reference's FFN given
    ``hidden_layer_size``, as the critic's ``ffn_param`` does; pcbench's takes max(hidden, in, out))."""

    def __init__(self, n_in: int, n_out: int, norm: str = "batch", hidden: int = 100, layers: int = 3,
                 dropout: float = 0.0, bias: bool = False):
        super().__init__(hidden, hidden, norm, hidden, layers, dropout, bias)
        linears = [i for i, m in enumerate(self.net) if isinstance(m, nn.Linear)]
        ends = {linears[0]: (n_in, hidden if layers > 1 else n_out), linears[-1]: (hidden if layers > 1 else n_in, n_out)}
        for i, (a, b) in ends.items():
            lin = nn.Linear(a, b, bias=bias)
            self.net[i] = nn.utils.parametrizations.spectral_norm(lin) if norm == "spectral" else lin


def _activated(ffn: FFN, batch_norm: bool, dropout: float = 0.0) -> nn.Sequential:
    """``ffn`` followed by [dropout], [batch norm] and LeakyReLU(0.1): the reference's FFN without
    ``final_linear`` (pcbench's FFN always ends linear)."""
    mods: list[nn.Module] = [ffn] + ([nn.Dropout(dropout)] if dropout else [])
    return nn.Sequential(*mods, *([BatchStatNorm()] if batch_norm else []), nn.LeakyReLU(0.1))


class _GatedLevel(nn.Module):
    def __init__(self, width: int, next_width: int, branches: int, n_cond: int, n_global: int,
                 hidden: int, layers: int, gin_hidden: int):
        super().__init__()
        ffn = {"hidden": hidden, "layers": layers}
        pre = harmonic_width(width, n_global)
        ctx = n_cond + n_global
        self.branches, self.next_width = branches, next_width
        self.pre = _activated(FFN(width, pre, **ffn), batch_norm=True)
        self.post = _activated(FFN(pre + n_cond, n_global, **ffn), batch_norm=True)
        self.cond_gcu, self.parent_gcu = GatedCondition(width, ctx, width), GatedCondition(width, width, width)
        self.proj = FFN(width, width * branches, **ffn)
        self.reduce = FFN(width, next_width, **ffn)
        self.gin_cond = GatedCondition(next_width, ctx, next_width)
        self.gin = FFN(next_width, next_width, hidden=gin_hidden, layers=layers)
        self.gin_skip = GatedCondition(next_width, next_width, next_width)


class GatedTreeGenerator(TreeGenerator):
    """The submission's tree generator (module docstring): the jet ``TreeGenerator``'s tree with
    gated conditioning (``gated_cond`` in the branching and in the ancestor GIN) on
    ``n_cond`` shower conditions.  z (B, F_0), cond (B, n_cond) -> all leaves (B, prod b, F_L)."""

    def __init__(self, branches: list[int], widths: list[int], n_cond: int = 3, n_global: int = 10,
                 hidden: int = 100, layers: int = 3, gin_hidden: int = 100):
        nn.Module.__init__(self)
        if len(widths) != len(branches) + 1:
            raise ConfigError(f"widths {widths}: expected {len(branches) + 1} levels for branches {branches}")
        self.branches, self.widths = list(branches), list(widths)
        self.num_leaves = int(np.prod(branches))
        self.levels = nn.ModuleList(_GatedLevel(widths[i], widths[i + 1], b, n_cond, n_global, hidden, layers, gin_hidden)
                                    for i, b in enumerate(branches))

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b = z.shape[0]
        tree = [z[:, None, :]]
        for level, nb in zip(self.levels, self.branches):
            parents = tree[-1]
            g = level.post(torch.cat([level.pre(parents).sum(1), cond], 1))
            ctx = torch.cat([cond, g], 1)[:, None]  # (B, 1, n_cond + G)
            k, f = parents.shape[1], parents.shape[2]
            p = parents + level.cond_gcu(parents, ctx.expand(-1, k, -1))
            children = level.proj(p).reshape(b, k * nb, f)
            children = children + level.parent_gcu(children, p.repeat_interleave(nb, dim=1))
            tree = [t[..., :level.next_width] for t in tree] + [level.reduce(children)]
            tree = self._gated_gin(tree, ctx, level)
        return tree[-1]

    def _gated_gin(self, tree: list[torch.Tensor], ctx: torch.Tensor, level: _GatedLevel) -> list[torch.Tensor]:
        """h = x + GCU(x, ctx); x' = GIN(h_v + sum of h over v's ancestors); x' + GCU(x', h), on
        every node of every level at once."""
        sizes = [t.shape[1] for t in tree]
        x = torch.cat(tree, 1)
        h = x + level.gin_cond(x, ctx.expand(-1, x.shape[1], -1))
        hs = h.split(sizes, 1)
        above = torch.zeros_like(hs[0])
        summed = []
        for i, hi in enumerate(hs):
            if i:
                above = (above + hs[i - 1]).repeat_interleave(self.branches[i - 1], dim=1)
            summed.append(hi + above)
        out = level.gin(torch.cat(summed, 1))
        out = out + level.gin_skip(out, h)
        return list(out.split(sizes, 1))


# --- the critic on ragged clouds -----------------------------------------------------------------
def segment_readout(x: torch.Tensor, batch: torch.Tensor, n: int) -> torch.Tensor:
    """x (N, F) of ``n`` clouds (``batch`` (N,) their index) -> (n, 1 + 3F): [count, sum, mean
    absolute deviation, max] per cloud (``pool_critic.readout`` for clouds of unequal size)."""
    f = x.shape[1]
    count = torch.zeros(n, dtype=x.dtype, device=x.device).index_add_(0, batch, torch.ones_like(batch, dtype=x.dtype))
    total = torch.zeros(n, f, dtype=x.dtype, device=x.device).index_add(0, batch, x)
    mean = total / count.clamp(min=1)[:, None]
    mad = torch.zeros(n, f, dtype=x.dtype, device=x.device).index_add(0, batch, (x - mean[batch]).abs())
    mad = mad / count.clamp(min=1)[:, None]
    top = torch.full((n, f), -torch.inf, dtype=x.dtype, device=x.device)
    top = top.scatter_reduce(0, batch[:, None].expand(-1, f), x, "amax", include_self=False)
    return torch.cat([count[:, None], total, mad, top], 1)


class RaggedCentralNodeUpdate(CentralNodeUpdate):
    """``pool_critic.CentralNodeUpdate`` on ragged clouds: x + Out(h | Glob(R(h))), h = Emb(x);
    Emb and Glob end in dropout + LeakyReLU as the reference's (``disc_deeptree.py`` L147-173)."""

    def __init__(self, features: int, latent: int, n_global: int, **ffn: Any):
        nn.Module.__init__(self)
        drop = ffn.get("dropout", 0.0)
        self.emb = _activated(FixedWidthFFN(features, latent, **ffn), False, drop)
        self.glob = _activated(FixedWidthFFN(1 + 3 * latent, n_global, **ffn), False, drop)
        self.out = FixedWidthFFN(latent + n_global, features, **ffn)

    def forward(self, x: torch.Tensor, batch: torch.Tensor, n: int) -> torch.Tensor:  # type: ignore[override]
        h = self.emb(x)
        g = self.glob(segment_readout(h, batch, n))
        return x + self.out(torch.cat([h, g[batch]], 1))


class RaggedBipartitePool(BipartitePool):
    """``pool_critic.BipartitePool`` (GATv2 attention of learned seeds onto a cloud's nodes) on
    ragged clouds, spectral norm on both linear maps (``bipart_param.spectral_norm``):
    (N, D) nodes of n clouds -> (n * seeds, D), the seeds of cloud i at rows i * seeds ..."""

    def __init__(self, dim: int, seeds: int, heads: int):
        super().__init__(dim, seeds, heads)
        sn = nn.utils.parametrizations.spectral_norm
        self.lin_l, self.lin_r = sn(self.lin_l), sn(self.lin_r)

    def forward(self, x: torch.Tensor, batch: torch.Tensor, n: int) -> torch.Tensor:  # type: ignore[override]
        m = self.seeds.shape[0]
        xl = self.lin_l(x).view(-1, 1, self.heads, self.out)  # (N, 1, H, C)
        sr = self.lin_r(self.seeds).view(1, m, self.heads, self.out)
        logits = (F.leaky_relu(xl - sr, 0.2) * self.att).sum(-1)  # (N, m, H)
        idx = batch[:, None, None].expand_as(logits)
        top = torch.full((n, m, self.heads), -torch.inf, dtype=x.dtype, device=x.device)
        top = top.scatter_reduce(0, idx, logits.detach(), "amax", include_self=False)
        w = torch.exp(logits - top[batch])
        norm = torch.zeros_like(top).index_add(0, batch, w)
        alpha = w / norm[batch]
        pooled = torch.zeros(n, m, self.heads, self.out, dtype=x.dtype, device=x.device)
        pooled = pooled.index_add(0, batch, alpha[..., None] * xl)
        return pooled.reshape(n * m, -1) + self.bias


class _Head(nn.Module):
    """updates x <- U(x), then Lin(R(x) | condition) -> one score per cloud (``TSumTDisc``)."""

    def __init__(self, features: int, n_cond: int, updates: int, n_global: int, **ffn: Any):
        super().__init__()
        self.updates = nn.ModuleList(RaggedCentralNodeUpdate(features, features, n_global, **ffn) for _ in range(updates))
        self.lin = FixedWidthFFN(1 + 3 * features + n_cond, 1, **ffn)

    def forward(self, x, batch, n, cond):
        for u in self.updates:
            x = u(x, batch, n)
        return self.lin(torch.cat([segment_readout(x, batch, n), cond], 1))[:, 0]


class RaggedPoolCritic(nn.Module):
    """DeepTreeGANv2's pooling critic (``pool_critic.PoolCritic``) for clouds of unequal size, in
    the submission's sizes: scores (len(pool_nodes) + 1, B) and the latents.

    Args:
        features: per point (4); n_cond: conditions (3).
        pool_nodes: seeds per cloud after each pooling (30, 6, 1).
        per_head: features per attention head (10); heads: attention heads (16).
        latent, n_global: the embedding's central node update (40, 40); the heads' global (40).
        updates: central node updates per head (2); dropout: in the spectral-norm MLPs (0.3).
    """

    def __init__(self, features: int, n_cond: int, pool_nodes: list[int], per_head: int = 10, heads: int = 16,
                 latent: int = 40, n_global: int = 40, updates: int = 2, dropout: float = 0.3, hidden: int = 100,
                 layers: int = 3):
        super().__init__()
        dim = per_head * heads
        sn = {"norm": "spectral", "dropout": dropout, "hidden": hidden, "layers": layers}
        widths = [features] + [dim] * len(pool_nodes)
        self.pool_nodes = list(pool_nodes)
        self.heads = nn.ModuleList(_Head(w, n_cond, updates, n_global, **sn) for w in widths)
        self.embed_in = nn.ModuleList(FixedWidthFFN(w, dim, norm="batch", hidden=hidden, layers=layers, dropout=dropout,
                                                    bias=True) for w in widths[:-1])
        for ffn in self.embed_in:  # the reference's "snbn": spectral norm and batch statistics
            for i, mod in enumerate(ffn.net):
                if isinstance(mod, nn.Linear):
                    ffn.net[i] = nn.utils.parametrizations.spectral_norm(mod)
        self.embed_cnu = nn.ModuleList(RaggedCentralNodeUpdate(dim, latent, latent, **sn) for _ in widths[:-1])
        self.pools = nn.ModuleList(RaggedBipartitePool(dim, m, heads) for m in pool_nodes)

    def forward(self, x: torch.Tensor, batch: torch.Tensor, n: int, cond: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (N, F) points of ``n`` clouds (``batch`` (N,)), cond (n, n_cond) -> scores (L + 1, n)."""
        scores, latents = [], []
        for i, head in enumerate(self.heads):
            scores.append(head(x, batch, n, cond))
            if i < len(self.pools):
                x = self.embed_in[i](x)
                x = self.embed_cnu[i](x, batch, n)
                latents.append(x)
                x = self.pools[i](x, batch, n)
                batch = torch.arange(n, device=x.device).repeat_interleave(self.pool_nodes[i])
                latents.append(x)
        return torch.stack(scores), latents


# --- the generator's auxiliary loss --------------------------------------------------------------
def cdf_distance(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sqrt(integral (F_u - F_v)^2 dx) of two 1-D samples (scipy's ``_cdf_distance`` with p = 2, as
    ``caloutils.distances.energy_distance``); differentiable in the values."""
    both = torch.sort(torch.cat([u, v])).values
    deltas = both.diff()
    fu = torch.searchsorted(torch.sort(u).values.detach(), both[:-1].detach(), right=True).to(u.dtype) / len(u)
    fv = torch.searchsorted(torch.sort(v).values.detach(), both[:-1].detach(), right=True).to(u.dtype) / len(v)
    return torch.sqrt(((fu - fv) ** 2 * deltas).sum())


def _nn_deltas(x: torch.Tensor, batch: torch.Tensor, n: int) -> torch.Tensor:
    """Per point, the mean |x - x_nn| over features to its nearest other point of the same cloud
    (Euclidean; ``knn_graph(k=1, loop=False)``; found with a k-d tree, differentiable in x); a
    lone point gets 0."""
    from scipy.spatial import cKDTree

    xs, bs = x.detach().cpu().numpy().astype(np.float64), batch.cpu().numpy()
    nearest = np.arange(len(xs))
    for i in range(n):
        rows = np.flatnonzero(bs == i)
        if len(rows) < 2:
            continue
        _, idx = cKDTree(xs[rows]).query(xs[rows], k=2)
        own = idx[:, 0] == np.arange(len(rows))  # a duplicate point may come first: take it
        nearest[rows] = rows[np.where(own, idx[:, 1], idx[:, 0])]
    return (x - x[torch.as_tensor(nearest, device=x.device)]).abs().mean(1)


def knn_distance(real: torch.Tensor, real_batch: torch.Tensor, fake: torch.Tensor, fake_batch: torch.Tensor,
                 n: int) -> torch.Tensor:
    """The reference's ``knndist`` loss (``models/loss/knndist.py``): for the energy column and for
    the three positions, each point's nearest-neighbour distance in its cloud; real and fake
    standardised with the real mean and sd; the 1-D CDF distance between them; summed."""
    total = fake.new_zeros(())
    for cols in ([0], [1, 2, 3]):
        with torch.no_grad():
            r = _nn_deltas(real[:, cols], real_batch, n)
        f = _nn_deltas(fake[:, cols], fake_batch, n)
        mean, sd = r.mean(), r.std().clamp(min=1e-8)
        total = total + cdf_distance((r - mean) / sd, (f - mean) / sd)
    return total


# --- scaling -------------------------------------------------------------------------------------
class ShowerScaler:
    """Points and conditions to the model's space and back (``datasets/calochallange/scaler.py``,
    ``io/dequantscaler.py``): E [MeV] -> Box-Cox -> standardise; voxel index k -> (k + U(0, 1)) /
    bins -> logit -> standardise; conditions (E_inc, n_hits + U, E_inc / n_hits) -> normal scores
    through their training quantiles (``QuantileTransformer(output_distribution="normal")``)."""

    QUANTILES = 1000
    BOUND = 1e-7  # sklearn's clip of the quantile's probabilities

    def __init__(self, state: dict[str, Any]):
        self.state = state
        self.bins = np.asarray(state["bins"], np.float64)

    @classmethod
    def fit(cls, energy: np.ndarray, index: np.ndarray, cond_raw: np.ndarray, bins: np.ndarray,
            rng: np.random.Generator) -> ShowerScaler:
        """energy (M,) point energies [MeV], index (M, 3) dequantised voxel indices, cond_raw (N, 3)."""
        e = energy if len(energy) <= 1_000_000 else rng.choice(energy, 1_000_000, replace=False)
        lam = float(stats.boxcox_normmax(e.astype(np.float64), method="mle"))
        y = special.boxcox(e.astype(np.float64), lam)
        u = special.logit(index / bins)
        q = np.linspace(0, 1, min(cls.QUANTILES, len(cond_raw)))
        return cls({"lambda": lam, "e_mean": float(y.mean()), "e_sd": float(y.std()), "e_max": float(y.max()),
                    "bins": list(map(float, bins)),
                    "pos_mean": u.mean(0).tolist(), "pos_sd": u.std(0).tolist(),
                    "cond_quantiles": np.quantile(cond_raw, q, axis=0).T.tolist()})

    def points_to_model(self, energy: np.ndarray, index: np.ndarray) -> np.ndarray:
        s = self.state
        e = (special.boxcox(energy.astype(np.float64), s["lambda"]) - s["e_mean"]) / s["e_sd"]
        u = (special.logit(index / self.bins) - np.asarray(s["pos_mean"])) / np.asarray(s["pos_sd"])
        return np.column_stack([e, u]).astype(np.float32)

    def points_from_model(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (M, 4) -> energies [MeV] (M,), voxel indices (M, 3) (floor, clipped to the bins); the
        energies clipped at the largest training point energy (the inverse Box-Cox of a generated
        outlier would otherwise reach 1e7 MeV and more; scalers saved without ``e_max`` do not clip)."""
        s, lam = self.state, self.state["lambda"]
        y = np.maximum(x[:, 0].astype(np.float64) * s["e_sd"] + s["e_mean"], -19.0)
        y = np.minimum(y, s.get("e_max", np.inf))
        if lam > 0:
            y = np.maximum(y, -1 / lam + 1e-12)
        elif lam < 0:
            y = np.minimum(y, -1 / lam - 1e-12)
        energy = special.inv_boxcox(y, lam)
        u = x[:, 1:].astype(np.float64) * np.asarray(s["pos_sd"]) + np.asarray(s["pos_mean"])
        index = np.clip(np.floor(special.expit(u) * self.bins), 0, self.bins - 1).astype(np.int64)
        return energy, index

    def conditions(self, cond_raw: np.ndarray) -> np.ndarray:
        q = np.asarray(self.state["cond_quantiles"])
        p = np.linspace(0, 1, q.shape[1])
        cols = [np.interp(cond_raw[:, j], q[j], p) for j in range(q.shape[0])]
        return special.ndtri(np.clip(np.column_stack(cols), self.BOUND, 1 - self.BOUND)).astype(np.float32)


def _raw_conditions(e_inc: np.ndarray, n_hits: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(E_inc [MeV], n_hits + U(0, 1), E_inc / n_hits) per shower (the reference's y)."""
    n = np.asarray(n_hits, np.float64)
    return np.column_stack([e_inc, n + noise, e_inc / np.maximum(n, 1)])


# --- the generator -------------------------------------------------------------------------------
class DeepTreeShowers(ShowerGenerator):
    """DeepTree for showers; ``full`` is the data-set-2 submission's config (9978dba), ``small``
    trains on 2 CPU cores.  Training: GAN steps (a critic step each, a generator step every
    ``d_steps``)."""

    name = "deeptree-showers"
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"branches": [2, 3, 4, 5, 5, 10], "widths": [64, 25, 15, 10, 8, 6, 4], "n_global": 10, "hidden": 100,
                 "layers": 3, "gin_hidden": 100, "critic_nodes": [30, 6, 1], "critic_per_head": 10, "critic_heads": 16,
                 "critic_latent": 40, "critic_global": 40, "critic_updates": 2, "critic_dropout": 0.3,
                 "critic_hidden": 100, "knn_weight": 10.0, "d_steps": 5, "lr_g": 1e-5, "lr_d": 3e-5,
                 "weight_decay": 1e-4, "batch_size": 50, "steps": 40_000_000, "n_hits_neighbours": 20,
                 "grid": "calochallenge-2"},
        "small": {"branches": [2, 3, 4, 5, 5, 10], "widths": [32, 16, 12, 8, 6, 5, 4], "n_global": 4, "hidden": 32,
                  "layers": 2, "gin_hidden": 32, "critic_nodes": [10, 3, 1], "critic_per_head": 4, "critic_heads": 4,
                  "critic_latent": 16, "critic_global": 16, "critic_updates": 1, "critic_dropout": 0.0,
                  "critic_hidden": 32, "knn_weight": 10.0, "d_steps": 2, "lr_g": 1e-4, "lr_d": 3e-4,
                  "weight_decay": 1e-4, "batch_size": 8, "steps": 1500, "n_hits_neighbours": 20,
                  "grid": "calochallenge-2"},
    }

    def __init__(self, config: dict[str, Any], scaler: ShowerScaler, table: dict[str, list]):
        super().__init__()
        c = self.config = dict(config)
        self.scaler, self.table = scaler, table  # table: the training showers' E_inc [MeV] and n_hits, by E_inc
        self.gen = GatedTreeGenerator(c["branches"], c["widths"], 3, c["n_global"], c["hidden"], c["layers"], c["gin_hidden"])
        if c["widths"][-1] != 4:
            raise ConfigError(f"deeptree-showers: widths {c['widths']} must end in 4 (E, z, alpha, r)")
        self.disc = RaggedPoolCritic(4, 3, c["critic_nodes"], c["critic_per_head"], c["critic_heads"], c["critic_latent"],
                                     c["critic_global"], c["critic_updates"], c["critic_dropout"], c["critic_hidden"],
                                     c["layers"])

    # --- geometry ------------------------------------------------------------------------------
    @staticmethod
    def _geometry(name: str) -> CylindricalGeometry:
        g = get_geometry(name)
        if not isinstance(g, CylindricalGeometry) or g.common_binning is None \
                or len(g.relevant_layers) != len(g.layers):
            raise ConfigError(f"deeptree-showers: grid {name!r}; expected a CaloChallenge geometry with the same "
                              "alpha and r bins in every layer (calochallenge-2, calochallenge-3): train on its voxels")
        return g

    @property
    def bins(self) -> np.ndarray:
        return self._bins(self.config["grid"])

    @classmethod
    def _bins(cls, grid: str) -> np.ndarray:
        """(layers, alpha bins, r bins) of the geometry."""
        g = cls._geometry(grid)
        return np.array([g.n_layers, g.common_binning.n_alpha, g.common_binning.n_r], np.float64)

    @classmethod
    def _indices(cls, grid: str, points: np.ndarray) -> np.ndarray:
        """(M, 3) voxel (layer, alpha, r) indices of points (M, >=3) in the point convention."""
        g = cls._geometry(grid)
        cell = g.cell_index(np.ascontiguousarray(points[:, :3], dtype=np.float64))
        t = g.voxel_table
        cell = np.maximum(cell, 0)
        return np.column_stack([t["layer"][cell], t["alpha_bin"][cell], t["r_bin"][cell]]).astype(np.float64)

    # --- construction and checkpoints ----------------------------------------------------------
    @classmethod
    def build(cls, config: dict[str, Any], data: ShowerPointSet, opts: TrainOptions,
              teacher: ShowerGenerator | None = None, log_point_energy: bool = False) -> DeepTreeShowers:
        cls._geometry(config["grid"])
        n_hits = data.mask.sum(1)
        leaves = int(np.prod(config["branches"]))
        if n_hits.max() > leaves:
            raise ConfigError(f"deeptree-showers: a training shower has {int(n_hits.max())} points, more than the "
                              f"tree's {leaves} leaves (branches {config['branches']})")
        rng = np.random.default_rng([opts.seed, 7])
        pts = data.points[data.mask]
        index = cls._indices(config["grid"], pts) + rng.uniform(1e-6, 1 - 1e-6, (len(pts), 3))
        raw = _raw_conditions(data.incident_energy.astype(np.float64), n_hits, rng.uniform(1e-6, 1 - 1e-6, len(n_hits)))
        scaler = ShowerScaler.fit(pts[:, 3].astype(np.float64), index, raw, cls._bins(config["grid"]), rng)
        order = np.argsort(data.incident_energy, kind="stable")
        table = {"e_inc": data.incident_energy[order].astype(np.float64).tolist(), "n_hits": n_hits[order].tolist()}
        return cls(config, scaler, table)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> DeepTreeShowers:
        return cls(payload["config"], ShowerScaler(payload["scaler"]), payload["table"])

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "scaler": self.scaler.state, "table": self.table}

    def to_model(self, data: ShowerPointSet, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The training showers in the model's space: (N, P, 4) float32 (padded points 0) and the
        scaled conditions (N, 3); the dequantisation noise drawn once (the reference froze it)."""
        rng = np.random.default_rng([seed, 8])
        n_hits = data.mask.sum(1)
        pts = data.points[data.mask]
        index = self._indices(self.config["grid"], pts) + rng.uniform(1e-6, 1 - 1e-6, (len(pts), 3))
        x = np.zeros(data.points.shape, np.float32)
        x[data.mask] = self.scaler.points_to_model(pts[:, 3], index)
        raw = _raw_conditions(data.incident_energy.astype(np.float64), n_hits, rng.uniform(1e-6, 1 - 1e-6, len(n_hits)))
        return x, self.scaler.conditions(raw)

    # --- training ------------------------------------------------------------------------------
    def initial_state(self) -> dict[str, Any]:
        return {"step": 0, "history": []}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {k: torch.optim.Adam(getattr(self, k).parameters(), lr=c[f"lr_{k[0]}"], betas=(0.9, 0.999),
                                    weight_decay=c["weight_decay"]) for k in ("gen", "disc")}

    def trained_parts(self) -> list[tuple[nn.Module, str]]:
        return [(self, "gen"), (self, "disc")]

    def untrained(self, state: dict[str, Any]) -> list[str]:
        s = self.config["steps"]
        return [] if state["step"] >= s else [f"GAN ({state['step']} of {s} steps)"]

    @staticmethod
    def _flat(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, P, F), (B, P) -> the real points (N, F) and their shower index (N,)."""
        rows = torch.arange(len(x), device=x.device)[:, None].expand_as(mask)
        return x[mask], rows[mask]

    def _fake(self, cond: torch.Tensor, n_hits: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Generated showers, the first n_hits leaves each, flat: (N, 4), (N,)."""
        z = torch.randn(len(cond), self.config["widths"][0], generator=gen, device=cond.device)
        out = self.gen(z, cond)
        keep = torch.arange(out.shape[1], device=out.device)[None] < n_hits[:, None]
        return self._flat(out, keep)

    def gan_losses(self, real: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor, gen: torch.Generator,
                   optimizers: dict[str, torch.optim.Optimizer], train_gen: bool) -> dict[str, float]:
        """One critic step (hinge, summed over the heads) and, if ``train_gen``, one generator step
        (hinge + knn_weight x knn_distance) on a fresh sample; real (B, P, 4), mask (B, P)."""
        b = len(real)
        n_hits = mask.sum(1)
        xr, br = self._flat(real, mask)
        with torch.no_grad():
            xf, bf = self._fake(cond, n_hits, gen)
        s_real, _ = self.disc(xr, br, b, cond)
        s_fake, _ = self.disc(xf, bf, b, cond)
        loss_d = (torch.relu(1 - s_real).mean(1) + torch.relu(1 + s_fake).mean(1)).sum()
        optimizers["disc"].zero_grad()
        loss_d.backward()
        optimizers["disc"].step()
        out = {"loss_d": loss_d.item()}
        if train_gen:
            xf, bf = self._fake(cond, n_hits, gen)
            s_fake, _ = self.disc(xf, bf, b, cond)
            adv = -s_fake.mean(1).sum()
            knn = knn_distance(xr, br, xf, bf, b) if self.config["knn_weight"] else adv * 0
            loss_g = adv + self.config["knn_weight"] * knn
            optimizers["gen"].zero_grad()
            loss_g.backward()
            optimizers["gen"].step()
            out.update({"loss_g": adv.item(), "knn": knn.item()})
        return out

    def phases(self, run: ShowerRun) -> list[Phase]:
        c, state = self.config, run.state
        x_all, cond_all = self.to_model(run.data, run.opts.seed)
        width = int(run.data.mask.sum(1).max())
        x_all, mask_all = x_all[:, :width], run.data.mask[:, :width]
        gen = torch.Generator(device=run.device)
        window: dict[str, list[float]] = {}

        def step() -> str | None:
            k = state["step"]
            gen.manual_seed(run.opts.seed * 1_000_003 + k * run.world + run.rank)
            rng = np.random.default_rng([run.opts.seed, 3, k, run.rank])
            rows = rng.integers(0, len(x_all), c["batch_size"])
            m = mask_all[rows]
            used = int(m.sum(1).max())
            xb = torch.as_tensor(x_all[rows, :used]).to(run.device)
            mb = torch.as_tensor(m[:, :used]).to(run.device)
            cb = torch.as_tensor(cond_all[rows]).to(run.device)
            losses = self.gan_losses(xb, mb, cb, gen, run.optimizers, k % c["d_steps"] == 0)
            state["step"] = k + 1
            for key, v in losses.items():
                window.setdefault(key, []).append(v)
            if state["step"] % RECORD_EVERY and state["step"] != c["steps"]:
                return None
            means = {key: float(np.mean(v)) for key, v in window.items()}
            state["history"].append({"phase": "gan", "step": state["step"], **means})
            window.clear()
            return " ".join(f"{key} {v:.4g}" for key, v in means.items())

        every = 500 if run.opts.checkpoint_every is None else run.opts.checkpoint_every
        return [Phase("GAN", c["steps"], "steps", lambda: state["step"], step, every)]

    # --- sampling ------------------------------------------------------------------------------
    def draw_n_hits(self, e_inc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """For each E_inc [MeV], the n_hits of a random one of the ``n_hits_neighbours`` training
        showers nearest in E_inc."""
        e, n = np.asarray(self.table["e_inc"]), np.asarray(self.table["n_hits"], np.int64)
        k = min(self.config["n_hits_neighbours"], len(e))
        lo = np.clip(np.searchsorted(e, e_inc) - k // 2, 0, len(e) - k)
        return n[lo + rng.integers(0, k, len(e_inc))]

    def sample(self, e_inc_mev: np.ndarray, seed: int = 0, batch_size: int = 64,
               steps: PipelineSteps = PipelineSteps(),
               progress: Callable[[int], None] | None = None) -> ShowerPointSet | VoxelShowerSet:
        """Showers at the given incident energies [MeV] (``steps``: only ``project`` applies).  The
        generator normalises with its batch's statistics, so every call generates at least the
        training batch size of showers (a smaller request is filled up with showers it drops)."""
        e_inc = np.asarray(e_inc_mev, np.float64)
        return sample_in_batches(e_inc, batch_size, seed, self._sample_batch, self.grid, steps.project, progress)

    @torch.no_grad()
    def _sample_batch(self, e_inc: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        b = len(e_inc)
        fill = max(self.config["batch_size"] - b, 0)
        e_all = np.concatenate([e_inc, e_inc[rng.integers(0, b, fill)]])
        n_hits = self.draw_n_hits(e_all, rng)
        cond = self.scaler.conditions(_raw_conditions(e_all, n_hits, rng.uniform(1e-6, 1 - 1e-6, len(e_all))))
        dev = self.device
        gen = torch.Generator(device=dev).manual_seed(seed)
        z = torch.randn(len(e_all), self.config["widths"][0], generator=gen, device=dev)
        training = self.gen.training
        self.gen.eval()  # the spectral norms' power iteration held: a sample does not change the model
        try:
            x = self.gen(z, torch.as_tensor(cond, device=dev))[:b].cpu().numpy()
        finally:
            self.gen.train(training)
        n_hits = n_hits[:b]
        width = int(n_hits.max(initial=1))
        mask = np.arange(width)[None] < n_hits[:, None]
        energy, index = self.scaler.points_from_model(x[:, :width][mask])
        bins = self.bins.astype(np.int64)
        roll = rng.integers(0, bins[1], b)  # a random rotation in alpha per shower (postprocess.py L18-27)
        rows = np.repeat(np.arange(b), mask.sum(1))
        index[:, 1] = (index[:, 1] + roll[rows]) % bins[1]
        g = self._geometry(self.config["grid"])
        cell = g.layer_offsets[index[:, 0]] + index[:, 1] * bins[2] + index[:, 2]
        pts = np.zeros((b, width, 4), np.float32)
        pts[mask, :3] = g.cell_centres[cell]
        pts[mask, 3] = energy
        return pts, mask
