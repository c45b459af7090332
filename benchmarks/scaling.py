"""Time and peak memory of ``pcbench evaluate`` against the sample size: jets and data-set-3 showers.

Run: .venv/bin/python benchmarks/scaling.py [--jets 10000,50000,100000] [--showers 10000,50000,100000]
        [--profile fast] [--work DIR] [--jet-metrics ...] [--shower-metrics ...]

Each size runs in a fresh process (``evaluate(...)`` of the library, as the CLI calls it), which
reports its wall-clock time and peak resident memory (``ru_maxrss``); time per object and the
memory are printed beside the load average.  Linear time means a constant time per object;
bounded memory means a peak that does not grow with N beyond the suite's caps.

Data (timing only, not physics): jets are SYNTHETIC JetNet30-layout jets (N generated, 2N
reference, as the suite's truth column needs); data-set-3 showers are PARAMETERISED showers of the
calochallenge-2 shower model on the data-set-3 geometry, 1,000 simulated once and repeated by an
HDF5 virtual dataset to N generated and 2N reference rows (the files stay small; the evaluation
reads and processes every row).  FPND is left out of the jet runs by default (it uses the first
50,000 jets only, so it is constant beyond that; its speed is in ``jet_metrics.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

CHILD = r'''
import json, resource, sys, time
from pcbench.evaluate import evaluate
t = time.perf_counter()
r = evaluate(sys.argv[1], sys.argv[2], profile=sys.argv[3], metrics=tuple(m for m in sys.argv[4].split(",") if m),
             energy_check=False, jet_type="g")
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "metrics": len(r.metrics)}))
'''

JET_METRICS = "w1m,w1p,w1efp,fpd,kpd,cov,mmd,kl_mass,kl_ptconst,kl_tau21,kl_tau32,auc_hl,auc_pl"


def jet_file(path: Path, n: int, seed: int) -> Path:
    """n SYNTHETIC JetNet30 jets (etarel, phirel, ptrel, mask; jet pt, eta, mass, multiplicity)."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    counts = rng.integers(5, 31, n)
    live = np.arange(30)[None, :] < counts[:, None]
    w = rng.gamma(0.6, 1.0, (n, 30)) * live
    pf = np.zeros((n, 30, 4), np.float32)
    pf[..., 0] = rng.normal(0, 0.1, (n, 30)) * live
    pf[..., 1] = rng.normal(0, 0.1, (n, 30)) * live
    pf[..., 2] = -np.sort(-w / w.sum(1, keepdims=True), axis=1)
    pf[..., 3] = live
    jf = np.column_stack([rng.uniform(900, 1100, n), rng.uniform(-2, 2, n), rng.uniform(10, 200, n), counts])
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        f["particle_features"] = pf
        f["jet_features"] = jf.astype(np.float32)
    tmp.replace(path)
    return path


def shower_file(work: Path, rows: int, base: Path) -> Path:
    """A virtual data set of ``rows`` showers repeating the showers of ``base``."""
    path = work / f"ds3_{rows}.h5"
    if path.exists():
        return path
    with h5py.File(base) as f:
        n, v = f["showers"].shape
    layouts = {"showers": h5py.VirtualLayout((rows, v), "f4"), "incident_energies": h5py.VirtualLayout((rows, 1), "f4")}
    for name, layout in layouts.items():
        src = h5py.VirtualSource(str(base.resolve()), name, shape=(n, v) if name == "showers" else (n, 1))
        for a in range(0, rows, n):
            layout[a:min(a + n, rows)] = src[:min(n, rows - a)]
    with h5py.File(path, "w") as f:
        for name, layout in layouts.items():
            f.create_virtual_dataset(name, layout)
        f.attrs["geometry"] = "calochallenge-3"
        f.attrs["parameterised"] = True
    return path


def measure(gen: Path, ref: Path, profile: str, metrics: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(gen), str(ref), profile, metrics], capture_output=True,
                          text=True)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(kind: str, n: int, r: dict) -> None:
    if "error" in r:
        print(f"{kind:<8}{n:>8}   failed: {r['error']}", flush=True)
        return
    print(f"{kind:<8}{n:>8}{r['seconds']:10.1f}{1e3 * r['seconds'] / n:12.2f}{r['peak_mb']:12.0f}"
          f"{os.getloadavg()[0]:7.1f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jets", default="10000,50000,100000")
    ap.add_argument("--showers", default="10000,50000,100000")
    ap.add_argument("--profile", default="fast", choices=["fast", "full"])
    ap.add_argument("--work", type=Path, default=Path("benchmarks/work"))
    ap.add_argument("--jet-metrics", default=JET_METRICS, help="comma-separated (default: all but FPND)")
    ap.add_argument("--shower-metrics", default="", help="comma-separated (default: the whole suite)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"profile {args.profile}; one fresh process per size; load average = 1-minute, at the end of each run")
    print(f"{'kind':<8}{'N':>8}{'time [s]':>10}{'ms/object':>12}{'peak [MB]':>12}{'load':>7}")
    for n in (int(x) for x in args.jets.split(",") if x):
        gen = jet_file(args.work / f"jets_gen_{n}.h5", n, 1)
        ref = jet_file(args.work / f"jets_ref_{2 * n}.h5", 2 * n, 2)
        report("jets", n, measure(gen, ref, args.profile, args.jet_metrics))
    sizes = [int(x) for x in args.showers.split(",") if x]
    if sizes:
        import dataclasses

        from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_showers

        base = args.work / "ds3_base_1000.h5"
        if not base.exists():
            t = time.perf_counter()
            target = dataclasses.replace(SHOWER_TARGETS["calochallenge-2"], name="calochallenge-3", geometry="calochallenge-3")
            simulate_showers(target, 1000, base, seed=13, workers=1, progress=False)
            print(f"(simulated 1000 PARAMETERISED data-set-3 showers in {time.perf_counter() - t:.0f} s)")
        for n in sizes:
            report("ds3", n, measure(shower_file(args.work, n, base), shower_file(args.work, 2 * n, base),
                                     args.profile, args.shower_metrics))


if __name__ == "__main__":
    main()
