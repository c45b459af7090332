"""The CaloChallenge's own ``code/evaluate.py`` beside pcbench's shower suite, per metric group.

Run:
    .venv/bin/python benchmarks/calochallenge_compare.py --challenge /path/to/CaloChallenge-homepage \\
        --challenge-python /path/to/python --gen GEN.h5 --ref REF.h5 [--n 10000] [--repeat 1]

``--challenge`` is a local copy of the public repository ``CaloChallenge/homepage`` (its ``code/``
folder is run from there, never copied into pcbench); ``--challenge-python`` an interpreter with
its dependencies (numpy, h5py, matplotlib, torch, scikit-learn, jetnet for FPD/KPD, prdc for PRDC).
Both sides read the first ``--n`` showers of the same data-set-2 files (``pcbench simulate
calochallenge-2``: PARAMETERISED showers, not Geant4) and compare generated against the same
reference (pcbench's internal pair function, no truth-vs-truth column, so both do the same work).

Groups (challenge mode -> pcbench metrics): ``hist`` (histograms, their plots and separation
powers) -> the separation-power families; ``fpd`` (FPD and KPD) -> fpd, kpd; ``cls-low`` and
``cls-high`` -> the DNN classifiers; ``prdc`` -> precision, recall, density, coverage.  The
classifiers run at equal settings on both sides: 2 hidden layers of ``--cls-hidden`` units,
``--cls-epochs`` epochs, batch ``--cls-batch``, learning rate ``--cls-lr`` (pcbench's ``fast``
classifier by default: the challenge's 2 x 2048 x 50 epochs is about 63 TFLOP for the low-level one
at 10,000 showers a side); the
challenge trains in float64 (its ``torch.set_default_dtype``), pcbench in float32.  The challenge
side is timed as its process's wall-clock time per mode (start-up, reading, features and plots
included: that is what running the challenge's evaluation costs); the pcbench side in-process:
the features of both samples once (counted in the total), then each group.  The challenge's
LaTeX text rendering is switched off (``usetex``), since no LaTeX is installed here.  The
challenge's classifier modes split data set 2 by fixed counts (60,000 / 20,000 / 20,000 rows of
each sample), which needs 100,000 showers a side; with fewer (``--n`` below 100,000) its ``main``
runs with one argument changed at run time, ``ttv_split(..., dataset=None)``: the challenge's own
split by fractions (0.6 / 0.2 / 0.2, as pcbench's), nothing else.  The challenge trains in float64
(``torch.set_default_dtype``) on the arrays it reads, so its classifier modes get the showers as
float64 (a float32 file makes its float64 network fail on float32 inputs); pcbench trains in
float32.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

# evaluate.py as the challenge ships it, run with matplotlib's usetex switched off
RUNNER = r'''
import os, runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
_rc = plt.rc
plt.rc = lambda group, **kw: _rc(group, **{k: v for k, v in kw.items() if k != "usetex"})
os.chdir(sys.argv[1])
sys.path.insert(0, sys.argv[1])
split_by_fractions = sys.argv[2] == "--split-by-fractions"
sys.argv = ["evaluate.py"] + sys.argv[2 + split_by_fractions:]
if not split_by_fractions:
    runpy.run_path("evaluate.py", run_name="__main__")
else:  # the challenge's main with its fractional split (dataset=None) in the classifier modes' one call
    import re
    source = open("evaluate.py").read()
    source, count = re.subn(r"ttv_split\(source_array, reference_array,\s*dataset=args.dataset\)",
                            "ttv_split(source_array, reference_array, dataset=None)", source)
    if count != 1:
        sys.exit(f"evaluate.py: expected one ttv_split(..., dataset=args.dataset) call, found {count}")
    exec(compile(source, "evaluate.py", "exec"), {"__name__": "__main__", "__file__": "evaluate.py"})
'''

GROUPS = {  # challenge mode -> pcbench metric names
    "hist": ("sep_e_ratio", "sep_e_layer", "sep_ec_eta", "sep_ec_phi", "sep_width_eta", "sep_width_phi", "sep_cell"),
    "fpd": ("fpd", "kpd"),
    "cls-low": ("auc_low", "jsd_low"),
    "cls-high": ("auc_high", "jsd_high"),
    "prdc": ("precision", "recall", "density", "coverage"),
}
# the challenge's labels in histogram_chi2_2.txt -> pcbench family (per-layer entries averaged)
SEP_LABELS = {"Etot / Einc": "sep_e_ratio", "E layer": "sep_e_layer", "EC Eta layer": "sep_ec_eta",
              "EC Phi layer": "sep_ec_phi", "Width Eta layer": "sep_width_eta", "Width Phi layer": "sep_width_phi",
              "Voxel distribution": "sep_cell"}


def truncated(src: Path, n: int, dst: Path, dtype: type | None = None) -> Path:
    """The first n showers of ``src`` in the challenge's layout (showers, incident_energies), as ``dtype``
    (default: the file's)."""
    with h5py.File(src) as f, h5py.File(dst, "w") as g:
        for key in ("showers", "incident_energies"):
            g[key] = f[key][:n] if dtype is None else f[key][:n].astype(dtype)
    return dst


def challenge_values(mode: str, out: Path, stdout: str) -> dict[str, float]:
    """The challenge's numbers of one mode, read from its output files / printout."""
    if mode == "hist":
        text = (out / "histogram_chi2_2.txt").read_text()
        sums: dict[str, list[float]] = {}
        for label, value in re.findall(r"^([A-Za-z /]+?)(?: \d+| at E = [\d.e+]+)?: \n([\d.eE+-]+)", text, re.M):
            if label.strip() in SEP_LABELS:
                sums.setdefault(SEP_LABELS[label.strip()], []).append(float(value))
        return {k: float(np.mean(v)) for k, v in sums.items()}
    if mode == "fpd":
        text = (out / "fpd_kpd_2.txt").read_text()
        fpd, kpd = (float(x) * 1e-3 for x in re.findall(r"\(x10\^3\): ([\d.eE+-]+)", text))
        return {"fpd": fpd, "kpd": kpd}
    if mode.startswith("cls"):
        auc, jsd = re.findall(r"\(AUC / JSD\):\n([\d.]+) / ([\d.-]+)", (out / f"classifier_{mode}_2.txt").read_text())[-1]
        suffix = "low" if mode == "cls-low" else "high"
        return {f"auc_{suffix}": float(auc), f"jsd_{suffix}": float(jsd)}
    found = re.search(r"gives (\{.*\})", stdout)
    return {k: float(v) for k, v in ast.literal_eval(found.group(1)).items()} if found else {}


def run_challenge(python: str, code: Path, gen: Path, ref: Path, mode: str, out: Path, cls: list[str],
                  split_by_fractions: bool = False) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds, values) of one challenge mode in its own process."""
    out.mkdir(parents=True, exist_ok=True)
    split = ["--split-by-fractions"] if split_by_fractions else []
    cmd = [python, "-c", RUNNER, str(code), *split, "-i", str(gen), "-r", str(ref), "-m", mode, "-d", "2",
           "--output_dir", str(out), "--no_cuda", *cls]
    t, c = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt, dc = time.perf_counter() - t, _children_cpu() - c
    if proc.returncode:
        return dt, dc, {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return dt, dc, challenge_values(mode, out, proc.stdout)


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def pcbench_side(gen: Path, ref: Path, n: int, cls: dict,
                 modes: list[str]) -> tuple[tuple[float, float], dict[str, tuple[float, float, dict]]]:
    """Features of both samples (wall, CPU seconds), then per group of ``modes`` (wall, CPU seconds, values)."""
    import dataclasses

    from pcbench.evaluate.calochallenge import CaloSuiteConfig, _pair, summarise_voxels, Want, histogram_bins
    from pcbench.evaluate.shared_metrics import energy_edges
    from pcbench.data.sources import ShowerSource
    from pcbench.geometry import get_geometry
    from pcbench.metrics import calo_features
    from pcbench.metrics.dnn_classifier import DNNSettings

    geo = get_geometry("calochallenge-2")
    threshold = calo_features.THRESHOLDS_MEV[geo.name]
    t, c = time.perf_counter(), time.process_time()
    rows = np.arange(n)
    r, r_max = summarise_voxels(ShowerSource.of(ref), {"r": Want(rows, n)}, geo, threshold, 2000)["r"]
    bins = histogram_bins("cell", 0, geo, threshold, r_max)
    r.cell_hist = summarise_voxels(ShowerSource.of(ref), {"r": Want(rows, cell_bins=bins, features=False)}, geo, threshold,
                             2000)["r"][0].cell_hist
    g = summarise_voxels(ShowerSource.of(gen), {"g": Want(rows, n, bins)}, geo, threshold, 2000)["g"][0]
    t_feat = (time.perf_counter() - t, time.process_time() - c)
    out = {}
    base = CaloSuiteConfig.named("full")
    edges = energy_edges(r.e_inc, base.energy_bins)  # only the response metrics use them (not in any group)
    fast = DNNSettings.FAST
    orig = DNNSettings.named

    def named(profile, **kw):  # the classifier at the benchmark's settings
        return DNNSettings(**{**fast, **cls, **kw}) if profile == "bench" else orig(profile, **kw)

    DNNSettings.named = staticmethod(named)  # type: ignore[method-assign]
    try:
        for mode in modes:
            cfg = dataclasses.replace(base, metrics=GROUPS[mode], classifier="bench")
            t, c = time.perf_counter(), time.process_time()
            values, _ = _pair(g, r, geo, threshold, cfg, lambda _m: None, edges)
            out[mode] = (time.perf_counter() - t, time.process_time() - c, {k: v[0] for k, v in values.items()})
    finally:
        DNNSettings.named = staticmethod(orig)  # type: ignore[method-assign]
    return t_feat, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--challenge", type=Path, required=True, help="local copy of CaloChallenge/homepage")
    ap.add_argument("--challenge-python", required=True)
    ap.add_argument("--gen", type=Path, required=True)
    ap.add_argument("--ref", type=Path, required=True)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--modes", default=",".join(GROUPS))
    ap.add_argument("--cls-hidden", type=int, default=256)
    ap.add_argument("--cls-epochs", type=int, default=15)
    ap.add_argument("--cls-batch", type=int, default=500)
    ap.add_argument("--cls-lr", type=float, default=1e-3)
    ap.add_argument("--pcbench-first", action="store_true", help="run (and print) the pcbench side first")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS / OpenMP / torch threads on both sides (default 1: CPU seconds then measure work, "
                         "not spinning threads on a loaded machine)")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # inherited by the challenge's processes
    import threadpoolctl
    import torch

    threadpoolctl.threadpool_limits(args.threads)
    torch.set_num_threads(args.threads)
    code = args.challenge / "code"
    if not (code / "evaluate.py").is_file():
        sys.exit(f"--challenge {args.challenge}: no code/evaluate.py there (a copy of CaloChallenge/homepage expected)")
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(GROUPS):
        sys.exit(f"--modes {args.modes}: expected a comma-separated subset of {', '.join(GROUPS)}")
    cls = ["--cls_n_hidden", str(args.cls_hidden), "--cls_n_epochs", str(args.cls_epochs),
           "--cls_batch_size", str(args.cls_batch), "--cls_lr", str(args.cls_lr)]
    print(f"{args.n} generated vs {args.n} reference PARAMETERISED data-set-2 showers; classifiers 2 x "
          f"{args.cls_hidden}, {args.cls_epochs} epochs, batch {args.cls_batch}, lr {args.cls_lr} on both sides; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gen, ref = truncated(args.gen, args.n, tmp / "gen.h5"), truncated(args.ref, args.n, tmp / "ref.h5")
        settings = {"n_hidden": args.cls_hidden, "epochs": args.cls_epochs, "batch_size": args.cls_batch, "lr": args.cls_lr}
        if args.pcbench_first:
            t_feat, mine = pcbench_side(gen, ref, args.n, settings, modes)
            print(f"  pcbench features {t_feat[0]:.1f} s; " + "; ".join(f"{m} {t:.1f} s {v}" for m, (t, _, v) in mine.items()),
                  flush=True)
        theirs = {}
        if any(m.startswith("cls") for m in modes):
            gen64, ref64 = (truncated(f, args.n, tmp / f"{k}64.h5", np.float64) for f, k in ((args.gen, "gen"), (args.ref, "ref")))
        for mode in modes:
            is_cls = mode.startswith("cls")
            theirs[mode] = run_challenge(args.challenge_python, code, gen64 if is_cls else gen, ref64 if is_cls else ref, mode,
                                         tmp / mode, cls, split_by_fractions=is_cls and args.n < 100_000)
            print(f"  challenge {mode:<9} {theirs[mode][0]:8.1f} s, {theirs[mode][1]:8.1f} CPU-s  "
                  f"(load {os.getloadavg()[0]:.1f})  {theirs[mode][2]}", flush=True)
        if not args.pcbench_first:
            t_feat, mine = pcbench_side(gen, ref, args.n, settings, modes)
    print(f"  pcbench features of both samples: {t_feat[0]:.1f} s, {t_feat[1]:.1f} CPU-s (load {os.getloadavg()[0]:.1f})")
    print(f"\n{'group (challenge mode)':<24}{'challenge wall / CPU [s]':>26}{'pcbench wall / CPU [s]':>24}"
          f"{'ratio wall / CPU':>18}   values: challenge | pcbench")
    tot_c, tot_p = [0.0, 0.0], list(t_feat)
    for mode in modes:
        tc, cc, vc = theirs[mode]
        tp, cp, vp = mine[mode]
        pw, pc = tp + t_feat[0], cp + t_feat[1]
        tot_c = [tot_c[0] + tc, tot_c[1] + cc]
        tot_p = [tot_p[0] + tp, tot_p[1] + cp]
        shown = "; ".join(f"{k} {vc.get(k, float('nan')):.4g} | {vp[k]:.4g}" for k in vp) if "error" not in vc \
            else f"challenge failed: {vc['error']}"
        print(f"{mode:<24}{tc:14.1f} / {cc:9.1f}{pw:13.1f} / {pc:8.1f}{tc / pw:9.1f}x / {cc / pc:5.1f}x   {shown}")
    print(f"{'total':<24}{tot_c[0]:14.1f} / {tot_c[1]:9.1f}{tot_p[0]:13.1f} / {tot_p[1]:8.1f}"
          f"{tot_c[0] / tot_p[0]:9.1f}x / {tot_c[1] / tot_p[1]:5.1f}x   (pcbench: features once + every group; per "
          f"group: that group + the features; {args.threads} thread(s) a side; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
