"""Offline calorimeter showers from the parameterised model (``pcbench simulate ild-photons`` and
``pcbench simulate calochallenge-2``), in the layouts of the real data sets.

* ``ild-photons``: photons of 10-90 GeV (uniform) along +y into the ILD ECal grid at
  (x, z) = (0, 40) mm; the spots' visible energies (deposit x the layer's sampling fraction)
  are clustered on the 6x6-finer sub-cell grid ("x36") per Si layer, as the CaloClouds training
  files are; written in the ILD layout (``events`` (N, 4, 6000) with y in layer units and E in
  GeV, ``energy`` (N, 1) GeV).
* ``calochallenge-2``: electrons of 1 GeV - 1 TeV (log-uniform) along the axis of the data set 2
  geometry (one voxel layer = 2 x 1.4 mm W = 0.8 X0); the deposited energy is summed per voxel
  and written in the data-set-2 layout (``incident_energies`` (N, 1), ``showers`` (N, 6480), MeV).

See ``docs/simulation-showers.md`` for the model, its parameters and its limits.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..._arrays import slots
from ...geometry import get_geometry
from ...geometry.grid import LayeredGrid
from ..containers import ShowerPointSet, VoxelShowerSet
from .chunks import load_chunk, output_run, run_chunk_files
from .gflash import ShowerModel, draw_showers, sample_spots

__all__ = ["ShowerTarget", "SHOWER_TARGETS", "simulate_showers", "simulate_shower_chunk"]

#: the note every file and table made from these showers carries
LABEL = "PARAMETERISED showers (GFlash-type model, pcbench), not Geant4"


@dataclass(frozen=True)
class ShowerTarget:
    """What to simulate and where it lands.

    Attributes:
        name: the data set it imitates.
        geometry: cell geometry name.
        model: the shower model.
        energy_range: incident energies [MeV].
        log_uniform: log-uniform (else uniform) incident energies.
        entry_point: (u, v) of the shower axis in the plane of the cells [mm].
        subcells: sub-cells per cell side for the clustered points (layered grids).
        max_points: point slots per shower (layered grids).
        sampling_fraction: visible / deposited energy behind a 2.1 mm W plate (layered grids;
            a layer behind a plate of w mm samples 2.1 / w times that).
        layer_x0: radiation lengths per voxel layer (cylindrical geometries).
    """

    name: str
    geometry: str
    model: ShowerModel
    energy_range: tuple[float, float]
    log_uniform: bool = False
    entry_point: tuple[float, float] = (0.0, 0.0)
    subcells: int = 6
    max_points: int = 6000
    sampling_fraction: float = 0.0235
    layer_x0: float = 2.8 / 3.504
    extra: dict[str, Any] = field(default_factory=dict)


SHOWER_TARGETS = {
    "ild-photons": ShowerTarget("ild-photons", "ild-ecal", ShowerModel(particle="photon", stochastic=0.166, spot_shape=0.35),
                                (10_000.0, 90_000.0), entry_point=(0.0, 40.0)),
    "calochallenge-2": ShowerTarget("calochallenge-2", "calochallenge-2",
                                    ShowerModel(particle="electron", stochastic=0.15, spot_shape=0.5),
                                    (1_000.0, 1_000_000.0), log_uniform=True),
}


def _incident_energies(target: ShowerTarget, n: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = target.energy_range
    if target.log_uniform:
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return rng.uniform(lo, hi, n)


def _grid_layers(grid: LayeredGrid, x0: float, sampling_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth segment edges [X0] of the grid's layers and each layer's sampling fraction.

    Layer i sits behind ``sum(absorber_before[:i+1])`` mm of absorber; it collects the spots
    between the midpoints to its neighbours (the last one: half a plate behind it).
    """
    w = np.asarray(grid.absorber_before, dtype=float)
    depth = np.cumsum(w) / x0
    after = np.append(depth[1:], depth[-1] + w[-1] / x0)
    edges = np.concatenate([[0.0], (depth + after) / 2])
    width_mm = np.diff(edges) * x0
    return edges, sampling_fraction * 2.1 / width_mm


def _ild_chunk(target: ShowerTarget, seed: int, n: int) -> dict[str, np.ndarray]:
    grid = get_geometry(target.geometry)
    assert isinstance(grid, LayeredGrid)
    rng = np.random.default_rng(seed)
    m = target.model
    energy = _incident_energies(target, n, rng)
    edges, sf = _grid_layers(grid, m.material.x0, target.sampling_fraction)
    spots = sample_spots(draw_showers(energy, m, rng), m, rng, max_depth=edges[-1])
    layer = np.searchsorted(edges, spots["depth"], side="right") - 1
    vis = spots["energy"] * sf[layer]
    u = target.entry_point[0] + spots["r"] * np.cos(spots["phi"])
    v = target.entry_point[1] + spots["r"] * np.sin(spots["phi"])
    sub = grid.cell_size / target.subcells
    _, nu, nv = grid.shape
    iu = np.floor((u - grid.u_range[0]) / sub).astype(np.int64)
    iv = np.floor((v - grid.v_range[0]) / sub).astype(np.int64)
    nu, nv = nu * target.subcells, nv * target.subcells
    inside = (iu >= 0) & (iu < nu) & (iv >= 0) & (iv < nv)
    key = ((spots["shower"] * grid.n_layers + layer) * nu + iu) * nv + iv
    key, inverse = np.unique(key[inside], return_inverse=True)  # clustering: one point per sub-cell
    e = np.bincount(inverse, weights=vis[inside])
    iv, rest = key % nv, key // nv
    iu, rest = rest % nu, rest // nu
    layer, shower = rest % grid.n_layers, rest // grid.n_layers
    counts = np.bincount(shower, minlength=n)
    if counts.max(initial=0) > target.max_points:  # keep the most energetic points of a crowded shower
        order = np.lexsort((-e, shower))
        rank = np.empty_like(order)
        rank[order] = slots(counts)
        keep = rank < target.max_points
        iu, iv, layer, shower, e = iu[keep], iv[keep], layer[keep], shower[keep], e[keep]
        counts = np.bincount(shower, minlength=n)
    slot = slots(counts)
    points = np.zeros((n, target.max_points, 4), dtype=np.float32)
    depth_axis = "xyz".index(grid.depth_axis)
    ua, va = grid.plane_axes
    points[shower, slot, ua] = grid.u_range[0] + (iu + 0.5) * sub
    points[shower, slot, va] = grid.v_range[0] + (iv + 0.5) * sub
    points[shower, slot, depth_axis] = grid.layer_depths[layer]
    points[shower, slot, 3] = e
    return {"points": points, "incident_energy": energy.astype(np.float32),
            "leaked_mev": np.bincount(spots["shower"][~inside], weights=spots["energy"][~inside], minlength=n)}


