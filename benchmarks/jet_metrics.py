"""Time the jet metric suite against the jetnet library's functions on the same arrays.

Run:
    .venv/bin/python benchmarks/jet_metrics.py --real REAL.h5 --gen GEN.h5 --jetnet-python /path/to/python [--fpnd]
    .venv/bin/python benchmarks/jet_metrics.py --synthetic 50000 --jetnet-python /path/to/python --fpnd --repeat 3

``--jetnet-python`` is an interpreter with jetnet 0.2.5 and its dependencies installed (a separate
environment: `pip install "numpy<2" "pandas<3" "pyarrow<18" torch==2.13.0 jetnet==0.2.5`, plus
torch_geometric and torch_cluster for FPND; where that environment has no torch_cluster, the
pure-torch stand-in in ``benchmarks/torch_cluster_shim/`` is put on its path and the output says
so: the same exact kNN graph, built with ``torch.topk``). Both sides get the same (N, 30, 3) arrays; jetnet's
unseeded module-level generator is replaced by `default_rng(42)` before each call so that both
draw the same batches, which makes the values comparable to rounding. Prints per-metric
wall-clock times, the ratio jetnet / pcbench, and the largest relative difference of the values.
``--synthetic N`` makes two sets of N JetNet30-layout jets here instead of reading files (SYNTHETIC:
Dirichlet momentum fractions, Gaussian angles; not physical jets, for timing only).  ``--repeat K``
runs each side K times and takes the median per metric (values from the first run; the two sides
alternate, so that both see the same load).  With ``--fpnd``, FPND's floating-point rate
(ParticleNet's FLOPs as pcbench runs them, ``ParticleNet.flops_per_jet``) is printed beside this
machine's float32 matrix-product peak, measured in the same run (torch addmm of the edge MLP's
shape, 1 thread and all threads).  The load average is printed with each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

JETNET_SIDE = r'''
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from jetnet.evaluation import gen_metrics as gm
data = np.load(sys.argv[1])
real, gen = data["real"], data["gen"]
out = {}
def run(name, fn):
    gm.rng = np.random.default_rng(42)
    t0 = time.perf_counter(); val = fn(); out[name] = {"time": time.perf_counter() - t0, "value": val}
if sys.argv[3] == "0":  # not FPND alone
    run("w1m", lambda: [float(v) for v in gm.w1m(real, gen)])
    def rss(r):
        return [float(np.mean(r[0])), float(np.linalg.norm(r[1]))]
    run("w1p", lambda: rss(gm.w1p(real, gen)))
    run("w1efp", lambda: rss(gm.w1efp(real, gen)))
    t0 = time.perf_counter()
    fr, fg = gm.get_fpd_kpd_jet_features(real), gm.get_fpd_kpd_jet_features(gen)
    out["efps (FPD/KPD features)"] = {"time": time.perf_counter() - t0, "value": [float(fr.sum()), float(fg.sum())]}
    run("fpd", lambda: [float(v) for v in gm.fpd(fr, fg)])
    run("kpd", lambda: [float(v) for v in gm.kpd(fr, fg)])
    run("cov_mmd", lambda: [float(v) for v in gm.cov_mmd(real, gen, use_tqdm=False)])
if sys.argv[2] == "1":
    run("fpnd", lambda: [float(gm.fpnd(gen, "g", use_tqdm=False))])
print(json.dumps(out))
'''


def synthetic_jets(n: int, seed: int) -> np.ndarray:
    """(n, 30, 3) SYNTHETIC etarel, phirel, ptrel jets (zero-padded): 5-30 particles, ptrel sorted."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(5, 31, n)
    live = np.arange(30)[None, :] < counts[:, None]
    w = rng.gamma(0.6, 1.0, (n, 30)) * live
    pt = -np.sort(-w / w.sum(1, keepdims=True), axis=1)
    out = np.zeros((n, 30, 3), np.float32)
    out[..., 0] = rng.normal(0, 0.1, (n, 30)) * live
    out[..., 1] = rng.normal(0, 0.1, (n, 30)) * live
    out[..., 2] = pt
    return out


def matmul_peak(repeat: int = 7) -> dict[str, float]:
    """float32 GFLOP/s of torch.addmm (1024 x 256) @ (256 x 256): medians, 1 thread and all threads."""
    import torch

    a, w, b = torch.randn(1024, 256), torch.randn(256, 256), torch.randn(256)
    threads, out = torch.get_num_threads(), {}
    for t in sorted({1, threads}):
        torch.set_num_threads(t)
        rates = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(100):
                torch.addmm(b, a, w.t())
            rates.append(100 * 2 * 1024 * 256 * 256 / (time.perf_counter() - t0) / 1e9)
        out[f"{t} thread(s)"] = float(np.median(rates))
    torch.set_num_threads(threads)
    return out


