"""Cell geometries as data (CaloChallenge cylindrical voxels from the binning XMLs)."""

from .cylindrical import CALOCHALLENGE_FILES, CylindricalGeometry, CylindricalLayer, calochallenge_geometry

__all__ = ["CALOCHALLENGE_FILES", "CylindricalGeometry", "CylindricalLayer", "calochallenge_geometry"]
