"""Cylindrical voxel geometries of the CaloChallenge, read from its binning XMLs.

Each layer has radial bin edges (mm) and a number of equal angular (alpha) bins over [-pi, pi);
layers with ``r_edges="0"`` hold no voxels.  Voxels are flattened layer by layer (in layer-id
order), and within a layer alpha-major then radial, so that for data sets 2 and 3
``showers.reshape(N, layers, n_alpha, n_r)`` restores the grid.  Voxel centres follow the
challenge's ``XMLHandler``: bin mid-points in r and alpha (alpha = 0 for unbinned layers),
x = r cos(alpha), y = r sin(alpha).  CaloChallenge: arXiv:2410.21611.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import FormatError
from . import _kernels

__all__ = ["CylindricalLayer", "CylindricalGeometry", "calochallenge_geometry", "CALOCHALLENGE_FILES",
           "READOUT_THRESHOLDS_MEV", "GEOMETRY_OF_VOXEL_COUNT"]

#: the CaloChallenge geometries pcbench ships (copies of the challenge's binning XMLs)
CALOCHALLENGE_FILES = ("calochallenge-1-photons", "calochallenge-1-pions", "calochallenge-2", "calochallenge-3")

#: the challenge's readout threshold per voxel [MeV] (its ``evaluate.py``: data set 1 1 MeV;
#: data sets 2 and 3 0.5 keV deposited / sampling fraction 0.033)
READOUT_THRESHOLDS_MEV = {"calochallenge-1-photons": 1.0, "calochallenge-1-pions": 1.0,
                          "calochallenge-2": 0.5e-3 / 0.033, "calochallenge-3": 0.5e-3 / 0.033}

#: voxels per shower -> the CaloChallenge geometry (the four counts differ)
GEOMETRY_OF_VOXEL_COUNT = {368: "calochallenge-1-photons", 533: "calochallenge-1-pions", 6480: "calochallenge-2",
                           40500: "calochallenge-3"}


@dataclass(frozen=True)
class CylindricalLayer:
    """One layer: its id, radial edges [mm] and number of alpha bins."""

    id: int
    r_edges: tuple[float, ...]
    n_alpha: int

    @property
    def n_r(self) -> int:
        return len(self.r_edges) - 1

    @property
    def n_voxels(self) -> int:
        return self.n_r * self.n_alpha if self.n_r > 0 else 0


@dataclass(frozen=True)
class CylindricalGeometry:
    """A CaloChallenge voxel geometry: its layers in id order (empty layers included)."""

    name: str
    layers: tuple[CylindricalLayer, ...]

    @classmethod
    def from_xml(cls, path: str | Path, name: str | None = None) -> CylindricalGeometry:
        """Parse a binning XML (``<Bins><Bin><Layer id r_edges n_bin_alpha/>...``)."""
        path = Path(path)
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as exc:
            raise FormatError(f"{path}: cannot read the binning XML: {exc}") from exc
        layers = []
        for el in root.iter("Layer"):
            try:
                edges = tuple(float(v) for v in el.attrib["r_edges"].split(","))
                layers.append(CylindricalLayer(int(el.attrib["id"]), edges, int(el.attrib["n_bin_alpha"])))
            except (KeyError, ValueError) as exc:
                raise FormatError(f"{path}: Layer {el.attrib}: expected id, r_edges and n_bin_alpha ({exc})") from None
        if not layers:
            raise FormatError(f"{path}: no <Layer> elements")
        return cls(name or path.stem, tuple(sorted(layers, key=lambda lay: lay.id)))

    @property
    def n_voxels(self) -> int:
        """Total voxels (368, 533, 6480, 40500 for data sets 1 photons, 1 pions, 2, 3)."""
        return sum(lay.n_voxels for lay in self.layers)

    @property
    def relevant_layers(self) -> tuple[int, ...]:
        """Ids of the layers that hold voxels."""
        return tuple(lay.id for lay in self.layers if lay.n_voxels)

    @cached_property
    def common_binning(self) -> CylindricalLayer | None:
        """The one (radial edges, alpha bins) binning that every layer with voxels shares, as a
        layer of id -1 (data sets 2 and 3: 9 r bins x 16 alpha, 18 x 50); None when layers differ
        (data set 1), so that images (layers, alpha, r) exist only where this is not None."""
        binned = {(lay.r_edges, lay.n_alpha) for lay in self.layers if lay.n_voxels}
        if len(binned) != 1:
            return None
        (edges, n_alpha), = binned
        return CylindricalLayer(-1, edges, n_alpha)

    def is_window_of(self, other: object) -> bool:
        """Whether every voxel of this geometry is one of ``other``'s: only when they are the same
        (no CaloChallenge geometry is a part of another)."""
        return self == other

    @cached_property
    def layer_offsets(self) -> np.ndarray:
        """(L + 1,) index of each layer's first voxel in the flattened order (L = all layers)."""
        return np.concatenate([[0], np.cumsum([lay.n_voxels for lay in self.layers])])

    @cached_property
    def voxel_table(self) -> dict[str, np.ndarray]:
        """Per voxel, in file order: ``layer`` id, ``alpha_bin``, ``r_bin``, ``r_lo``, ``r_hi`` [mm],
        ``alpha_lo``, ``alpha_hi`` [rad], centre ``r`` [mm] and ``alpha`` [rad], ``x``, ``y`` [mm]."""
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("layer", "alpha_bin", "r_bin", "r_lo", "r_hi", "alpha_lo", "alpha_hi")}
        for lay in self.layers:
            if not lay.n_voxels:
                continue
            a, r = np.meshgrid(np.arange(lay.n_alpha), np.arange(lay.n_r), indexing="ij")  # alpha-major
            a, r = a.ravel(), r.ravel()
            edges = np.asarray(lay.r_edges)
            a_edges = np.linspace(-np.pi, np.pi, lay.n_alpha + 1)
            for k, v in (("layer", np.full(a.size, lay.id)), ("alpha_bin", a), ("r_bin", r), ("r_lo", edges[r]),
                         ("r_hi", edges[r + 1]), ("alpha_lo", a_edges[a]), ("alpha_hi", a_edges[a + 1])):
                cols[k].append(v)
        t = {k: np.concatenate(v) for k, v in cols.items()}
        t["r"] = 0.5 * (t["r_lo"] + t["r_hi"])
        t["alpha"] = 0.5 * (t["alpha_lo"] + t["alpha_hi"])
        t["x"], t["y"] = t["r"] * np.cos(t["alpha"]), t["r"] * np.sin(t["alpha"])
        return t

    # --- the Geometry interface -----------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return self.n_voxels

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @cached_property
    def cell_centres(self) -> np.ndarray:
        """(V, 3) voxel centres (x [mm], y [mm], z = layer id), the point convention of this geometry."""
        t = self.voxel_table
        return np.column_stack([t["x"], t["y"], t["layer"].astype(np.float64)])

    @cached_property
    def cell_layer(self) -> np.ndarray:
        """(V,) layer id of each voxel."""
        return self.voxel_table["layer"]

    @cached_property
    def _tables(self) -> dict[str, np.ndarray]:
        """Per layer position k: padded r edges, n_r, n_alpha, first voxel; lookup tables in r and
        in the pseudo-angle whose bins hold at most one edge each (so one comparison each way fixes
        the bin, without branches)."""
        n = len(self.layers)
        width = max(lay.n_r for lay in self.layers) + 1
        edges = np.full((n, width), np.inf)
        for k, lay in enumerate(self.layers):
            if lay.n_voxels:
                edges[k, :lay.n_r + 1] = lay.r_edges
        widths = [np.diff(lay.r_edges).min() for lay in self.layers if lay.n_voxels]
        step = min(widths) / 2  # a lookup bin holds at most one edge
        r_max = max(lay.r_edges[-1] for lay in self.layers if lay.n_voxels)
        grid = np.arange(int(r_max / step) + 2) * step
        lut = np.stack([np.clip(np.searchsorted(edges[k], grid, side="right") - 1, 0, width - 2) for k in range(n)])
        ids = np.array([lay.id for lay in self.layers])
        pos = np.full(ids.max() + 1, -1, dtype=np.int64)
        pos[ids] = np.arange(n)
        # alpha: the bins' edges as pseudo-angles (monotone in alpha, on [-2, 2]) and a lookup table
        n_alpha = np.array([lay.n_alpha for lay in self.layers])
        alpha_edges = np.full((n, n_alpha.max() + 1), np.inf)
        for k, na in enumerate(n_alpha):
            theta = np.pi * (2 * np.arange(na + 1) / na - 1)  # exact at 0 and +-pi
            alpha_edges[k, :na + 1] = [_kernels.pseudo_angle(c, s) for c, s in zip(np.cos(theta), np.sin(theta))]
        a_step = min(np.diff(alpha_edges[k, :na + 1]).min() for k, na in enumerate(n_alpha)) / 2
        a_grid = -2.0 + np.arange(int(4.0 / a_step) + 2) * a_step
        alpha_lut = np.stack([np.clip(np.searchsorted(alpha_edges[k], a_grid, side="right") - 1, 0, na - 1)
                              for k, na in enumerate(n_alpha)])
        return {"alpha_edges": alpha_edges, "alpha_lut": alpha_lut, "alpha_step": np.float64(a_step),
                "edges": edges, "n_r": np.array([lay.n_r if lay.n_voxels else 0 for lay in self.layers]),
                "n_alpha": n_alpha, "offset": self.layer_offsets[:-1],
                "step": np.float64(step), "lut": lut, "pos": pos}

    def cell_index(self, xyz: np.ndarray) -> np.ndarray:
        """(n,) flattened voxel index of points (n, 3) = (x [mm], y [mm], layer id); -1 outside.

        The layer is ``floor(z)``.  Bins are half-open, [lo, hi) in r and in alpha over [-pi, pi)
        (r = sqrt(x^2 + y^2) in float64, alpha the angle of (x, y); alpha = pi wraps to -pi): a point on a boundary belongs to the
        bin above it; r at or beyond the last edge, unknown or empty layers give -1.  One compiled
        pass: a lookup table in r, the angle compared through a monotone pseudo-angle (no atan2).
        """
        out = np.empty(len(xyz), dtype=np.int64)
        _kernels.index_points(np.ascontiguousarray(xyz), *self.kernel, out)
        return out

    @cached_property
    def kernel(self) -> tuple:
        """(kind, iv, fv, i1, i2, i3, f1, f2): the per-point rule's parameters for ``_kernels.cell``."""
        t = self._tables
        return (_kernels.CYLINDRICAL, t["pos"], 1.0 / np.array([t["step"], t["alpha_step"]]),
                np.stack([t["n_r"], t["n_alpha"], t["offset"]]).astype(np.int64), t["lut"], t["alpha_lut"],
                t["edges"], t["alpha_edges"])

    def sample_in_cells(self, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n, 3) points uniform (in area) inside voxels ``cells`` (n,): (x, y [mm], layer id + U[0, 1))."""
        t = self.voxel_table
        r2 = rng.uniform(t["r_lo"][cells] ** 2, t["r_hi"][cells] ** 2)
        alpha = rng.uniform(t["alpha_lo"][cells], t["alpha_hi"][cells])
        r = np.sqrt(r2)
        return np.column_stack([r * np.cos(alpha), r * np.sin(alpha), t["layer"][cells] + rng.uniform(0, 1, len(cells))])

    def summary(self) -> dict[str, object]:
        """Human-readable facts (for ``pcbench geometry show``)."""
        rel = [lay for lay in self.layers if lay.n_voxels]
        return {
            "name": self.name, "kind": "cylindrical voxels (CaloChallenge binning XML)",
            "layers": f"{len(self.layers)} ({len(rel)} with voxels)", "cells": self.n_voxels,
            "voxels per layer": ", ".join(sorted({f"{lay.n_alpha} alpha x {lay.n_r} r" for lay in rel})),
            "r extent": f"0 .. {max(lay.r_edges[-1] for lay in rel):g} mm",
            "voxel order": "(layer, alpha bin, r bin); alpha bins over [-pi, pi)",
        }


def calochallenge_geometry(name: str) -> CylindricalGeometry:
    """A CaloChallenge geometry by name (``calochallenge-1-photons``, ``-1-pions``, ``-2``, ``-3``)."""
    from .base import get_geometry

    if name not in CALOCHALLENGE_FILES:
        raise FormatError(f"unknown CaloChallenge geometry {name!r}; known: {', '.join(CALOCHALLENGE_FILES)}")
    return get_geometry(name)  # type: ignore[return-value]
