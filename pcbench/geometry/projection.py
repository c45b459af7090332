"""Points <-> cells for any geometry, vectorised over all points of a chunk of showers.

``project`` sums point energies per cell (no Python loop over showers or layers: compiled single
passes over the points of each chunk), applies the cell threshold, and counts what falls outside
the geometry; chunks bound the memory.  Sparse hits come per shower in the order of each
cell's first point.  ``to_points`` turns cells back into points.  For centre
placement ``project(to_points(v)) == v`` exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._arrays import slots
from . import _kernels
from .base import Geometry

__all__ = ["Hits", "Projection", "project", "iter_project", "to_points"]


@dataclass(frozen=True)
class Hits:
    """Sparse cell hits of N showers (compressed rows).

    Attributes:
        offsets: (N + 1,) int64; shower ``i`` owns entries ``offsets[i]:offsets[i + 1]``.
        cell: (M,) int64 flattened cell index.
        energy: (M,) float64 cell energy [MeV].
    """

    offsets: np.ndarray
    cell: np.ndarray
    energy: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        """(N,) hits per shower."""
        return np.diff(self.offsets)

    @property
    def shower(self) -> np.ndarray:
        """(M,) shower index of each hit."""
        return np.repeat(np.arange(len(self)), self.counts)

    def padded(self, geometry: Geometry, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(N, H, 4) float32 hits as points at cell centres (x, y, z, E [MeV]), zero-padded; (N, H) mask."""
        counts = self.counts
        h = int(counts.max(initial=0)) if width is None else width
        slot = slots(counts)
        keep = slot < h
        out = np.zeros((len(self), h, 4), dtype=np.float32)
        rows = self.shower[keep]
        out[rows, slot[keep], :3] = geometry.cell_centres[self.cell[keep]]
        out[rows, slot[keep], 3] = self.energy[keep]
        return out, np.arange(h)[None, :] < np.minimum(counts, h)[:, None]


@dataclass(frozen=True)
class Projection:
    """What ``project`` returns for N showers (energies in MeV).

    Attributes:
        cells: (N, C) float32 dense cell energies (``output="dense"``), else None.
        hits: sparse hits (``output="sparse"``), else None.
        outside_energy: (N,) energy of points outside the geometry.
        outside_points: (N,) number of such points.
        below_threshold_energy: (N,) energy of the cells the threshold removed.
    """

    cells: np.ndarray | None
    hits: Hits | None
    outside_energy: np.ndarray
    outside_points: np.ndarray
    below_threshold_energy: np.ndarray


def _chunks(counts: np.ndarray, max_points: int, max_showers: int) -> Iterator[tuple[int, int]]:
    """Consecutive shower ranges with at most ``max_points`` points (or one shower) and ``max_showers`` showers."""
    n, a = len(counts), 0
    cum = np.concatenate([[0], np.cumsum(counts)])
    while a < n:
        b = int(np.searchsorted(cum, cum[a] + max_points, side="right")) - 1
        b = min(max(b, a + 1), a + max_showers, n)
        yield a, b
        a = b


def iter_project(points: np.ndarray, geometry: Geometry, mask: np.ndarray | None = None, threshold: float = 0.0,
                 output: Literal["dense", "sparse"] = "dense", chunk_points: int = 1 << 20,
                 ) -> Iterator[tuple[slice, Projection]]:
    """``project`` chunk by chunk: yields ``(showers slice, Projection of those showers)``."""
    return _project_chunks(points, geometry, _mask(points, mask, output), threshold, output, chunk_points)


def _mask(points: np.ndarray, mask: np.ndarray | None, output: str) -> np.ndarray:
    """The (N, P) contiguous mask of real points (default E > 0), after checking the arguments."""
    if points.ndim != 3 or points.shape[-1] != 4:
        raise ValueError(f"points: shape {points.shape}, expected (N, P, 4) = (x, y, z, E)")
    if output not in ("dense", "sparse"):
        raise ValueError(f"output must be 'dense' or 'sparse', got {output!r}")
    return np.ascontiguousarray(points[..., 3] > 0 if mask is None else mask)


def _project_chunks(points: np.ndarray, geometry: Geometry, mask: np.ndarray, threshold: float, output: str,
                    chunk_points: int, into: np.ndarray | None = None,
                    hits_into: tuple[np.ndarray, np.ndarray] | None = None) -> Iterator[tuple[slice, Projection]]:
    """The chunks of ``iter_project``.  Dense rows go into ``into`` (N, C) zeros where given (one
    allocation, no copies), else into a fresh (n, C) array per chunk; the kernel writes only the
    touched cells of each row.  Sparse hits go into ``hits_into`` (cell, energy) of (M,) entries,
    M the number of real points, where given: each chunk's hits are views into it at the running
    hit count (a chunk of m points writes at most m entries); else into fresh arrays per chunk.

    Large buffers are allocated once per call where they can be (a fresh large array costs a page
    fault per 4 KB on its first touch, a third of the time at few points per shower): the
    reused dense buffer, and for dense output the kernel's hit lists (scratch there), sized to
    the largest chunk."""
    c = geometry.n_cells
    counts = mask.sum(axis=1)
    max_showers = (1 << 26) // c if output == "dense" and into is None else len(points)  # dense chunks: <= 256 MB
    chunks = [(a, b, int(counts[a:b].sum())) for a, b in _chunks(counts, chunk_points, max(1, max_showers))]
    if output == "dense":
        m_max = max((m for _, _, m in chunks), default=0)
        hits_into = (np.empty(m_max, np.int64), np.empty(m_max))
    buf, touched = np.zeros(c), np.zeros(c, dtype=np.uint8)
    scratch = np.empty(points.shape[1], np.int64)
    rule = geometry.kernel
    start = 0  # sparse into hits_into: the hits written so far
    for a, b, m in chunks:
        n = b - a
        pts = np.ascontiguousarray(points[a:b], dtype=np.float32)
        out_e, out_n, removed = np.zeros(n), np.zeros(n, np.int64), np.zeros(n)
        if hits_into is None:
            hit_cell, hit_e = np.empty(m, np.int64), np.empty(m)
        else:
            hit_cell, hit_e = hits_into[0][start:start + m], hits_into[1][start:start + m]
        hits = np.zeros(n, np.int64)
        cells = _NO_ROWS
        if output == "dense":
            cells = np.zeros((n, c), dtype=np.float32) if into is None else into[a:b]
        h = _kernels.project_sparse(pts, mask[a:b], *rule, buf, touched, threshold,
                                    hit_cell, hit_e, hits, removed, out_e, out_n, cells, scratch)
        if output == "dense":
            yield slice(a, b), Projection(cells, None, out_e, out_n, removed)
            continue
        if hits_into is None:
            keep = (lambda x: x) if h == m else (lambda x: x[:h].copy())
        else:
            keep, start = (lambda x: x[:h]), start + h
        hit = Hits(np.concatenate([[0], np.cumsum(hits)]), keep(hit_cell), keep(hit_e))
        yield slice(a, b), Projection(None, hit, out_e, out_n, removed)


