"""Content checks on arrays, shared by the containers and by ``pcbench validate``.

Each function takes one chunk of rows (``row0`` is the index of its first row in the file) and
returns every problem found, each naming the field, how many entries are wrong, the first
offending row and what was expected.  Nothing here raises or reads files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Problem", "jet_problems", "point_shower_problems", "voxel_shower_problems", "shape_problem"]


@dataclass(frozen=True)
class Problem:
    """One problem of one field: ``field`` is the HDF5 key (with a feature name if useful)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def where_rows(bad: np.ndarray, row0: int) -> str:
    """'<count> entries, first at row <i>' for a boolean array whose first axis is the row."""
    rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
    return f"{int(bad.sum())} entries, first at row {row0 + int(rows[0])}"


def shape_problem(name: str, arr_shape: tuple[int, ...], expected: str, ok: bool) -> list[Problem]:
    """A one-element list describing a wrong shape, or an empty list if ``ok``."""
    return [] if ok else [Problem(name, f"shape {arr_shape}, expected {expected}")]


def _finite(name: str, arr: np.ndarray, row0: int) -> list[Problem]:
    bad = ~np.isfinite(arr)
    return [Problem(name, f"NaN or inf in {where_rows(bad, row0)}")] if bad.any() else []


def _dtype(name: str, arr: np.ndarray) -> list[Problem]:
    if np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer):
        return []
    return [Problem(name, f"dtype {arr.dtype}, expected a numeric (float) type")]


def jet_problems(particle_features: np.ndarray, jet_features: np.ndarray | None,
                 row0: int = 0) -> list[Problem]:
    """Problems of JetNet-layout arrays.

    Args:
        particle_features: (N, P, 4) etarel, phirel, ptrel, mask.
        jet_features: (N, 4) pt [GeV], eta, mass [GeV], num_particles; or ``None``.
    """
    pf, out = particle_features, []
    out += shape_problem("particle_features", pf.shape, "(N, P, 4) = (etarel, phirel, ptrel, mask)",
                         pf.ndim == 3 and pf.shape[-1] == 4)
    if out or _dtype("particle_features", pf):
        return out + _dtype("particle_features", pf)
    out += _finite("particle_features", pf, row0)
    mask, feats, ptrel = pf[..., 3], pf[..., :3], pf[..., 2]
    bad = (mask != 0) & (mask != 1)
    if bad.any():
        out.append(Problem("particle_features[mask]", f"values other than 0 and 1 in {where_rows(bad, row0)}"))
    bad = (mask == 0) & np.any(feats != 0, axis=-1)
    if bad.any():
        out.append(Problem("particle_features[mask]", "mask disagrees with zero-padding: masked-out "
                           f"slots with non-zero features in {where_rows(bad, row0)}"))
    bad = (mask == 1) & ~(ptrel > 0)
    if bad.any():
        out.append(Problem("particle_features[mask]", "mask disagrees with zero-padding: real particles "
                           f"(mask 1) with ptrel <= 0 in {where_rows(bad, row0)}"))
    bad = (ptrel < 0) | (ptrel > 1)
    if bad.any():
        out.append(Problem("particle_features[ptrel]", f"pT fraction outside [0, 1] in {where_rows(bad, row0)}"))
    if jet_features is None:
        return out
    jf = jet_features
    shape_ok = jf.ndim == 2 and jf.shape[1] >= 4 and len(jf) == len(pf)
    out += shape_problem("jet_features", jf.shape, f"({len(pf)}, 4) = (pt, eta, mass, num_particles)", shape_ok)
    if not shape_ok or _dtype("jet_features", jf):
        return out + _dtype("jet_features", jf)
    out += _finite("jet_features", jf, row0)
    bad = ~(jf[:, 0] > 0)
    if bad.any():
        out.append(Problem("jet_features[pt]", f"jet pT <= 0 GeV in {where_rows(bad, row0)}"))
    bad = jf[:, 2] < 0
    if bad.any():
        out.append(Problem("jet_features[mass]", f"negative jet mass in {where_rows(bad, row0)}"))
    n_real = (mask == 1).sum(axis=1)
    bad = np.minimum(jf[:, 3], pf.shape[1]) != n_real
    if bad.any():
        out.append(Problem("jet_features[num_particles]", "min(num_particles, P) differs from the number "
                           f"of mask-1 particles in {where_rows(bad, row0)}"))
    return out


def voxel_shower_problems(incident_energies: np.ndarray, showers: np.ndarray, row0: int = 0,
                          num_voxels: int | None = None) -> list[Problem]:
    """Problems of CaloChallenge-layout arrays: (N, 1) incident energies and (N, V) voxels, MeV."""
    out = shape_problem("incident_energies", incident_energies.shape, "(N, 1)",
                        incident_energies.ndim == 2 and incident_energies.shape[1] == 1)
    expected_v = "V" if num_voxels is None else str(num_voxels)
    out += shape_problem("showers", showers.shape, f"({len(incident_energies)}, {expected_v})",
                         showers.ndim == 2 and len(showers) == len(incident_energies)
                         and (num_voxels is None or showers.shape[1] == num_voxels))
    if out:
        return out
    out += _dtype("incident_energies", incident_energies) + _dtype("showers", showers)
    if out:
        return out
    out += _finite("incident_energies", incident_energies, row0) + _finite("showers", showers, row0)
    bad = ~(incident_energies > 0)
    if bad.any():
        out.append(Problem("incident_energies", f"incident energy <= 0 MeV in {where_rows(bad, row0)}"))
    bad = showers < 0
    if bad.any():
        out.append(Problem("showers", f"negative voxel energies in {where_rows(bad, row0)}"))
    return out


def point_shower_problems(points: np.ndarray, mask: np.ndarray, incident_energy: np.ndarray,
                          row0: int = 0, field: str = "points") -> list[Problem]:
    """Problems of point-cloud showers: (N, P, 4) (x, y, z, E [MeV]), (N, P) mask, (N,) E_inc [MeV]."""
    out = shape_problem(field, points.shape, "(N, P, 4) = (x, y, z, E)", points.ndim == 3 and points.shape[-1] == 4)
    if out:
        return out
    out += shape_problem("mask", mask.shape, str(points.shape[:2]), mask.shape == points.shape[:2])
    out += shape_problem("incident_energies", incident_energy.shape, f"({len(points)},)",
                         incident_energy.shape == (len(points),))
    if out:
        return out
    out += _dtype(field, points) + _finite(field, points, row0) + _finite("incident_energies", incident_energy, row0)
    energy = points[..., 3]
    bad = energy < 0
    if bad.any():
        out.append(Problem(f"{field}[E]", f"negative point energies in {where_rows(bad, row0)}"))
    bad = ~mask & np.any(points != 0, axis=-1)
    if bad.any():
        out.append(Problem(f"{field}[mask]", "mask disagrees with zero-padding: padded slots with "
                           f"non-zero entries in {where_rows(bad, row0)}"))
    bad = mask & ~(energy > 0)
    if bad.any():
        out.append(Problem(f"{field}[mask]", f"real points with E <= 0 in {where_rows(bad, row0)}"))
    bad = ~(incident_energy > 0)
    if bad.any():
        out.append(Problem("incident_energies", f"incident energy <= 0 MeV in {where_rows(bad, row0)}"))
    return out
