"""Projection throughput (points/s on one core) beside a naive np.histogramdd per shower; shower
simulation speed.

Run: .venv/bin/python benchmarks/projection.py [--points 1000,6000,40000] [--total 6000000]

Points are drawn shower-like (Gaussian around the axis, uniform over the layers) for the ILD
grid (sparse hits output) and CaloChallenge data sets 2 and 3 (dense voxels output).  Every
figure is the median of --repeat runs after a warm-up (numba's compile time excluded; it is
printed once), measured both as wall-clock and as this process's CPU time: "per core" is points
per CPU second, which on a shared machine is what one core delivers (the wall rate falls with
the load average, printed with each row).  The naive reference bins each shower with
np.histogramdd over (layer, alpha, r) or (layer, x, z) edges and is timed on a subset; its cells
agree with pcbench's (checked).  Memory traffic: the bytes read (16 per point, float32 x, y, z, E,
plus the mask) and written (the dense rows, 4 bytes per cell per shower, or 16 bytes per sparse
hit), as GB per CPU second, beside this machine's first-touch write bandwidth (np.ones of the
same size, measured in the same run) and its copy bandwidth.  "index" is the per-point cell rule
alone (``_kernels.index_points`` into a preallocated array): the bound on the whole projection
where the output costs nothing.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from pcbench.geometry import _kernels, get_geometry, project  # noqa: E402


def shower_points(geo, n: int, p: int, rng: np.random.Generator) -> np.ndarray:
    """(n, p, 4) float32 points in the geometry's convention."""
    r = np.abs(rng.standard_cauchy((n, p))) * 8.0  # a core and long tails, mm
    a = rng.uniform(-np.pi, np.pi, (n, p))
    e = rng.exponential(0.5, (n, p))
    if geo.name == "ild-ecal":
        depth = geo.layer_depths[rng.integers(0, geo.n_layers, (n, p))] + rng.uniform(-0.2, 0.2, (n, p))
        cols = [r * np.cos(a), depth, 40.0 + r * np.sin(a), e]
    else:
        cols = [r * np.cos(a), r * np.sin(a), rng.integers(0, geo.n_layers, (n, p)) + 0.5, e]
    return np.stack(cols, -1).astype(np.float32)


def naive(geo, pts: np.ndarray) -> np.ndarray:
    """One np.histogramdd per shower: (n, C) float64 cells (the reference)."""
    out = np.zeros((len(pts), geo.n_cells))
    if geo.name == "ild-ecal":
        _, nu, nv = geo.shape
        fronts = np.asarray(geo.layer_fronts)
        y_edges = np.sort(np.concatenate([fronts - geo.accept_below, fronts + geo.accept_above]))
        u_edges = geo.u_range[0] + np.arange(nu + 1) * geo.cell_size
        v_edges = geo.v_range[0] + np.arange(nv + 1) * geo.cell_size
        for i, s in enumerate(pts):
            h, _ = np.histogramdd(s[:, [1, 0, 2]], bins=(y_edges, u_edges, v_edges), weights=s[:, 3])
            out[i] = h[::2].ravel()  # every other depth bin is a gap between windows
        return out
    lay = geo.layers[0]
    n_a, r_edges = lay.n_alpha, np.asarray(lay.r_edges)
    l_edges = np.arange(geo.n_layers + 1)
    a_edges = np.linspace(-np.pi, np.pi, n_a + 1)
    for i, s in enumerate(pts):
        alpha = np.arctan2(s[:, 1].astype(np.float64), s[:, 0].astype(np.float64))
        r = np.sqrt(s[:, 0].astype(np.float64) ** 2 + s[:, 1].astype(np.float64) ** 2)
        h, _ = np.histogramdd(np.column_stack([s[:, 2], alpha, r]), bins=(l_edges, a_edges, r_edges), weights=s[:, 3])
        out[i] = h.ravel()
    return out


def timed(f, repeat: int) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds of ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        f()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return float(np.median(wall)), float(np.median(cpu))


def best(f, repeat: int) -> float:
    return timed(f, repeat)[0]