def _voxel_chunk(target: ShowerTarget, seed: int, n: int) -> dict[str, np.ndarray]:
    geo = get_geometry(target.geometry)
    rng = np.random.default_rng(seed)
    m = target.model
    energy = _incident_energies(target, n, rng)
    spots = sample_spots(draw_showers(energy, m, rng), m, rng, max_depth=geo.n_layers * target.layer_x0)
    xyz = np.column_stack([target.entry_point[0] + spots["r"] * np.cos(spots["phi"]),
                           target.entry_point[1] + spots["r"] * np.sin(spots["phi"]),
                           np.floor(spots["depth"] / target.layer_x0) + 0.5])
    cell = geo.cell_index(xyz)
    inside = cell >= 0
    voxels = np.bincount(spots["shower"][inside] * geo.n_cells + cell[inside], weights=spots["energy"][inside],
                         minlength=n * geo.n_cells).reshape(n, geo.n_cells)
    return {"voxels": voxels.astype(np.float32), "incident_energy": energy.astype(np.float32),
            "leaked_mev": np.bincount(spots["shower"][~inside], weights=spots["energy"][~inside], minlength=n)}


def simulate_shower_chunk(target: ShowerTarget, seed: int, n: int) -> dict[str, np.ndarray]:
    """``n`` showers of ``target`` from ``seed`` (a chunk of ``simulate_showers``)."""
    if isinstance(get_geometry(target.geometry), LayeredGrid):
        return _ild_chunk(target, seed, n)
    return _voxel_chunk(target, seed, n)


def simulate_showers(target: str | ShowerTarget, n: int, out: str | Path, seed: int = 1, workers: int = 1,
                     resume: bool = False, chunk_size: int = 100, progress: bool = True) -> Path:
    """Simulate ``n`` parameterised showers and write them to ``out`` in the target's layout.

    Same (target, n, seed, chunk_size): same bytes, whatever ``workers`` is.  The run holds the
    lock of ``out``: a concurrent run into it is refused (``RunLockedError``).
    """
    t = SHOWER_TARGETS[target] if isinstance(target, str) else target
    out = Path(out)
    settings = {"kind": "showers", "target": t.name, "n": n, "model": t.model.as_attrs(),
                "energy_range_mev": list(t.energy_range), "log_uniform": t.log_uniform,
                "entry_point_mm": list(t.entry_point), "subcells": t.subcells, "max_points": t.max_points,
                "sampling_fraction": t.sampling_fraction, "layer_x0": t.layer_x0}
    with output_run(out) as work:
        files = run_chunk_files(functools.partial(simulate_shower_chunk, t), n, seed, work, settings,
                                chunk_size=chunk_size, workers=workers, resume=resume,
                                description=f"parameterised {t.name} showers", progress=progress)
        _write_showers(out, t, files, seed, chunk_size, settings)
        shutil.rmtree(work, ignore_errors=True)
    return out


def _write_showers(out: Path, t: ShowerTarget, files: list[Path], seed: int, chunk_size: int,
                   settings: dict[str, Any]) -> None:
    """Write the chunks' showers (one chunk in memory at a time) with their provenance."""
    from .. import formats

    leaked = np.concatenate([load_chunk(p, ("leaked_mev",))["leaked_mev"] for p in files])
    attrs = {"source": LABEL, "parameterised": True, "simulator": "pcbench GFlash-type parameterised EM showers",
             "seed": seed, "chunk_size": chunk_size, "settings": settings, "geometry": t.geometry,
             "mean_leaked_energy_mev": float(leaked.mean())}

    def parts() -> Iterator[ShowerPointSet | VoxelShowerSet]:  # one chunk in memory at a time
        for p in files:
            a = load_chunk(p)
            if "voxels" in a:
                yield VoxelShowerSet(a["voxels"], a["incident_energy"], t.geometry)
            else:
                yield ShowerPointSet(a["points"], a["points"][..., 3] > 0, a["incident_energy"], {"y_unit": "mm"})

    formats.write_showers(out, parts(), attrs, compression="gzip", layout="ild" if isinstance(get_geometry(t.geometry), LayeredGrid) else None)
