"""Point showers as voxel images of a geometry and back, for the voxel generators (BIB-AE,
the L2LFlows): they train on images (N, L, H, W) and hand their cells back as the geometry's
output, voxels on a CaloChallenge geometry or cell hits on a layered grid."""

from __future__ import annotations

import numpy as np

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...errors import ConfigError
from ...geometry import CylindricalGeometry, Geometry, LayeredGrid, layer_stack, project, to_points

__all__ = ["image_shape", "layer_images", "images_to_cells", "cells_to_showers"]


def image_shape(geometry: Geometry) -> tuple[int, int, int]:
    """(L, H, W) of a geometry's layer images in its cell order: (layers, alpha, r) on a
    CaloChallenge geometry whose layers share one binning, (layers, u, v) on a layered grid."""
    if isinstance(geometry, LayeredGrid):
        return geometry.shape
    if isinstance(geometry, CylindricalGeometry) and geometry.common_binning is not None:
        return len(geometry.relevant_layers), geometry.common_binning.n_alpha, geometry.common_binning.n_r
    raise ConfigError(f"{geometry.name}: a voxel model needs layers of one shape (CaloChallenge data sets 2 and 3, "
                      "or a layered grid)")


def layer_images(points: np.ndarray, mask: np.ndarray, geometry: Geometry, threshold: float | None = None
                 ) -> np.ndarray:
    """Point showers (N, P, 4) (point convention, MeV) -> voxel images (N, L, H, W) float32 [MeV]
    in the geometry's cell order (``image_shape``), projected at ``threshold`` [MeV] (default:
    the geometry's readout threshold; 0: every cell); points outside the geometry are dropped."""
    shape = image_shape(geometry)
    thr = layer_stack(geometry).threshold if threshold is None else threshold
    cells = project(points, geometry, mask, threshold=thr, output="dense").cells
    return cells.reshape(len(points), *shape)


def images_to_cells(images: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The inverse of ``layer_images``' reshape: (N, L, H, W) -> (N, C) cells in file order."""
    return np.ascontiguousarray(images.reshape(len(images), geometry.n_cells), dtype=np.float32)


def cells_to_showers(cells: np.ndarray, e_inc_mev: np.ndarray, geometry: Geometry, voxels: bool = True
                     ) -> ShowerPointSet | VoxelShowerSet:
    """Generated cells (N, C) [MeV] at the geometry's readout threshold (cells below it set to 0):
    a ``VoxelShowerSet`` on a CaloChallenge geometry when ``voxels``, else the non-empty cells as
    points at their centres (mm, MeV; a layered grid's cell hits)."""
    cells = np.asarray(cells).reshape(len(cells), -1)
    cells = np.where(cells >= layer_stack(geometry).threshold, cells, 0.0).astype(np.float32)
    e = np.asarray(e_inc_mev, np.float32)
    if voxels and isinstance(geometry, CylindricalGeometry):
        return VoxelShowerSet(cells, e, geometry.name, {})
    points, mask = to_points(cells, geometry, placement="centre")
    return ShowerPointSet(points, mask, e, {"y_unit": "mm"})
