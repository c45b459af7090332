"""The interface every cell geometry offers, and the geometries pcbench knows by name."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import FormatError

__all__ = ["Geometry", "GEOMETRIES", "get_geometry"]


@runtime_checkable
class Geometry(Protocol):
    """Cells as data: what projection, metrics and plots need of a calorimeter.

    Points are (x, y, z) in the geometry's convention (mm for layered grids; for CaloChallenge
    voxels x, y in mm and z the layer id).  Cells are numbered 0..n_cells-1 in the order of the
    data files.
    """

    name: str

    @property
    def n_cells(self) -> int: ...

    @property
    def n_layers(self) -> int: ...

    @property
    def cell_centres(self) -> np.ndarray:
        """(C, 3) float64 cell centres in the point convention."""

    @property
    def cell_layer(self) -> np.ndarray:
        """(C,) layer of each cell."""

    def cell_index(self, xyz: np.ndarray) -> np.ndarray:
        """(n,) int64 cell of each point (n, 3); -1 outside."""

    @property
    def kernel(self) -> tuple:
        """(kind, iv, fv, i1, i2, i3, f1, f2) for ``_kernels.cell``: the per-point rule that the
        compiled projection loops call."""

    def sample_in_cells(self, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n, 3) points drawn uniformly inside the given cells."""

    def summary(self) -> dict[str, Any]:
        """Facts for people (layers, cells, extents)."""

    def is_window_of(self, other: object) -> bool:
        """Whether every cell of this geometry is a cell of ``other`` (points made on it are
        points of ``other``)."""


#: name -> (kind, shipped file)
GEOMETRIES = {
    "calochallenge-1-photons": ("cylindrical", "binning_dataset_1_photons.xml"),
    "calochallenge-1-pions": ("cylindrical", "binning_dataset_1_pions.xml"),
    "calochallenge-2": ("cylindrical", "binning_dataset_2.xml"),
    "calochallenge-3": ("cylindrical", "binning_dataset_3.xml"),
    "ild-ecal": ("grid", "ild-ecal.yaml"),
    "ild-ecal-30": ("grid", "ild-ecal-30.yaml"),
}


@lru_cache(maxsize=None)
def get_geometry(name: str) -> Geometry:
    """A shipped geometry by name (see ``GEOMETRIES``), or a grid YAML / binning XML by path."""
    from .cylindrical import CylindricalGeometry
    from .grid import LayeredGrid

    if name not in GEOMETRIES:
        if name.endswith((".yaml", ".yml")):
            return LayeredGrid.from_yaml(name)
        if name.endswith(".xml"):
            return CylindricalGeometry.from_xml(name)
        raise FormatError(f"unknown geometry {name!r}; known: {', '.join(GEOMETRIES)} (or a path to a grid "
                          ".yaml or a CaloChallenge binning .xml)")
    kind, fname = GEOMETRIES[name]
    with resources.as_file(resources.files("pcbench.geometry") / "data" / fname) as path:
        return CylindricalGeometry.from_xml(path, name) if kind == "cylindrical" else LayeredGrid.from_yaml(path)
