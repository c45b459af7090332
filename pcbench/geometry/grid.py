"""Layered calorimeters with a regular square-cell grid per layer (the ILD ECal), built from YAML.

Coordinates are (x, y, z) in mm with the shower travelling along the ``depth_axis`` (``y`` for
ILD); cells tile the plane of the other two axes (u, v) = (x, z).  A point belongs to layer ``l``
when ``front[l] - accept_below <= depth <= front[l] + accept_above`` (the CaloClouds II
projection's window, both ends included), and to the cell ``(i, j)`` with
``i = floor((u - u_lo) / cell)``, ``j = floor((v - v_lo) / cell)`` evaluated in float64: a point on
a cell edge belongs to the cell above it.  Cells are flattened as (layer, i, j).  The grid covers
the region ``u_range`` x ``v_range`` with ``ceil(width / cell)`` cells per axis starting at the low
edge, so its last cells reach slightly beyond the region's high edges.

ILD and CaloClouds II: Buhmann et al., arXiv:2309.05704.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import FormatError
from . import _kernels

__all__ = ["LayeredGrid"]

_AXES = "xyz"


@dataclass(frozen=True)
class LayeredGrid:
    """A layered calorimeter with square cells (all lengths in mm, threshold in MeV)."""

    name: str
    layer_fronts: tuple[float, ...]
    cell_size: float
    u_range: tuple[float, float]
    v_range: tuple[float, float]
    active_thickness: float
    accept_below: float = 0.5
    accept_above: float = 1.0
    depth_axis: str = "y"
    threshold: float = 0.0
    title: str = ""
    absorber_before: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        fronts = np.asarray(self.layer_fronts)
        if fronts.ndim != 1 or len(fronts) == 0 or np.any(np.diff(fronts) <= self.accept_below + self.accept_above):
            raise FormatError(f"{self.name}: layer_fronts must increase by more than the acceptance window "
                              f"({self.accept_below} + {self.accept_above} mm)")
        if self.depth_axis not in _AXES:
            raise FormatError(f"{self.name}: depth_axis must be one of x, y, z, got {self.depth_axis!r}")
        if self.absorber_before is not None and len(self.absorber_before) != len(fronts):
            raise FormatError(f"{self.name}: absorber_before_mm has {len(self.absorber_before)} entries, "
                              f"expected one per layer ({len(fronts)})")

    def is_window_of(self, other: object) -> bool:
        """Whether every cell of this grid is a cell of ``other``: the same layers (fronts,
        acceptance, active thickness, depth axis), cell size and threshold, and u and v ranges that
        lie inside ``other``'s on its cell edges (``ild-ecal-30`` of ``ild-ecal``).  Points made on
        such a window are points of ``other`` that never fall outside the window."""
        if not isinstance(other, LayeredGrid):
            return False
        same = (np.array_equal(self.layer_fronts, other.layer_fronts) and self.cell_size == other.cell_size
                and self.depth_axis == other.depth_axis and self.threshold == other.threshold
                and (self.accept_below, self.accept_above, self.active_thickness)
                == (other.accept_below, other.accept_above, other.active_thickness))
        if not same:
            return False
        tol = 1e-6 * self.cell_size
        for (lo, hi), (olo, ohi) in ((self.u_range, other.u_range), (self.v_range, other.v_range)):
            k = (lo - olo) / self.cell_size
            if lo < olo - tol or hi > ohi + tol or abs(k - round(k)) > 1e-6:
                return False
        return True

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> LayeredGrid:
        """Build from the YAML keys (``layer_fronts_mm``, ``cell_size_mm``, ``u_range_mm``, ...)."""
        try:
            return cls(
                name=str(d["name"]), layer_fronts=tuple(float(v) for v in d["layer_fronts_mm"]),
                cell_size=float(d["cell_size_mm"]), u_range=tuple(map(float, d["u_range_mm"])),  # type: ignore[arg-type]
                v_range=tuple(map(float, d["v_range_mm"])),  # type: ignore[arg-type]
                active_thickness=float(d["active_thickness_mm"]),
                accept_below=float(d.get("accept_below_mm", 0.5)), accept_above=float(d.get("accept_above_mm", 1.0)),
                depth_axis=str(d.get("depth_axis", "y")), threshold=float(d.get("threshold_mev", 0.0)),
                title=str(d.get("title", "")),
                absorber_before=tuple(float(v) for v in d["absorber_before_mm"]) if d.get("absorber_before_mm") else None)
        except KeyError as exc:
            raise FormatError(f"{source}: missing key {exc.args[0]!r} (a layered grid needs name, layer_fronts_mm, "
                              "cell_size_mm, u_range_mm, v_range_mm, active_thickness_mm)") from None
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> LayeredGrid:
        """Read a grid description (see ``pcbench/geometry/data/ild-ecal.yaml``)."""
        try:
            d = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise FormatError(f"{path}: cannot read the grid YAML: {exc}") from None
        return cls.from_dict(d, str(path))

    # --- shape -----------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layer_fronts)

    @cached_property
    def shape(self) -> tuple[int, int, int]:
        """(layers, cells along u, cells along v)."""
        nu = math.ceil((self.u_range[1] - self.u_range[0]) / self.cell_size - 1e-9)
        nv = math.ceil((self.v_range[1] - self.v_range[0]) / self.cell_size - 1e-9)
        return self.n_layers, nu, nv

    @property
    def n_cells(self) -> int:
        l, nu, nv = self.shape
        return l * nu * nv

    @property
    def plane_axes(self) -> tuple[int, int]:
        """Indices of the (u, v) axes in (x, y, z)."""
        d = _AXES.index(self.depth_axis)
        u, v = (a for a in range(3) if a != d)
        return u, v

    @cached_property
    def layer_depths(self) -> np.ndarray:
        """(L,) depth of each layer's active-slab centre [mm] (where cell hits are placed)."""
        return np.asarray(self.layer_fronts) + self.active_thickness / 2

    @cached_property
    def cell_centres(self) -> np.ndarray:
        """(C, 3) float64 cell centres (x, y, z) [mm] in flattened (layer, i, j) order."""
        l, i, j = np.indices(self.shape).reshape(3, -1)
        out = np.empty((len(l), 3))
        u, v = self.plane_axes
        out[:, _AXES.index(self.depth_axis)] = self.layer_depths[l]
        out[:, u] = self.u_range[0] + (i + 0.5) * self.cell_size
        out[:, v] = self.v_range[0] + (j + 0.5) * self.cell_size
        return out

    @cached_property
    def cell_layer(self) -> np.ndarray:
        """(C,) layer index of each cell."""
        return np.repeat(np.arange(self.n_layers), self.shape[1] * self.shape[2])

    @cached_property
    def _depth_lut(self) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
        """A lookup table from depth to the one candidate layer whose window may contain it."""
        fronts = np.asarray(self.layer_fronts)
        lo, hi = fronts - self.accept_below, fronts + self.accept_above
        step = min(self.accept_below + self.accept_above, float(np.min(lo[1:] - hi[:-1], initial=np.inf))) / 2
        start = lo[0]
        n = int((hi[-1] - start) / step) + 2
        lut = np.full(n, -1, dtype=np.int64)
        for k in range(len(fronts)):  # the bins that overlap window k (a bin overlaps at most one)
            a, b = int((lo[k] - start) // step), int((hi[k] - start) // step)
            lut[a:b + 1] = k
        return start, step, lut, lo, hi

    def layer_of_depth(self, depth: np.ndarray) -> np.ndarray:
        """(n,) layer index of each depth [mm], -1 outside every layer's acceptance window."""
        depth = np.asarray(depth, dtype=np.float64).reshape(-1)
        xyz = np.zeros((len(depth), 3))
        d = _AXES.index(self.depth_axis)
        xyz[:, d] = depth
        u, v = self.plane_axes
        xyz[:, u], xyz[:, v] = self.u_range[0], self.v_range[0]  # the first cell of every layer
        idx = self.cell_index(xyz)
        return np.where(idx >= 0, idx // (self.shape[1] * self.shape[2]), -1)

    def cell_index(self, xyz: np.ndarray) -> np.ndarray:
        """(n,) flattened cell index of points (n, 3) = (x, y, z) [mm]; -1 outside the grid."""
        out = np.empty(len(xyz), dtype=np.int64)
        _kernels.index_points(np.ascontiguousarray(xyz), *self.kernel, out)
        return out

    @cached_property
    def kernel(self) -> tuple:
        """(kind, iv, fv, i1, i2, i3, f1, f2): the per-point rule's parameters for ``_kernels.cell``."""
        start, step, lut, lo, hi = self._depth_lut
        _, nu, nv = self.shape
        u, v = self.plane_axes
        unused_i, unused_f = np.zeros((1, 1), np.int64), np.zeros((1, 1))
        return (_kernels.GRID, np.array([_AXES.index(self.depth_axis), u, v, nu, nv], np.int64),
                np.array([start, step, self.u_range[0], self.v_range[0], self.cell_size]), lut[None, :],
                unused_i, unused_i, np.stack([lo, hi]), unused_f)

    def sample_in_cells(self, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n, 3) points uniform inside cells ``cells`` (n,): in the cell's square and its active slab."""
        c = self.cell_centres[cells].copy()
        u, v = self.plane_axes
        half = self.cell_size / 2
        c[:, u] += rng.uniform(-half, half, len(cells))
        c[:, v] += rng.uniform(-half, half, len(cells))
        c[:, _AXES.index(self.depth_axis)] += rng.uniform(-0.5, 0.5, len(cells)) * self.active_thickness
        return c

    def summary(self) -> dict[str, Any]:
        """Human-readable facts (for ``pcbench geometry show``)."""
        l, nu, nv = self.shape
        return {
            "name": self.name, "kind": "layered square-cell grid", "title": self.title,
            "layers": l, "cells per layer": f"{nu} x {nv} = {nu * nv}", "cells": self.n_cells,
            "cell size": f"{self.cell_size:.4f} mm", "active thickness": f"{self.active_thickness:.4f} mm",
            "depth axis": self.depth_axis,
            "depth extent": f"{self.layer_fronts[0]:.2f} .. {self.layer_fronts[-1]:.2f} mm (layer fronts)",
            "u extent": f"{self.u_range[0]:.1f} .. {self.u_range[0] + nu * self.cell_size:.2f} mm",
            "v extent": f"{self.v_range[0]:.1f} .. {self.v_range[0] + nv * self.cell_size:.2f} mm",
            "layer window": f"[front - {self.accept_below}, front + {self.accept_above}] mm",
            "cell threshold": f"{self.threshold} MeV",
        }
