"""Which geometry showers are on, decided in one place for validation, evaluation and training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..geometry.cylindrical import GEOMETRY_OF_VOXEL_COUNT

__all__ = ["shower_geometry"]


def shower_geometry(attrs: Mapping[str, Any], num_voxels: int | None = None, registered: str | None = None,
                    points: str | None = "ild-ecal") -> str | None:
    """The geometry of showers: the registry's (``registered``), else the file's ``geometry``
    attribute, else, for voxel showers (``num_voxels`` given), the CaloChallenge geometry with that
    many voxels, else, for point showers, ``points`` (the ILD ECal; None where the layout does not
    say it); None when none of these tells."""
    named = registered or attrs.get("geometry")
    if isinstance(named, bytes):
        named = named.decode()
    if named:
        return str(named)
    return GEOMETRY_OF_VOXEL_COUNT.get(num_voxels) if num_voxels is not None else points
