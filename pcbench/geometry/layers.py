"""A geometry seen as a stack of layers: what layer-wise generators (CaloClouds) need of it.

Both kinds of geometry have layers along a depth axis and a plane across it:

- a ``LayeredGrid`` (ILD): depth ``y`` [mm], plane (x, z) [mm], a point's layer from the
  grid's acceptance windows, generated points placed at the layers' active-slab centres;
- a ``CylindricalGeometry`` (CaloChallenge): depth ``z`` = layer id (a point in layer ``k`` has
  ``k <= z < k + 1``), plane (x, y) [mm]; only the layers that hold voxels count (data set 1 has
  empty layers), and generated points are placed at ``id + 0.5``.

Layers are numbered 0..L-1 in depth order among the counted layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from .base import Geometry
from .cylindrical import READOUT_THRESHOLDS_MEV, CylindricalGeometry
from .grid import LayeredGrid

__all__ = ["LayerStack", "layer_stack"]


@dataclass(frozen=True, eq=False)
class LayerStack:
    """Attributes:
        geometry: the geometry's name.
        depths: (L,) depth coordinate of each layer (where generated points are placed).
        depth_axis: index of the depth coordinate in (x, y, z).
        plane_axes: indices of the two plane coordinates.
        threshold: readout threshold per cell [MeV].
    """

    geometry: str
    depths: np.ndarray
    depth_axis: int
    plane_axes: tuple[int, int]
    threshold: float
    _layer_of: Callable[[np.ndarray], np.ndarray]

    @property
    def n_layers(self) -> int:
        return len(self.depths)

    def layer_of(self, depth: np.ndarray) -> np.ndarray:
        """(n,) layer (0..L-1) of each depth coordinate (any shape, flattened); -1 outside every layer."""
        return self._layer_of(np.asarray(depth, np.float64).reshape(-1))


def _cylindrical_layer_of(ids: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    pos = np.full(int(ids.max()) + 2, -1, np.int64)
    pos[ids] = np.arange(len(ids))

    def layer_of(z: np.ndarray) -> np.ndarray:
        k = np.floor(np.nan_to_num(z, nan=-1.0))
        inside = (k >= 0) & (k < len(pos))
        return np.where(inside, pos[np.where(inside, k, 0).astype(np.int64)], -1)

    return layer_of


@lru_cache(maxsize=None)
def _stack(geometry: Geometry) -> LayerStack:
    if isinstance(geometry, LayeredGrid):
        d = "xyz".index(geometry.depth_axis)
        return LayerStack(geometry.name, geometry.layer_depths, d, geometry.plane_axes, geometry.threshold,
                          geometry.layer_of_depth)
    if isinstance(geometry, CylindricalGeometry):
        ids = np.asarray(geometry.relevant_layers, np.int64)
        return LayerStack(geometry.name, ids + 0.5, 2, (0, 1), READOUT_THRESHOLDS_MEV.get(geometry.name, 0.0),
                          _cylindrical_layer_of(ids))
    raise TypeError(f"{type(geometry).__name__} has no layer structure pcbench knows")


def layer_stack(geometry: Geometry | LayerStack) -> LayerStack:
    """The layer view of a geometry (a ``LayerStack`` is returned as it is)."""
    return geometry if isinstance(geometry, LayerStack) else _stack(geometry)
