"""``pcbench validate``: every problem of a sample or data file, named by file and field."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..errors import FormatError
from ..geometry import Geometry, get_geometry, project
from .geometry_of import shower_geometry
from .checks import Problem, where_rows, jet_problems, point_shower_problems, voxel_shower_problems
from .formats import detect_layout, iter_raw

__all__ = ["ValidationReport", "validate_file"]


@dataclass
class ValidationReport:
    """The outcome of :func:`validate_file`: the layout found and every problem."""

    path: str
    layout: str | None = None
    kind: str | None = None
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """One line per problem, each starting with the file name."""
        return [f"{self.path}: {p}" for p in self.problems]


def _merge(problems: list[Problem]) -> list[Problem]:
    """Keep the first report of each distinct (field, kind of problem) across chunks."""
    seen, out = set(), []
    for p in problems:
        key = (p.field, p.message.split(" in ")[0])
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _attr_str(v: object) -> str | None:
    return v.decode() if isinstance(v, bytes) else (str(v) if v is not None else None)


def _structure(f: h5py.File, layout_keys: tuple[str, ...]) -> list[Problem]:
    """Row counts must agree between the layout's datasets."""
    lengths = {k: f[k].shape[0] if f[k].shape else 0 for k in layout_keys}
    if len(set(lengths.values())) > 1:
        return [Problem(layout_keys[1], f"{lengths[layout_keys[1]]} rows, expected {lengths[layout_keys[0]]} "
                        f"(the number of rows of {layout_keys[0]})")]
    return []


def outside_problems(points: np.ndarray, mask: np.ndarray, geometry: Geometry, tolerance: float,
                     row0: int = 0, field_name: str = "points") -> list[Problem]:
    """Showers with more than ``tolerance`` of their energy in points outside ``geometry``."""
    proj = project(points, geometry, mask, output="sparse")
    total = np.where(mask, points[..., 3], 0).sum(axis=1, dtype=np.float64)
    bad = proj.outside_energy > tolerance * np.maximum(total, 1e-30)
    if not bad.any():
        return []
    return [Problem(f"{field_name}[x, y, z]", f"more than {tolerance:.0%} of the energy outside geometry "
                    f"{geometry.name} in {where_rows(bad, row0)}")]


def validate_file(path: str | os.PathLike[str], chunk_rows: int = 10_000, num_voxels: int | None = None,
                  geometry: str | None = None, outside_tolerance: float = 0.05) -> ValidationReport:
    """Check a file against the layout its datasets indicate, chunk by chunk (bounded memory).

    Args:
        path: HDF5 file of any layout pcbench reads (``docs/formats.md``).
        chunk_rows: rows read at a time.
        num_voxels: expected voxels per shower (default: the geometry's cell count).
        geometry: the showers' geometry (default: the file's ``geometry`` attribute; ``ild-ecal``
            for the ILD layout).  Voxel counts must match it; point showers may have at most
            ``outside_tolerance`` of their energy outside it.
    """
    report = ValidationReport(str(path))
    try:
        with h5py.File(path, "r") as f:
            layout = detect_layout(f)
            report.layout, report.kind = layout.name, layout.kind
            report.problems += _structure(f, layout.keys)
            report.rows = f[layout.keys[0]].shape[0] if f[layout.keys[0]].shape else 0
            if not report.problems and report.rows == 0:
                report.problems.append(Problem(layout.keys[0], "0 rows: the file holds no "
                                               f"{layout.kind.replace('-', ' ')}, so it is no usable sample"))
            geometry = shower_geometry({"geometry": _attr_str(f.attrs.get("geometry"))}, None, geometry,
                                       "ild-ecal" if layout.name == "ild" else None)
        if report.problems:
            return report
        geo = get_geometry(geometry) if geometry else None
        if geo is not None and num_voxels is None and layout.kind == "voxel-showers":
            num_voxels = geo.n_cells
        found: list[Problem] = []
        for lay, row0, raw in iter_raw(path, chunk_rows):
            if lay.kind == "jets":
                found += jet_problems(raw["particle_features"], raw["jet_features"], row0)
            elif lay.kind == "voxel-showers":
                found += voxel_shower_problems(raw["incident_energies"], raw["showers"], row0, num_voxels)
            else:
                field_name = "events" if lay.name == "ild" else "points"
                pp = point_shower_problems(raw["points"], raw["mask"], raw["incident_energies"], row0, field_name)
                if geo is not None and not pp:
                    pp = outside_problems(raw["points"], raw["mask"], geo, outside_tolerance, row0, field_name)
                found += pp
            if any("shape" in p.message for p in found):
                break
        report.problems += _merge(found)
    except FormatError as exc:
        report.problems.append(Problem("file", str(exc).removeprefix(f"{path}: ")))
    except OSError as exc:
        report.problems.append(Problem("file", f"not a readable HDF5 file ({exc})"))
    return report
