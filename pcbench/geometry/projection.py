"""Points <-> cells for cylindrical geometries, vectorised over all points of a batch of showers."""

from __future__ import annotations

import numpy as np

from .cylindrical import CylindricalGeometry

__all__ = ["voxels_to_points", "points_to_voxels"]


def voxels_to_points(voxels: np.ndarray, geometry: CylindricalGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Each non-zero voxel becomes one point at its centre carrying its energy.

    Args:
        voxels: (N, V) energies [MeV] in the geometry's order.

    Returns:
        points (N, P, 4) = (x [mm], y [mm], z = layer id, E [MeV]), zero-padded, P the largest
        number of non-zero voxels of a shower; mask (N, P).
    """
    if voxels.shape[1] != geometry.n_voxels:
        raise ValueError(f"{voxels.shape[1]} voxels per shower, the geometry {geometry.name} has {geometry.n_voxels}")
    t = geometry.voxel_table
    nonzero = voxels != 0
    counts = nonzero.sum(axis=1)
    rows, cols = np.nonzero(nonzero)  # row-major: each shower's voxels in file order
    slot = np.arange(len(rows)) - np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    points = np.zeros((len(voxels), int(counts.max(initial=0)), 4), dtype=np.float32)
    points[rows, slot] = np.column_stack([t["x"][cols], t["y"][cols], t["layer"][cols], voxels[rows, cols]])
    return points, np.arange(points.shape[1])[None, :] < counts[:, None]


def points_to_voxels(points: np.ndarray, mask: np.ndarray, geometry: CylindricalGeometry,
                     threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Sum point energies into voxels (one bincount over the whole batch: no loop over showers).

    Args:
        points: (N, P, 4) = (x [mm], y [mm], z = layer id (the integer part is used), E [MeV]).
        mask: (N, P) bool.
        threshold: voxels with less energy [MeV] are set to 0 after summing.

    Returns:
        voxels (N, V) float32 [MeV]; outside (N,) float64: the energy of points outside the
        geometry (beyond the last radial edge, or in a layer without voxels) [MeV].
    """
    n, v = len(points), geometry.n_voxels
    shower, slot = np.nonzero(mask)
    p = points[shower, slot].astype(np.float64)
    idx = geometry.voxel_index(np.floor(p[:, 2]).astype(np.int64), np.hypot(p[:, 0], p[:, 1]), np.arctan2(p[:, 1], p[:, 0]))
    inside = idx >= 0
    voxels = np.bincount(shower[inside] * v + idx[inside], weights=p[inside, 3], minlength=n * v).reshape(n, v)
    outside = np.bincount(shower[~inside], weights=p[~inside, 3], minlength=n)
    if threshold > 0:
        voxels[voxels < threshold] = 0.0
    return voxels.astype(np.float32), outside
