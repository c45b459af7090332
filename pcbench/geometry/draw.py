"""Pictures of a geometry's layer (``pcbench geometry show NAME --png``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._plotting import pyplot, save_png
from .base import Geometry
from .cylindrical import CylindricalGeometry
from .grid import LayeredGrid

__all__ = ["draw_layer"]


def draw_layer(geometry: Geometry, layer: int, out: str | Path, values: np.ndarray | None = None) -> Path:
    """Draw the cells of one layer (position ``layer`` in the layer order) to a PNG.

    Args:
        values: optional (C,) per-cell values (e.g. a mean shower, MeV) shown in colour;
            default: a checkerboard that shows the cell edges.
    """
    if not 0 <= layer < geometry.n_layers:
        raise ValueError(f"layer {layer} out of range: {geometry.name} has layers 0..{geometry.n_layers - 1}")
    fig = pyplot().figure(figsize=(6, 5.2))
    if isinstance(geometry, LayeredGrid):
        _, nu, nv = geometry.shape
        sel = slice(layer * nu * nv, (layer + 1) * nu * nv)
        img = values[sel].reshape(nu, nv) if values is not None else np.add.outer(np.arange(nu), np.arange(nv)) % 2
        u_edges = geometry.u_range[0] + np.arange(nu + 1) * geometry.cell_size
        v_edges = geometry.v_range[0] + np.arange(nv + 1) * geometry.cell_size
        ax = fig.add_subplot()
        mesh = ax.pcolormesh(u_edges, v_edges, img.T, cmap="viridis" if values is not None else "Greys", vmax=None)
        axes = [a for k, a in enumerate("xyz") if k in geometry.plane_axes]
        ax.set_xlabel(f"{axes[0]} [mm]")
        ax.set_ylabel(f"{axes[1]} [mm]")
        ax.set_aspect("equal")
        title = f"{geometry.name}: layer {layer} (front at {geometry.layer_fronts[layer]:.2f} mm), {nu} x {nv} cells"
    else:
        assert isinstance(geometry, CylindricalGeometry)
        lay = geometry.layers[layer]
        ax = fig.add_subplot(projection="polar")
        if lay.n_voxels:
            a_edges = np.linspace(-np.pi, np.pi, lay.n_alpha + 1)
            start = geometry.layer_offsets[layer]
            img = (values[start:start + lay.n_voxels].reshape(lay.n_alpha, lay.n_r) if values is not None
                   else np.add.outer(np.arange(lay.n_alpha), np.arange(lay.n_r)) % 2)
            mesh = ax.pcolormesh(a_edges, np.asarray(lay.r_edges), img.T, cmap="viridis" if values is not None else "Greys",
                                 edgecolors="0.6", linewidth=0.3)
        title = f"{geometry.name}: layer id {lay.id}, {lay.n_alpha} alpha x {lay.n_r} r bins (r in mm)"
    if values is not None and "mesh" in locals():
        fig.colorbar(mesh, ax=ax, label="energy [MeV]")
    ax.set_title(title, fontsize=9)
    return save_png(fig, out, bbox_inches="tight")
