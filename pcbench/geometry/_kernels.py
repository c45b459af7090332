"""Compiled loops of the projection (numba): one pass over the points, no temporaries.

numba compiles these on first use and caches the machine code beside this file; each loop is
the plain statement of a rule documented in ``cylindrical``, ``grid`` and ``projection``, and the
tests check every one against an independent numpy implementation.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_JIT = {"nogil": True, "cache": True}


@numba.njit(inline="always", **_JIT)
def pseudo_angle(x: float, y: float) -> float:
    """A monotonic stand-in for atan2(y, x) on (-2, 2] (the "diamond angle"); 2 on the negative x axis."""
    a = abs(x) + abs(y)
    if a == 0.0:
        return 0.0
    p = 1.0 - x / a
    return p if y > 0.0 or (y == 0.0 and x < 0.0) else -p


# Both geometries hand their rule's parameters to the loops in one signature of plain arrays,
# (iv, fv, i1, i2, i3, f1, f2), so that one compiled, cached loop serves both (tuples of arrays
# would cost reference counting per point, and a loop taking the cell function as an argument
# is recompiled in every process).
CYLINDRICAL, GRID = 0, 1


@numba.njit(inline="always", **_JIT)
def cylindrical_cell(x, y, z, iv, fv, i1, i2, i3, f1, f2):  # pragma: no cover
    """Voxel of one point (x, y, layer id), or -1: r and the pseudo-angle each by lookup table plus
    exact edge comparisons (no search, no atan2, no data-dependent loop).

    iv = layer position by layer id; fv = (1 / r step, 1 / pseudo-angle step); i1 = (n_r, n_alpha,
    first voxel) per layer; i2, i3 = r and pseudo-angle lookup tables; f1, f2 = r and pseudo-angle
    edges.  The lookup is only a first guess, so it multiplies by the reciprocal steps (no
    division): edges are at least two lookup steps apart, so a guess one lookup bin off either way
    (a product that rounds across a multiple of the step) is still at most one bin off, which the
    two exact comparisons correct.
    """
    zf = math.floor(z)
    if not (zf >= 0 and zf < iv.shape[0]):
        return -1
    k = iv[int(zf)]
    if k < 0:
        return -1
    r = math.sqrt(x * x + y * y)
    q = int(r * fv[0])
    if q >= i2.shape[1]:
        return -1
    n_r = i1[0, k]
    rb = i2[k, q]
    rb += r >= f1[k, rb + 1]  # a lookup bin holds at most one edge ...
    rb -= r < f1[k, rb]       # ... and this guards the rounding of r / step
    if rb < 0 or rb >= n_r:
        return -1
    p = pseudo_angle(x, y)
    ab = i3[k, min(int((p + 2.0) * fv[1]), i3.shape[1] - 1)]
    ab += p >= f2[k, ab + 1]
    ab -= p < f2[k, ab]
    if ab >= i1[1, k]:  # alpha = pi wraps to -pi
        ab = 0
    return i1[2, k] + ab * n_r + rb


@numba.njit(inline="always", **_JIT)
def grid_cell(x, y, z, iv, fv, i1, i2, i3, f1, f2):  # pragma: no cover
    """Cell of one point of a layered grid, or -1: the layer window by lookup table plus exact
    bounds, then floor((u - u0) / cell) and floor((v - v0) / cell).

    iv = (depth axis, u axis, v axis, nu, nv); fv = (lookup start, lookup step, u0, v0, cell);
    i1[0] = the depth lookup table; f1 = (window low ends, window high ends).
    """
    d = x if iv[0] == 0 else (y if iv[0] == 1 else z)
    u = x if iv[1] == 0 else (y if iv[1] == 1 else z)
    v = x if iv[2] == 0 else (y if iv[2] == 1 else z)
    qf = math.floor((d - fv[0]) / fv[1])
    if not (qf >= 0 and qf < i1.shape[1]):
        return -1
    k = i1[0, int(qf)]
    if k < 0 or d < f1[0, k] or d > f1[1, k]:
        return -1
    a = math.floor((u - fv[2]) / fv[4])
    b = math.floor((v - fv[3]) / fv[4])
    if a < 0 or a >= iv[3] or b < 0 or b >= iv[4]:
        return -1
    return (k * iv[3] + int(a)) * iv[4] + int(b)


@numba.njit(inline="always", **_JIT)
def cell(kind, x, y, z, iv, fv, i1, i2, i3, f1, f2):  # pragma: no cover
    """The cell of one point in a geometry of ``kind``."""
    if kind == CYLINDRICAL:
        return cylindrical_cell(x, y, z, iv, fv, i1, i2, i3, f1, f2)
    return grid_cell(x, y, z, iv, fv, i1, i2, i3, f1, f2)


@numba.njit(**_JIT)
def index_points(xyz, kind, iv, fv, i1, i2, i3, f1, f2, out):  # pragma: no cover
    """out[i] = the cell of point i, for points (n, 3)."""
    for i in range(xyz.shape[0]):
        out[i] = cell(kind, np.float64(xyz[i, 0]), np.float64(xyz[i, 1]), np.float64(xyz[i, 2]), iv, fv, i1, i2, i3, f1, f2)


@numba.njit(**_JIT)
def project_sparse(points, mask, kind, iv, fv, i1, i2, i3, f1, f2, buf, touched, threshold, out_cell, out_energy, counts, removed,
                   outside_e, outside_n, dense, scratch):  # pragma: no cover
    """Per shower: sum E per cell in the reused dense buffer ``buf`` (C,), then emit the touched
    cells in the order of their first point (those >= threshold) and reset them.  Returns the
    number of hits written.  With ``dense`` of shape (n, C) (zeros; (0, 0): none) the kept cells
    are also written there as float32, row s for shower s: only the touched cells are written.

    Two passes per shower, up to its last real point (trailing padding is not visited): the cells
    of its points into ``scratch`` (P,) int64 (-2: masked), a loop without dependences between
    points that the compiler vectorises where the rule allows (the grid's), then the sums in point
    order (the same additions in the same order as one pass)."""
    write_dense = dense.shape[0] > 0
    h = 0
    for s in range(points.shape[0]):
        end = points.shape[1]  # padding after the last real point is not visited
        while end > 0 and not mask[s, end - 1]:
            end -= 1
        for p in range(end):
            c = cell(kind, np.float64(points[s, p, 0]), np.float64(points[s, p, 1]), np.float64(points[s, p, 2]),
                     iv, fv, i1, i2, i3, f1, f2)
            scratch[p] = c if mask[s, p] else -2
        nt = 0
        for p in range(end):
            c = scratch[p]
            if c < 0:
                if c == -1:
                    outside_e[s] += np.float64(points[s, p, 3])
                    outside_n[s] += 1
                continue
            if touched[c] == 0:
                touched[c] = 1
                out_cell[h + nt] = c
                nt += 1
            buf[c] += np.float64(points[s, p, 3])
        kept = 0
        for j in range(nt):
            c = out_cell[h + j]
            e = buf[c]
            if e >= threshold:
                out_cell[h + kept] = c
                out_energy[h + kept] = e
                kept += 1
                if write_dense:
                    dense[s, c] = e
            else:
                removed[s] += e
            buf[c] = 0.0
            touched[c] = 0
        counts[s] = kept
        h += kept
    return h
