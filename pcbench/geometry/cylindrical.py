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
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import FormatError

__all__ = ["CylindricalLayer", "CylindricalGeometry", "calochallenge_geometry", "CALOCHALLENGE_FILES"]

#: geometry name -> shipped binning XML (copies of the CaloChallenge's files)
CALOCHALLENGE_FILES = {
    "calochallenge-1-photons": "binning_dataset_1_photons.xml",
    "calochallenge-1-pions": "binning_dataset_1_pions.xml",
    "calochallenge-2": "binning_dataset_2.xml",
    "calochallenge-3": "binning_dataset_3.xml",
}


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

    def voxel_index(self, layer: np.ndarray, r: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Flattened voxel index of points at layer id, radius [mm] and angle [rad]; -1 outside.

        Bins are half-open, [lo, hi) in r and in alpha over [-pi, pi) (alpha = pi wraps to -pi): a
        point on a boundary belongs to the bin above it; r beyond the last edge, negative r,
        unknown or empty layers give -1.
        """
        layer, r, alpha = np.asarray(layer), np.asarray(r, float), np.asarray(alpha, float)
        out = np.full(layer.shape, -1, dtype=np.int64)
        by_id = {lay.id: (k, lay) for k, lay in enumerate(self.layers)}
        for lid in np.unique(layer):
            if int(lid) not in by_id:
                continue
            k, lay = by_id[int(lid)]
            if not lay.n_voxels:
                continue
            sel = layer == lid
            rb = np.searchsorted(np.asarray(lay.r_edges), r[sel], side="right") - 1
            wrapped = (alpha[sel] + np.pi) % (2 * np.pi)
            ab = np.minimum((wrapped / (2 * np.pi) * lay.n_alpha).astype(np.int64), lay.n_alpha - 1)
            ok = (rb >= 0) & (rb < lay.n_r)
            out[sel] = np.where(ok, self.layer_offsets[k] + ab * lay.n_r + rb, -1)
        return out


@lru_cache(maxsize=None)
def calochallenge_geometry(name: str) -> CylindricalGeometry:
    """A CaloChallenge geometry by name (``calochallenge-1-photons``, ``-1-pions``, ``-2``, ``-3``)."""
    if name not in CALOCHALLENGE_FILES:
        raise FormatError(f"unknown CaloChallenge geometry {name!r}; known: {', '.join(CALOCHALLENGE_FILES)}")
    with resources.as_file(resources.files("pcbench.geometry") / "data" / CALOCHALLENGE_FILES[name]) as path:
        return CylindricalGeometry.from_xml(path, name)
