"""The CaloClouds (II) shower observables on ILD cell hits, and their W1 scores.

Buhmann et al., CaloClouds II, arXiv:2309.05704; code ``FLC-QU-hep/CaloClouds-2``
(``utils/plotting.py``, ``utils/metrics.py``, ``evaluation/calc_metrics.ipynb``).  Observables are
computed on the cells after projection and the 0.1 MeV threshold:

* ``n_hits``, ``e_vis`` [MeV] and ``e_ratio`` = E_vis / E_inc;
* ``e_layer`` (N, 30) [MeV] and its 10 groups of layers with edges
  ``LAYER_EDGES`` = [0, 8, 11, 13, 15, 16, 18, 19, 21, 24, 29] (groups [e_i, e_i+1), the last one
  including layer 29);
* radial energies in 10 rings of the distance of the cell centre to the incident point (x, z) =
  (0, 40) mm, edges ``RADIAL_EDGES`` [mm], ring [lo, hi);
* the centre of gravity ``cog_x``, ``cog_y`` (depth), ``cog_z`` [mm] of the hits (the paper's
  m1,X, m1,Z and m1,Y: its Y is ILD's z);
* the cell energies, ordered by shower, layer, x and z cell as the reference loops over them.
"""

from __future__ import annotations

import numpy as np

from ..geometry.grid import LayeredGrid
from ..geometry.projection import Hits
from . import wasserstein

__all__ = ["LAYER_EDGES", "RADIAL_EDGES", "ORIGIN_MM", "SCORE_COLUMNS", "ild_observables", "observable_matrix",
           "w1_scores"]

LAYER_EDGES = (0, 8, 11, 13, 15, 16, 18, 19, 21, 24, 29)
RADIAL_EDGES = (0.0, 6.558, 9.849, 12.96, 17.028, 23.434, 33.609, 40.119, 48.491, 68.808, 300.0)
ORIGIN_MM = (0.0, 40.0)  # (x, z) of the incident point (the reference's cfg.origin)

#: columns of ``observable_matrix``, in the reference's order (get_event_observables_from_dict)
SCORE_COLUMNS = (("cog_x",), ("cog_y",), ("cog_z",), ("n_hits",), ("e_ratio",), ("e_cell",),
                 tuple(f"e_long_{i}" for i in range(10)), tuple(f"e_radial_{i}" for i in range(10)))


def ild_observables(hits: Hits, incident_energy: np.ndarray, grid: LayeredGrid) -> dict[str, np.ndarray]:
    """Per-shower observables (see the module docstring) of N showers' hits [MeV], E_inc (N,) [MeV]."""
    n = len(hits)
    order = np.lexsort((hits.cell, hits.shower))  # the reference's order: layer, x cell, z cell
    shower, cell, e = hits.shower[order], hits.cell[order], hits.energy[order]
    centres = grid.cell_centres[cell]
    layer = grid.cell_layer[cell]
    e_vis = np.bincount(shower, weights=e, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        cog = {f"cog_{a}": np.bincount(shower, weights=e * centres[:, k], minlength=n) / e_vis for k, a in enumerate("xyz")}
    e_layer = np.zeros((n, grid.n_layers))
    np.add.at(e_layer, (shower, layer), e)
    u, v = grid.plane_axes
    dist = np.hypot(centres[:, u] - ORIGIN_MM[0], centres[:, v] - ORIGIN_MM[1])
    ring = np.searchsorted(np.asarray(RADIAL_EDGES), dist, side="right") - 1
    inside = (ring >= 0) & (ring < len(RADIAL_EDGES) - 1)
    e_radial = np.zeros((n, len(RADIAL_EDGES) - 1))
    np.add.at(e_radial, (shower[inside], ring[inside]), e[inside])
    groups = [e_layer[:, a:b + (1 if b == LAYER_EDGES[-1] else 0)].sum(1) for a, b in zip(LAYER_EDGES[:-1], LAYER_EDGES[1:])]
    return {"n_hits": hits.counts.astype(np.float64), "e_vis": e_vis, "e_ratio": e_vis / incident_energy,
            "e_layer": e_layer, "e_long": np.column_stack(groups), "e_radial": e_radial, "e_cell": e, **cog}


def observable_matrix(obs: dict[str, np.ndarray]) -> np.ndarray:
    """(N, 26) the scored observables in ``SCORE_COLUMNS`` order; E_cell takes the first N cell
    energies (the reference's ``hits[0:len(cog_x)]``)."""
    n = len(obs["n_hits"])
    cells = obs["e_cell"][:n]
    if len(cells) < n:
        cells = np.concatenate([cells, np.full(n - len(cells), np.nan)])
    return np.column_stack([obs["cog_x"], obs["cog_y"], obs["cog_z"], obs["n_hits"], obs["e_ratio"], cells,
                            obs["e_long"], obs["e_radial"]])


def w1_scores(real: np.ndarray, gen: np.ndarray, batches: int = 5, batch_size: int = 10_000,
              normalisation: str = "max") -> dict[str, tuple[float, float]]:
    """The CaloClouds II W1 table: {score: (mean, std)} between two ``observable_matrix`` arrays.

    Each column is normalised with the real sample's statistics (``max``: divided by the real
    maximum of |x|, as the reference's comment says; ``standardise``: (x - mean) / std, as its
    released notebook does); W1 on ``batches`` consecutive batches of ``batch_size`` rows, mean
    and std; the grouped scores (E_long, E_radial) are the mean of their 10 means with the stds
    added in quadrature.

    Empty showers are part of the sample: their hit count and energies are zero.  Only what is
    undefined for them (the centre of gravity; E_cell past the last hit) is left out, column by
    column; a column with fewer than ``batches x batch_size`` defined rows in either sample uses
    the largest batch that fits (``w1_batch_sizes`` tells which), and a column with fewer than
    ``batches`` defined rows scores NaN.
    """
    if normalisation not in ("max", "standardise"):
        raise ValueError(f"normalisation must be 'max' or 'standardise', got {normalisation!r}")
    means, stds = np.full(real.shape[1], np.nan), np.full(real.shape[1], np.nan)
    for k in range(real.shape[1]):
        r, g = real[:, k][np.isfinite(real[:, k])], gen[:, k][np.isfinite(gen[:, k])]
        bs = min(batch_size, min(len(r), len(g)) // batches)
        if bs < 1:
            continue
        if normalisation == "max":
            scale = np.abs(r).max()
            shift, scale = 0.0, scale if scale > 0 else 1.0
        else:
            shift, scale = r.mean(), r.std() if r.std() > 0 else 1.0
        r, g = (r - shift) / scale, (g - shift) / scale
        vals = [wasserstein.w1(r[i:i + bs], g[i:i + bs]) for i in range(0, batches * bs, bs)]
        means[k], stds[k] = np.mean(vals), np.std(vals)
    names = ["cog_x", "cog_y", "cog_z", "n_hits", "e_ratio", "e_cell"]
    out = {name: (float(means[k]), float(stds[k])) for k, name in enumerate(names)}
    for name, sl in (("e_long", slice(6, 16)), ("e_radial", slice(16, 26))):
        out[name] = (float(np.mean(means[sl])), float(np.sqrt(np.sum(stds[sl] ** 2))))
    return out