_NO_ROWS = np.zeros((0, 0), dtype=np.float32)


def project(points: np.ndarray, geometry: Geometry, mask: np.ndarray | None = None, threshold: float = 0.0,
            output: Literal["dense", "sparse"] = "dense", chunk_points: int = 1 << 20) -> Projection:
    """Project point-cloud showers onto the cells of ``geometry``.

    Args:
        points: (N, P, 4) = (x, y, z, E [MeV]) in the geometry's point convention (mm for
            layered grids; x, y [mm] and z = layer id for CaloChallenge voxels).
        mask: (N, P) bool, real points; default ``E > 0``.
        threshold: cells with less summed energy [MeV] are dropped (kept: E >= threshold).
        output: ``dense`` (N, C) cell arrays (the CaloChallenge layout) or ``sparse`` hits (the
            ILD layout: ``Projection.hits``, ``Hits.padded`` gives cell-centre points).
        chunk_points: points per chunk (bounds the memory; ``iter_project`` streams chunks).

    Energy of points inside the geometry is conserved: ``cells.sum() + below_threshold_energy
    == sum of the inside points' E`` (summed in float64).
    """
    mask = _mask(points, mask, output)
    dense = output == "dense"
    cells = np.zeros((len(points), geometry.n_cells), np.float32) if dense else None
    m = 0 if dense else int(np.count_nonzero(mask))
    hit_buf = None if dense else (np.empty(m, np.int64), np.empty(m))
    parts = list(_project_chunks(points, geometry, mask, threshold, output, chunk_points, cells, hit_buf))
    cat = (lambda k: np.concatenate([getattr(p, k) for _, p in parts])) if parts else (lambda k: np.zeros(0))
    hits = None
    if not dense:  # the chunks' hits lie one after the other in hit_buf: no concatenation
        counts = np.concatenate([p.hits.counts for _, p in parts]) if parts else np.zeros(0, np.int64)
        n_hits = int(counts.sum())
        trim = (lambda x: x[:n_hits]) if 2 * n_hits >= m else (lambda x: x[:n_hits].copy())  # at most 2x the hits' memory
        hits = Hits(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), trim(hit_buf[0]), trim(hit_buf[1]))
    return Projection(cells, hits, cat("outside_energy"), cat("outside_points"), cat("below_threshold_energy"))


def to_points(cells: np.ndarray, geometry: Geometry, points_per_cell: int = 1,
              placement: Literal["centre", "uniform"] = "centre", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each non-zero cell becomes points carrying its energy (CaloChallenge voxels as point clouds).

    Args:
        cells: (N, C) cell energies [MeV] in the geometry's order.
        points_per_cell: k points per non-zero cell, each with 1/k of its energy.
        placement: ``centre`` (all k at the cell centre) or ``uniform`` (uniform inside the cell,
            ``numpy.random.default_rng(seed)``).

    Returns:
        points (N, P, 4) float32 = (x, y, z, E [MeV]) in the geometry's point convention,
        zero-padded, P = k times the largest number of non-zero cells of a shower, cells in file
        order; mask (N, P).
    """
    if cells.ndim != 2 or cells.shape[1] != geometry.n_cells:
        raise ValueError(f"cells: shape {cells.shape}, expected (N, {geometry.n_cells}) for {geometry.name}")
    if placement not in ("centre", "uniform") or points_per_cell < 1:
        raise ValueError("placement must be 'centre' or 'uniform' and points_per_cell >= 1")
    k = points_per_cell
    nonzero = cells != 0
    counts = nonzero.sum(axis=1) * k
    rows, cols = np.nonzero(nonzero)
    rows, cols = np.repeat(rows, k), np.repeat(cols, k)
    energy = np.repeat(cells[nonzero], k).astype(np.float64) / k
    slot = slots(counts)
    xyz = geometry.cell_centres[cols]
    if placement == "uniform":
        spread = geometry.sample_in_cells(cols, np.random.default_rng(seed)).astype(np.float32)
        ok = geometry.cell_index(spread) == cols  # a draw that float32 rounds over an edge stays at the centre
        xyz = np.where(ok[:, None], spread, xyz)
    points = np.zeros((len(cells), int(counts.max(initial=0)), 4), dtype=np.float32)
    points[rows, slot, :3] = xyz
    points[rows, slot, 3] = energy
    return points, np.arange(points.shape[1])[None, :] < counts[:, None]
