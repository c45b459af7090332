"""FPD and KPD: pcbench against jetnet 0.2.5's own functions, on the same features, in one process.

The CaloChallenge's settings by default (``fpd(min_samples=10000)``, ``kpd(batch_size=10000)``,
the rest jetnet's defaults) on SYNTHETIC correlated features of the data-set-2 high-level
width (362 = 1 + 45 + 4 x 45 + 1 + 45 + 2 x 45); ``--jets`` for the jet suite's (50,000 jets,
FPD 20,000-50,000, KPD 5,000, 24 features as EFPs + particle features have ~ 5-30).  jetnet's functions are
run from the installed wheel's source (``tests/reference_code.py``: its module needs coffea),
alternated with pcbench's, each ``--repeat`` times; the medians, their ratio, and both values
are printed with the load average.

    PYTHONPATH=. .venv/bin/python benchmarks/fpd_kpd.py --n 10000 --dim 362 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pcbench.metrics.frechet import fpd  # noqa: E402
from pcbench.metrics.kernel import kpd  # noqa: E402
from reference_code import jetnet_functions  # noqa: E402


def features(n: int, dim: int, seed: int, shift: float) -> np.ndarray:
    """(n, dim) correlated Gaussian features (a random mixing matrix), ``shift`` added to the mean."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(0).normal(size=(dim, dim)) / np.sqrt(dim)
    return rng.normal(size=(n, dim)) @ mix + shift


def timed(fn, *args, **kwargs) -> tuple[float, tuple[float, float]]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="rows per sample")
    ap.add_argument("--dim", type=int, default=362, help="features")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", choices=["FPD", "KPD"], default=None, help="time one of the two")
    ap.add_argument("--jets", action="store_true", help="the jet suite's settings (FPD 20k-50k, KPD 5,000)")
    args = ap.parse_args()
    fpd_kw = {"min_samples": 20_000} if args.jets else {"min_samples": 10_000}
    kpd_kw = {"batch_size": 5_000} if args.jets else {"batch_size": 10_000}
    real, gen = features(args.n, args.dim, 1, 0.0), features(args.n, args.dim, 2, 0.02)
    ref = jetnet_functions()
    print(f"{args.n:,} vs {args.n:,} rows, {args.dim} SYNTHETIC features; FPD {fpd_kw}, KPD {kpd_kw}; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    for name, ours, theirs, kw in (("FPD", fpd, ref.fpd, fpd_kw), ("KPD", kpd, ref.kpd, kpd_kw)):
        if args.only not in (None, name):
            continue
        t_ours, t_theirs = [], []
        for _ in range(args.repeat):
            t, v_theirs = timed(theirs, real, gen, **kw)
            t_theirs.append(t)
            t, v_ours = timed(ours, real, gen, **kw)
            t_ours.append(t)
        a, b = statistics.median(t_theirs), statistics.median(t_ours)
        rel = abs(v_ours[0] - v_theirs[0]) / abs(v_theirs[0])
        print(f"{name}: jetnet {a:8.1f} s  pcbench {b:8.1f} s  ratio {a / b:5.2f}x   values jetnet "
              f"{v_theirs[0]:.9g} +- {v_theirs[1]:.3g}, pcbench {v_ours[0]:.9g} +- {v_ours[1]:.3g} "
              f"(relative difference {rel:.1e}); load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
