"""Throughput of `pcbench simulate` for jets: jets per second with 1 and 2 worker processes.

Run: .venv/bin/python benchmarks/simulate_jets.py [--n 600] [--types g,t]
Prints jets/s per worker and for --workers 2 (wall clock, Pythia init and process start-up
included), and the time per jet beside the 46 ms per jet quoted for Pythia in the MP-GAN paper
(arXiv 2106.11535).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from pcbench.data.simulate import JetSimConfig, simulate_jets

PUBLISHED_MS_PER_JET = 46.0  # Pythia, MP-GAN paper


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=600, help="jets per measurement")
    ap.add_argument("--types", default="g,t", help="comma-separated jet types")
    ap.add_argument("--num-particles", type=int, default=30)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; n = {args.n} jets per run")
    print(f"{'type':>4} {'workers':>7} {'wall [s]':>9} {'jets/s':>8} {'jets/s/worker':>14} {'ms/jet':>7} {'vs 46 ms':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for jt in args.types.split(","):
            cfg = JetSimConfig(jt, num_particles=args.num_particles)
            for workers in (1, 2):
                t0 = time.perf_counter()
                simulate_jets(args.n, cfg, Path(tmp) / f"{jt}{workers}.h5", seed=1, workers=workers,
                              chunk_size=max(args.n // 4, 1), progress=False)
                wall = time.perf_counter() - t0
                rate = args.n / wall
                ms = 1000 / rate
                print(f"{jt:>4} {workers:>7} {wall:9.2f} {rate:8.1f} {rate / workers:14.1f} {ms:7.2f} "
                      f"{PUBLISHED_MS_PER_JET / ms:8.2f}x")
    print("ms/jet is wall-clock time per jet of the whole run; 'vs 46 ms' > 1 means faster than the published Pythia figure "
          "(which was per jet on one core of other hardware, with MadGraph hard processes).")


if __name__ == "__main__":
    main()
