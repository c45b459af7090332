"""The trivial shower baseline: points drawn independently from the training marginals given E_inc.

The training showers are binned in incident energy (``n_bins`` quantile bins); a shower at E_inc
takes the number of points of a random training shower of its bin, and that many points drawn
independently (with replacement) from the pooled points of the bin's training showers.  It has
the right marginals of single points and of the point count, and none of the correlations
within a shower: what every generator must beat.
"""

from __future__ import annotations

from collections.abc import Callable

from typing import Any

import numpy as np
import torch

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ..trainer import TrainOptions
from .base import ShowerGenerator
from .pipeline import PipelineSteps, project_showers

__all__ = ["IndependentShowerPoints"]


class IndependentShowerPoints(ShowerGenerator):
    """Fitted when built (no training phase)."""

    name = "shower-baseline"
    fitted = True
    configs: dict[str, dict[str, Any]] = {"small": {"n_bins": 10, "pool_per_bin": 200_000, "grid": "ild-ecal"},
                                          "full": {"n_bins": 20, "pool_per_bin": 2_000_000, "grid": "ild-ecal"}}

    def __init__(self, config: dict[str, Any], data: ShowerPointSet | None = None, seed: int = 0):
        super().__init__()
        self.config = dict(config)
        self.register_buffer("edges", torch.zeros(config["n_bins"] + 1, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(0, dtype=torch.int64))       # training point counts
        self.register_buffer("count_bin", torch.zeros(0, dtype=torch.int64))    # their energy bins
        self.register_buffer("pool", torch.zeros(0, 4))                         # pooled points
        self.register_buffer("pool_bin", torch.zeros(0, dtype=torch.int64))
        if data is not None:
            self.fit(data, seed)

    def fit(self, data: ShowerPointSet, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        e = data.incident_energy.astype(np.float64)
        edges = np.quantile(e, np.linspace(0, 1, self.config["n_bins"] + 1))
        edges[0], edges[-1] = -np.inf, np.inf
        b = np.clip(np.searchsorted(edges, e, side="right") - 1, 0, self.config["n_bins"] - 1)
        pools, pool_bins = [], []
        for k in range(self.config["n_bins"]):
            pts = data.points[b == k][data.mask[b == k]]
            take = rng.choice(len(pts), min(len(pts), self.config["pool_per_bin"]), replace=False)
            pools.append(pts[np.sort(take)])
            pool_bins.append(np.full(len(take), k))
        self.edges = torch.as_tensor(edges)
        self.counts = torch.as_tensor(data.mask.sum(1).astype(np.int64))
        self.count_bin = torch.as_tensor(b.astype(np.int64))
        self.pool = torch.as_tensor(np.concatenate(pools), dtype=torch.float32)
        self.pool_bin = torch.as_tensor(np.concatenate(pool_bins).astype(np.int64))

    @classmethod
    def build(cls, config: dict[str, Any], data: ShowerPointSet, opts: TrainOptions,
              teacher: ShowerGenerator | None = None, log_point_energy: bool = False) -> IndependentShowerPoints:
        return cls(config, data, opts.seed)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> IndependentShowerPoints:
        return cls(payload["config"])

    def sample(self, e_inc_mev: np.ndarray, seed: int = 0, batch_size: int = 64,
               steps: PipelineSteps = PipelineSteps(), progress: Callable[[int], None] | None = None
               ) -> ShowerPointSet | VoxelShowerSet:
        """Showers at the given incident energies [MeV] (``steps``: only ``project`` applies);
        ``progress`` is called once with their number (the baseline draws them all at once)."""
        rng = np.random.default_rng(seed)
        e = np.asarray(e_inc_mev, np.float64)
        b = np.clip(np.searchsorted(self.edges.numpy(), e, side="right") - 1, 0, self.config["n_bins"] - 1)
        counts, count_bin = self.counts.numpy(), self.count_bin.numpy()
        pool, pool_bin = self.pool.numpy(), self.pool_bin.numpy()
        n = np.array([counts[count_bin == k][rng.integers(0, (count_bin == k).sum())] for k in b])
        pts = np.zeros((len(e), int(n.max(initial=1)), 4), np.float32)
        for i, (k, m) in enumerate(zip(b, n)):
            idx = np.flatnonzero(pool_bin == k)
            pts[i, :m] = pool[idx[rng.integers(0, len(idx), m)]]
        out = ShowerPointSet(pts, pts[..., 3] > 0, e.astype(np.float32), {"y_unit": "mm"})
        if progress is not None:
            progress(len(e))
        return project_showers(out, self.grid) if steps.project else out
