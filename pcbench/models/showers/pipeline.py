"""The CaloClouds sampling pipeline and its calibrations (CaloClouds II, arXiv:2309.05704; code
``FLC-QU-hep/CaloClouds-2``, ``utils/gen_utils.py``):

ShowerFlow -> (occupancy calibration of the number of points) -> points from the point model ->
post-diffusion calibrations (points per layer by depth order, energy per layer, centre of gravity
in x and z) -> optional projection onto the cells.  Every step can be switched off
(``PipelineSteps``) for studies.  Points are (x, y, z, E) in the geometry's point convention
(mm on a layered grid; x, y in mm and z the layer id on CaloChallenge voxels) and MeV; the
projection gives cell hits on a layered grid and dense voxels on CaloChallenge geometries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...geometry import Geometry, LayeredGrid, layer_stack, project

__all__ = ["PipelineSteps", "OccupancyCalibration", "assign_layers", "calibrate_layer_energy", "calibrate_cog",
           "project_showers", "pipeline_attrs", "sample_in_batches", "batch_seed"]


@dataclass(frozen=True)
class PipelineSteps:
    """Which steps of the pipeline run (all, as published, by default)."""

    occupancy: bool = True       # scale the flow's number of points so that cell hits come out right
    layers: bool = True          # points per layer from the flow, assigned by depth order
    layer_energy: bool = True    # energy per layer from the flow
    cog: bool = True             # centre of gravity in x and z from the flow
    project: bool = False        # cells instead of points: hits on a grid, voxels on CaloChallenge


@dataclass(frozen=True)
class OccupancyCalibration:
    """Cubic polynomials: real points -> real cell hits, and generated hits -> generated points.

    The number of points the flow asks for is replaced by the number that makes the point model
    produce as many cell hits as real showers with that many points have:
    n' = gen_hits_to_points(real_points_to_hits(n)).
    """

    real_points_to_hits: tuple[float, ...]
    gen_hits_to_points: tuple[float, ...]

    @staticmethod
    def fit_cubic(x: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
        return tuple(float(c) for c in np.polyfit(np.asarray(x, float), np.asarray(y, float), 3))

    def __call__(self, n_points: np.ndarray) -> np.ndarray:
        hits = np.polyval(self.real_points_to_hits, n_points)
        return np.clip(np.polyval(self.gen_hits_to_points, hits), 1, None)


def assign_layers(depth_norm: np.ndarray, mask: np.ndarray, per_layer: np.ndarray, layer_depths: np.ndarray
                  ) -> np.ndarray:
    """Depth coordinates of generated points: in each shower, the points sorted by the model's
    depth coordinate fill the layers front to back, ``per_layer`` (N, L) of them in each.

    Args:
        depth_norm: (N, P) the model's depth coordinate (any monotone scale).
        mask: (N, P) real points; their number per shower must equal ``per_layer.sum(1)``.
        layer_depths: (L,) the depth coordinate given to the points of each layer.
    """
    out = np.zeros(mask.shape)
    key = np.where(mask, depth_norm, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    for_rank = np.zeros(mask.shape)
    for i in range(len(mask)):  # per shower: a repeat of the layer depths (P values)
        depths = np.repeat(layer_depths, per_layer[i].astype(np.int64))
        for_rank[i, :len(depths)] = depths
    np.put_along_axis(out, order, for_rank, axis=1)
    return np.where(mask, out, 0.0)


def calibrate_layer_energy(energy: np.ndarray, layer: np.ndarray, mask: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Scale point energies so that each layer of each shower holds ``target`` (N, L) [MeV]
    (negative energies are set to 0 first; a layer whose points carry no energy keeps them)."""
    e = np.where(mask, np.clip(energy, 0, None), 0.0)
    n, L = target.shape
    rows = np.repeat(np.arange(n), mask.shape[1]).reshape(mask.shape)
    ok = mask & (layer >= 0)
    have = np.zeros((n, L))
    np.add.at(have, (rows[ok], layer[ok]), e[ok])
    scale = np.where(have > 0, target / np.where(have > 0, have, 1), 1.0)
    return np.where(ok, e * scale[rows, np.maximum(layer, 0)], e)


def calibrate_cog(coord: np.ndarray, energy: np.ndarray, mask: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Shift one coordinate (N, P) so that each shower's energy-weighted mean is ``target`` (N,)."""
    w = np.where(mask, energy, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cog = (w * coord).sum(1) / w.sum(1)
    shift = np.where(np.isfinite(cog), target - cog, 0.0)
    return np.where(mask, coord + shift[:, None], 0.0)


def project_showers(showers: ShowerPointSet, geometry: Geometry) -> ShowerPointSet | VoxelShowerSet:
    """The last step: points onto the cells at the geometry's readout threshold; cell hits as
    points (at the cell centres) on a layered grid, dense voxels on a CaloChallenge geometry."""
    threshold = layer_stack(geometry).threshold
    if isinstance(geometry, LayeredGrid):
        hits = project(showers.points, geometry, showers.mask, threshold=threshold, output="sparse").hits
        points, mask = hits.padded(geometry)
        return ShowerPointSet(points, mask, showers.incident_energy, dict(showers.attrs))
    cells = project(showers.points, geometry, showers.mask, threshold=threshold, output="dense").cells
    return VoxelShowerSet(cells, showers.incident_energy, geometry.name, dict(showers.attrs))


def batch_seed(seed: int, batch: int) -> int:
    """The seed of batch ``batch`` of a sampling call with ``seed`` (the same for every generator)."""
    return seed * 100_003 + batch


def sample_in_batches(e_inc_mev: np.ndarray, batch_size: int, seed: int,
                      batch: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], geometry: Geometry,
                      project: bool, progress: Callable[[int], None] | None = None
                      ) -> ShowerPointSet | VoxelShowerSet:
    """Showers at ``e_inc_mev`` [MeV], ``batch_size`` at a time: ``batch(energies, seed)`` gives
    (B, P, 4) points and their (B, P) mask for one batch (seed ``batch_seed(seed, i)`` for batch
    i); the batches are zero-padded to one width, and with ``project`` put onto ``geometry``'s
    cells.  ``progress`` is called with the number of showers of each finished batch."""
    e_inc_mev = np.asarray(e_inc_mev, np.float64)
    parts = []
    for i, a in enumerate(range(0, len(e_inc_mev), batch_size)):
        parts.append(batch(e_inc_mev[a:a + batch_size], batch_seed(seed, i)))
        if progress is not None:
            progress(len(parts[-1][0]))
    width = max(p.shape[1] for p, _ in parts)
    pts = np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0))) for p, _ in parts])
    mask = np.concatenate([np.pad(m, ((0, 0), (0, width - m.shape[1]))) for _, m in parts])
    out = ShowerPointSet(pts, mask, e_inc_mev.astype(np.float32), {"y_unit": "mm"})
    return project_showers(out, geometry) if project else out


def pipeline_attrs(steps: PipelineSteps, occupancy: OccupancyCalibration | None) -> dict[str, Any]:
    """What the pipeline did, for the sample file's attributes."""
    return {"pipeline_steps": asdict(steps), "occupancy_calibration": None if occupancy is None else asdict(occupancy)}