def pcbench_side(real: np.ndarray, gen: np.ndarray, with_fpnd: bool, only_fpnd: bool = False) -> dict:
    from pcbench.metrics import emd, frechet, jet_observables, kernel, wasserstein

    out: dict = {}
    mask_r, mask_g = real[..., 2] > 0, gen[..., 2] > 0

    def run(name, fn):
        t0 = time.perf_counter()
        val = fn()
        out[name] = {"time": time.perf_counter() - t0, "value": val}
        return val

    def rss(r):
        return [float(np.mean(r[0])), float(np.linalg.norm(r[1]))]

    if only_fpnd:
        return fpnd_side(gen, out, run)
    t0 = time.perf_counter()  # W1M, its masses included
    m_r = jet_observables.jet_kinematics(real, mask_r)["mass"]
    m_g = jet_observables.jet_kinematics(gen, mask_g)["mass"]
    m, s = wasserstein.w1_batched(m_r[:, None], m_g[:, None])
    out["w1m"] = {"time": time.perf_counter() - t0, "value": [float(m[0]), float(s[0])]}
    run("w1p", lambda: rss(wasserstein.w1_batched(real, gen, real_mask=mask_r, gen_mask=mask_g)))
    t0 = time.perf_counter()
    fr, fg = jet_observables.efps(real, mask_r), jet_observables.efps(gen, mask_g)
    t_efp = time.perf_counter() - t0
    out["efps (FPD/KPD features)"] = {"time": t_efp, "value": [float(fr.sum()), float(fg.sum())]}
    idx = jet_observables.EFP_W1_INDICES()
    # W1EFP reuses the d<=4 EFPs computed once for FPD/KPD (jetnet computes its 5 EFPs separately)
    run("w1efp", lambda: rss(wasserstein.w1_batched(fr[:, idx], fg[:, idx])))
    run("fpd", lambda: list(frechet.fpd(fr, fg)))
    run("kpd", lambda: list(kernel.kpd(fr, fg)))
    run("cov_mmd", lambda: [v[0] for v in emd.cov_mmd(real, gen)])
    return fpnd_side(gen, out, run) if with_fpnd else out


def fpnd_side(gen: np.ndarray, out: dict, run) -> dict:
    from pcbench.metrics import fpnd

    run("fpnd", lambda: [fpnd.fpnd(gen, "g")])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real")
    ap.add_argument("--gen")
    ap.add_argument("--synthetic", type=int, default=0, help="make N SYNTHETIC jets per side instead of files")
    ap.add_argument("--jetnet-python", required=True)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--fpnd", action="store_true", help="include FPND (minutes on a CPU)")
    ap.add_argument("--only-fpnd", action="store_true", help="FPND alone (with --fpnd)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the median time is shown")
    args = ap.parse_args()

    if args.synthetic:
        real, gen = synthetic_jets(args.synthetic, 1), synthetic_jets(args.synthetic, 2)
        print("SYNTHETIC jets (timing only)")
    else:
        from pcbench.data import read

        real = read(args.real).particles[: args.n].astype(np.float32)
        gen = read(args.gen).particles[: args.n].astype(np.float32)
    print(f"{len(real)} real vs {len(gen)} generated jets, {real.shape[1]} particles; load average at start "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    env = dict(os.environ)
    if args.fpnd and subprocess.run([args.jetnet_python, "-c", "import torch_cluster"], capture_output=True).returncode:
        shim = Path(__file__).resolve().parent / "torch_cluster_shim"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(shim), env.get("PYTHONPATH", "")) if p)
        print(f"jetnet side: no torch_cluster in {args.jetnet_python}; its knn_graph is the pure-torch stand-in {shim} "
              "(exact kNN, the same graph)")
    refs, mines, loads = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        arrays = Path(tmp) / "jets.npz"
        np.savez(arrays, real=real, gen=gen)
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            proc = subprocess.run([args.jetnet_python, "-c", JETNET_SIDE, str(arrays), "1" if args.fpnd else "0",
                                   "1" if args.only_fpnd else "0"],
                                  capture_output=True, text=True, env=env)
            if proc.returncode:
                sys.exit(f"jetnet side failed:\n{proc.stderr[-3000:]}")
            refs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"jetnet side: {time.perf_counter() - t0:.1f} s wall including start-up (load {os.getloadavg()[0]:.1f})")
            mines.append(pcbench_side(real, gen, args.fpnd, args.only_fpnd))
            loads.append(os.getloadavg()[0])
            print(f"pcbench side done (load {loads[-1]:.1f})")
    ref, mine = refs[0], mines[0]
    for name in ref:
        ref[name]["time"] = float(np.median([r[name]["time"] for r in refs]))
        mine[name]["time"] = float(np.median([m[name]["time"] for m in mines]))
    print(f"\nmedian of {args.repeat} run(s) per side; load average after each run: {', '.join(f'{x:.1f}' for x in loads)}")
    if args.fpnd:
        from pcbench.metrics.particlenet import ParticleNet

        flops = ParticleNet().flops_per_jet(30) * min(len(gen), 50_000)
        peak = matmul_peak()
        print(f"FPND: {flops / 1e12:.2f} TFLOP (ParticleNet as pcbench runs it); pcbench "
              f"{flops / mine['fpnd']['time'] / 1e9:.1f} GFLOP/s, jetnet {flops / ref['fpnd']['time'] / 1e9:.1f} GFLOP/s "
              "(the same count; jetnet's unfactorised first layers do more); float32 matmul peak measured now: "
              + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items()) + f" (load {os.getloadavg()[0]:.1f})")
    print(f"\n{'metric':<26}{'jetnet [s]':>11}{'pcbench [s]':>12}{'ratio':>8}  {'max rel. diff of values':>24}")
    tot_ref = tot_mine = 0.0
    for name, r in ref.items():
        m = mine[name]
        diff = max(abs(a - b) / max(abs(a), 1e-300) for a, b in zip(r["value"], m["value"]))
        tot_ref += r["time"]
        tot_mine += m["time"]
        print(f"{name:<26}{r['time']:11.2f}{m['time']:12.2f}{r['time'] / m['time']:8.1f}x  {diff:24.2e}")
    print(f"{'total':<26}{tot_ref:11.2f}{tot_mine:12.2f}{tot_ref / tot_mine:8.1f}x")
    print("\nvalues: jetnet | pcbench")
    for name, r in ref.items():
        print(f"  {name:<24} {r['value']} | {mine[name]['value']}")


if __name__ == "__main__":
    main()
