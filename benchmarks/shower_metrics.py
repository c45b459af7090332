"""Time and memory of the shower metric suites on parameterised showers.

Run: .venv/bin/python benchmarks/shower_metrics.py [--n 10000] [--profile fast|full] [--sets ds2,ds3,ild]
        [--work DIR] [--stream-rows 100000]

For each set: simulate (once, kept in --work) n generated and 2n reference showers (the
reference's halves give the truth-vs-truth column), then run every metric of the suite one by one
(the features are computed in each run; their time is printed as "features"), printing seconds
per metric and the process's peak resident memory.  --stream-rows: additionally stream the
features of that many data-set-3 showers (a virtual HDF5 dataset repeating the simulated file)
and print the peak memory of that pass.  The 1-minute load average is printed with each figure
(the machine may be shared).  The CaloChallenge's own evaluate.py beside this suite:
``calochallenge_compare.py``; time and memory against N: ``scaling.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import time
from pathlib import Path

import h5py
import numpy as np

from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_showers
from pcbench.evaluate.calochallenge import CaloSuiteConfig, summarise_voxels, Want, calochallenge_suite
from pcbench.evaluate.ild import ILDSuiteConfig, ild_suite
from pcbench.evaluate.protocol import half_rows
from pcbench.data.sources import ShowerSource
from pcbench.geometry import get_geometry

CALO_GROUPS = (("separation powers", ("sep_e_ratio", "sep_e_layer", "sep_ec_eta", "sep_ec_phi", "sep_width_eta",
                                      "sep_width_phi", "sep_ec_r", "sep_width_r", "sep_sparsity", "sep_cell")),
               ("FPD", ("fpd",)), ("KPD", ("kpd",)), ("DNN low-level", ("auc_low",)), ("DNN high-level", ("auc_high",)),
               ("PRDC", ("precision",)))
ILD_GROUPS = (("W1 table", ("w1_n_hits", "w1_e_ratio", "w1_e_cell", "w1_e_long", "w1_e_radial", "w1_cog_x",
                            "w1_cog_y", "w1_cog_z")), ("DNN high-level", ("auc_high",)))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def files(name: str, n: int, work: Path, workers: int) -> tuple[Path, Path]:
    target = {"ds2": SHOWER_TARGETS["calochallenge-2"], "ild": SHOWER_TARGETS["ild-photons"],
              "ds3": dataclasses.replace(SHOWER_TARGETS["calochallenge-2"], name="calochallenge-3", geometry="calochallenge-3")}[name]
    out = []
    for role, rows, seed in (("gen", n, 11), ("ref", 2 * n, 12)):
        p = work / f"{name}_{role}_{rows}.h5"
        if not p.exists():
            t = time.perf_counter()
            simulate_showers(target, rows, p, seed=seed, workers=workers, progress=False)
            print(f"  simulated {rows} {name} showers in {time.perf_counter() - t:.0f} s ({workers} workers)")
        out.append(p)
    return out[0], out[1]


def run(name: str, n: int, profile: str, work: Path, workers: int) -> None:
    gen_p, ref_p = files(name, n, work, workers)
    gen, ref = ShowerSource.of(gen_p), ShowerSource.of(ref_p)
    halves = half_rows(len(gen), len(ref), 42)
    if name == "ild":
        geo, groups = get_geometry("ild-ecal"), ILD_GROUPS
        suite, cfg = ild_suite, ILDSuiteConfig.named(profile)
    else:
        geo, groups = get_geometry("calochallenge-2" if name == "ds2" else "calochallenge-3"), CALO_GROUPS
        suite, cfg = calochallenge_suite, CaloSuiteConfig.named(profile)
        t = time.perf_counter()
        summarise_voxels(ref, {"a": Want(halves.ref, keep=1)}, geo, 0.015, cfg.chunk_rows)
        print(f"  {name}: features of {n} showers: {time.perf_counter() - t:.1f} s")
    print(f"{name}: {n} generated vs {n} reference showers ({geo.name}, profile {profile})")
    for label, metrics in groups:
        t = time.perf_counter()
        values, settings, _ = suite(gen, ref, halves, geo, dataclasses.replace(cfg, metrics=metrics))
        dt = time.perf_counter() - t
        shown = ", ".join(f"{k} {m.value * m.scale:.4g}±{m.error * m.scale:.2g} (truth {m.truth * m.scale:.4g})"
                          for k, m in list(values.items())[:3])
        print(f"  {label:<18} {dt:8.1f} s (model + truth, with features)  peak RSS {peak_mb():7.0f} MB  "
              f"load {os.getloadavg()[0]:.1f}   {shown}")


def stream(rows: int, work: Path, workers: int) -> None:
    gen_p, _ = files("ds3", 2000, work, workers)
    with h5py.File(gen_p) as f:
        n, v = f["showers"].shape
    vds = work / f"ds3_virtual_{rows}.h5"
    layout_s = h5py.VirtualLayout(shape=(rows, v), dtype="f4")
    layout_e = h5py.VirtualLayout(shape=(rows, 1), dtype="f4")
    src_s, src_e = h5py.VirtualSource(gen_p, "showers", shape=(n, v)), h5py.VirtualSource(gen_p, "incident_energies", shape=(n, 1))
    for a in range(0, rows, n):
        b = min(a + n, rows)
        layout_s[a:b] = src_s[:b - a]
        layout_e[a:b] = src_e[:b - a]
    with h5py.File(vds, "w") as f:
        f.create_virtual_dataset("showers", layout_s)
        f.create_virtual_dataset("incident_energies", layout_e)
    before = peak_mb()
    t = time.perf_counter()
    s, _ = summarise_voxels(ShowerSource.of(vds), {"all": Want(np.arange(rows), CaloSuiteConfig().lowlevel_values // 40500)},
                      get_geometry("calochallenge-3"), 0.015, CaloSuiteConfig().chunk_rows)["all"]
    print(f"ds3 streaming: features of {rows} showers in {time.perf_counter() - t:.0f} s; peak RSS {peak_mb():.0f} MB "
          f"(before {before:.0f} MB); kept {len(s.voxels)} showers' voxels for the low-level metrics")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--profile", default="fast", choices=["fast", "full"])
    ap.add_argument("--sets", default="ds2,ild,ds3")
    ap.add_argument("--work", type=Path, default=Path("benchmarks/work"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stream-rows", type=int, default=0)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for name in args.sets.split(","):
        if name:
            run(name, args.n, args.profile, args.work, args.workers)
    if args.stream_rows:
        stream(args.stream_rows, args.work, args.workers)


if __name__ == "__main__":
    main()
