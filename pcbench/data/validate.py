"""``pcbench validate``: every problem of a sample or data file, named by file and field."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py

from ..errors import FormatError
from .checks import Problem, jet_problems, point_shower_problems, voxel_shower_problems
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


def _structure(f: h5py.File, layout_keys: tuple[str, ...]) -> list[Problem]:
    """Row counts must agree between the layout's datasets."""
    lengths = {k: f[k].shape[0] if f[k].shape else 0 for k in layout_keys}
    if len(set(lengths.values())) > 1:
        return [Problem(layout_keys[1], f"{lengths[layout_keys[1]]} rows, expected {lengths[layout_keys[0]]} "
                        f"(the number of rows of {layout_keys[0]})")]
    return []


def validate_file(path: str | os.PathLike[str], chunk_rows: int = 10_000,
                  num_voxels: int | None = None) -> ValidationReport:
    """Check a file against the layout its datasets indicate, chunk by chunk (bounded memory).

    Args:
        path: HDF5 file of any layout pcbench reads (``docs/formats.md``).
        chunk_rows: rows read at a time.
        num_voxels: expected voxels per shower, when the geometry is known.
    """
    report = ValidationReport(str(path))
    try:
        with h5py.File(path, "r") as f:
            layout = detect_layout(f)
            report.layout, report.kind = layout.name, layout.kind
            report.problems += _structure(f, layout.keys)
            report.rows = f[layout.keys[0]].shape[0]
        if report.problems:
            return report
        found: list[Problem] = []
        for lay, row0, raw in iter_raw(path, chunk_rows):
            if lay.kind == "jets":
                found += jet_problems(raw["particle_features"], raw["jet_features"], row0)
            elif lay.kind == "voxel-showers":
                found += voxel_shower_problems(raw["incident_energies"], raw["showers"], row0, num_voxels)
            else:
                field_name = "events" if lay.name == "ild" else "points"
                found += point_shower_problems(raw["points"], raw["mask"], raw["incident_energies"], row0, field_name)
            if any("shape" in p.message for p in found):
                break
        report.problems += _merge(found)
    except FormatError as exc:
        report.problems.append(Problem("file", str(exc).removeprefix(f"{path}: ")))
    except OSError as exc:
        report.problems.append(Problem("file", f"not a readable HDF5 file ({exc})"))
    return report