def bandwidth(nbytes: int, repeat: int) -> tuple[float, float]:
    """(first-touch write, copy) GB per CPU second for arrays of ``nbytes``."""
    first = timed(lambda: np.ones(nbytes // 4, np.float32), repeat)[1]
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    copy = timed(lambda: np.copyto(b, a), repeat)[1]
    return nbytes / first / 1e9, 2 * nbytes / copy / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", default="1000,6000,40000", help="points per shower")
    ap.add_argument("--total", type=int, default=6_000_000, help="points per measurement")
    ap.add_argument("--naive-total", type=int, default=600_000, help="points for the naive reference")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sim", type=int, default=400, help="showers per simulation measurement (0: skip)")
    ap.add_argument("--padded", type=int, default=400,
                    help="showers of 6,000 slots padded after U[50, 6,000) real points, per geometry (0: skip)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    project(shower_points(get_geometry("calochallenge-2"), 2, 10, rng), get_geometry("calochallenge-2"))
    project(shower_points(get_geometry("ild-ecal"), 2, 10, rng), get_geometry("ild-ecal"), output="sparse")
    print(f"numba load/compile (first call): {time.perf_counter() - t:.2f} s; one thread")
    print("M/s = million points per second; per core = per CPU second of this process; speed-up = naive / pcbench "
          "wall time (same run); traffic = bytes read + written per CPU second; index = M points/s per core of the cell rule alone")
    print(f"{'geometry':<17}{'cells':>7}{'output':>7}{'pts/sh':>7}{'M/s/core':>9}{'M/s wall':>9}{'naive M/s':>10}"
          f"{'speed-up':>9}{'GB/s':>6}{'1st-touch':>10}{'copy':>6}{'index':>7}{'load':>6}")
    for name, output in (("ild-ecal", "sparse"), ("calochallenge-2", "dense"), ("calochallenge-3", "dense")):
        geo = get_geometry(name)
        for p in (int(x) for x in args.points.split(",")):
            n = max(1, args.total // p)
            pts = shower_points(geo, n, p, rng)
            fast, fast_cpu = timed(lambda: project(pts, geo, output=output), args.repeat)
            xyz, cells = np.ascontiguousarray(pts.reshape(-1, 4)[:, :3]), np.empty(n * p, np.int64)
            index_cpu = timed(lambda: _kernels.index_points(xyz, *geo.kernel, cells), args.repeat)[1]
            load = os.getloadavg()[0]
            written = n * geo.n_cells * 4 if output == "dense" else 16 * n * p  # upper bound: every point a hit
            traffic = (n * p * 17 + written) / fast_cpu / 1e9
            touch, copy = bandwidth(max(written, 1 << 20), args.repeat)
            k = max(1, args.naive_total // p)
            slow = best(lambda: naive(geo, pts[:k]), 1)
            ref = naive(geo, pts[:k])
            got = project(pts[:k], geo, output="dense").cells
            assert np.allclose(got, ref, rtol=1e-5, atol=1e-5), f"{name}: pcbench and histogramdd disagree"
            f_rate, s_rate = n * p / fast / 1e6, k * p / slow / 1e6
            print(f"{name:<17}{geo.n_cells:>7}{output:>7}{p:>7}{n * p / fast_cpu / 1e6:>9.1f}{f_rate:>9.1f}{s_rate:>10.2f}"
                  f"{f_rate / s_rate:>8.0f}x{traffic:>6.1f}{touch:>10.1f}{copy:>6.1f}{n * p / index_cpu / 1e6:>7.1f}{load:>6.1f}")
    if args.padded:  # generator output: rows padded after their last real point
        for name, output in (("ild-ecal", "sparse"), ("calochallenge-2", "dense")):
            geo = get_geometry(name)
            pts = shower_points(geo, args.padded, 6000, rng)
            real = rng.integers(50, 6000, args.padded)
            pts[np.arange(6000)[None, :] >= real[:, None]] = 0.0
            cpu = timed(lambda: project(pts, geo, output=output), args.repeat)[1]
            print(f"padded {name} ({output}): {real.sum() / cpu / 1e6:.1f} M real points/s per core "
                  f"({real.mean() / 6000:.0%} of the slots real; load {os.getloadavg()[0]:.1f})")
    if args.sim:
        from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk

        for target in ("ild-photons", "calochallenge-2"):
            simulate_shower_chunk(SHOWER_TARGETS[target], 1, 2)
            dt = best(lambda: simulate_shower_chunk(SHOWER_TARGETS[target], 1, args.sim), 1)
            print(f"simulation {target}: {args.sim / dt:.1f} showers/s on one core ({args.sim} showers, {dt:.1f} s)")


if __name__ == "__main__":
    main()
