"""Typed, validated containers for the three kinds of data pcbench handles.

Every container checks its arrays on construction (:mod:`pcbench.data.checks`) and raises
:class:`~pcbench.errors.FormatError` naming every problem, so that no metric or model ever sees
NaNs, negative energies or masks that disagree with the padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import FormatError
from . import checks

__all__ = ["JET_TYPES", "JetSet", "ShowerPointSet", "VoxelShowerSet", "infer_jet_type"]

#: JetNet's jet classes, in the order of the jetnet library's class index.
JET_TYPES = ("g", "q", "t", "w", "z")


def _raise(problems: list[checks.Problem], what: str) -> None:
    if problems:
        raise FormatError(f"invalid {what}:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, eq=False)
class JetSet:
    """Jets as particle clouds, in JetNet's conventions.

    Attributes:
        particles: (N, P, 3) float32: etarel = eta - eta_jet, phirel = phi - phi_jet wrapped
            into [-pi, pi), ptrel = pT / pT_jet; zero-padded, sorted by decreasing pT.
        mask: (N, P) bool, True for real particles.
        jets: (N, 4) float32: pt [GeV], eta, mass [GeV], num_particles.
        jet_type: (N,) int8, index into :data:`JET_TYPES`, -1 if unknown.
        attrs: provenance (source file, generator settings, ...).
    """

    kind: ClassVar[str] = "jets"  # in words, for messages

    particles: np.ndarray
    mask: np.ndarray
    jets: np.ndarray
    jet_type: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _raise(checks.jet_problems(self.particle_features, self.jets), "JetSet")
        if self.jet_type.shape != (len(self.particles),):
            raise FormatError(f"invalid JetSet: jet_type has shape {self.jet_type.shape}, "
                              f"expected ({len(self.particles)},)")

    @classmethod
    def from_jetnet(cls, particle_features: np.ndarray, jet_features: np.ndarray,
                    jet_type: str | np.ndarray | None = None, attrs: dict[str, Any] | None = None) -> JetSet:
        """Build from JetNet arrays: (N, P, 4) (etarel, phirel, ptrel, mask) and (N, 4)."""
        pf = np.asarray(particle_features, dtype=np.float32)
        _raise(checks.shape_problem("particle_features", pf.shape, "(N, P, 4) = (etarel, phirel, ptrel, mask)",
                                    pf.ndim == 3 and pf.shape[-1] == 4), "JetSet")
        n = len(pf)
        if isinstance(jet_type, str):
            types = np.full(n, JET_TYPES.index(jet_type), dtype=np.int8)
        elif jet_type is None:
            types = np.full(n, -1, dtype=np.int8)
        else:
            types = np.asarray(jet_type, dtype=np.int8)
        return cls(pf[..., :3], pf[..., 3] > 0, np.asarray(jet_features, dtype=np.float32), types, dict(attrs or {}))

    @property
    def particle_features(self) -> np.ndarray:
        """(N, P, 4) float32 in JetNet's layout (etarel, phirel, ptrel, mask)."""
        return np.concatenate([self.particles, self.mask[..., None].astype(np.float32)], axis=-1)

    @property
    def num_particles(self) -> int:
        """P, the number of particle slots per jet."""
        return self.particles.shape[1]

    def __len__(self) -> int:
        return len(self.particles)

    def subset(self, index: np.ndarray | slice) -> JetSet:
        """The jets selected by ``index`` (integer array, boolean mask or slice)."""
        return JetSet(self.particles[index], self.mask[index], self.jets[index], self.jet_type[index], dict(self.attrs))


def infer_jet_type(*sets: JetSet) -> str | None:
    """The single jet class (g, q, t, w, z) of the first set whose jet_type column has one; None
    where none has (the one place pcbench decides a sample's jet class)."""
    for s in sets:
        types = np.unique(s.jet_type)
        if len(types) == 1 and types[0] >= 0:
            return JET_TYPES[int(types[0])]
    return None


@dataclass(frozen=True, eq=False)
class ShowerPointSet:
    """Calorimeter showers as point clouds.

    Attributes:
        points: (N, P, 4) float32: x, y, z and deposited energy E [MeV]; zero-padded at the end.
            x, y, z in the point convention of the showers' geometry: mm for layered grids (the
            ILD reader converts files that store y in layer units), for CaloChallenge voxel
            geometries x, y in mm and z the layer id.
        mask: (N, P) bool, True for real points (E > 0).
        incident_energy: (N,) float32, incident particle energy [MeV].
        attrs: provenance and ``y_unit``.
    """

    kind: ClassVar[str] = "point showers"  # in words, for messages

    points: np.ndarray
    mask: np.ndarray
    incident_energy: np.ndarray
    attrs: dict[str, Any] = field(default_factory=lambda: {"y_unit": "mm"})

    def __post_init__(self) -> None:
        _raise(checks.point_shower_problems(self.points, self.mask, self.incident_energy), "ShowerPointSet")

    def __len__(self) -> int:
        return len(self.points)

    def subset(self, index: np.ndarray | slice) -> ShowerPointSet:
        """The showers selected by ``index``."""
        return ShowerPointSet(self.points[index], self.mask[index], self.incident_energy[index], dict(self.attrs))


@dataclass(frozen=True, eq=False)
class VoxelShowerSet:
    """Calorimeter showers on a voxel geometry (the CaloChallenge layout).

    Attributes:
        voxels: (N, V) float32 energies [MeV], flattened in the order (layer, alpha bin, r bin).
        incident_energy: (N,) float32 [MeV].
        geometry: name of the voxel geometry (e.g. ``calochallenge-2``) or ``None``.
        attrs: provenance.
    """

    kind: ClassVar[str] = "voxel showers"  # in words, for messages

    voxels: np.ndarray
    incident_energy: np.ndarray
    geometry: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _raise(checks.voxel_shower_problems(self.incident_energy[:, None], self.voxels), "VoxelShowerSet")

    def __len__(self) -> int:
        return len(self.voxels)

    @property
    def num_voxels(self) -> int:
        """V, the number of voxels per shower."""
        return self.voxels.shape[1]

    def subset(self, index: np.ndarray | slice) -> VoxelShowerSet:
        """The showers selected by ``index``."""
        return VoxelShowerSet(self.voxels[index], self.incident_energy[index], self.geometry, dict(self.attrs))
