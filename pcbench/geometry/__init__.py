"""Cell geometries as data (CaloChallenge cylindrical voxels, layered grids such as the ILD ECal)
and the projection of point clouds onto them."""

from .base import GEOMETRIES, Geometry, get_geometry
from .cylindrical import CALOCHALLENGE_FILES, CylindricalGeometry, CylindricalLayer, calochallenge_geometry
from .grid import LayeredGrid
from .layers import LayerStack, layer_stack
from .projection import Hits, Projection, iter_project, project, to_points

__all__ = ["GEOMETRIES", "Geometry", "get_geometry", "CALOCHALLENGE_FILES", "CylindricalGeometry", "CylindricalLayer",
           "calochallenge_geometry", "LayeredGrid", "LayerStack", "layer_stack", "Hits", "Projection", "iter_project", "project", "to_points"]
