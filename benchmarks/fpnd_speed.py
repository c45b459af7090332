"""FPND's ParticleNet alone: jets per second, GFLOP/s against the measured matmul peak, and (with
``--against``) the same activations from another implementation of the class, alternated in the
same process so that both see the same load.

Run: .venv/bin/python benchmarks/fpnd_speed.py [--n 4096] [--repeat 3] [--against OLD_particlenet.py]

``--against`` takes a Python file defining ``ParticleNet`` with the same interface (for example
the previous version: ``git show <commit>:pcbench/metrics/particlenet.py > /tmp/old.py``); the
largest relative difference of the activations is printed.  Jets are SYNTHETIC (timing only).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

import numpy as np
import torch
from jet_metrics import matmul_peak, synthetic_jets

from pcbench.metrics import fpnd
from pcbench.metrics.particlenet import ParticleNet


def load(cls: type, state: dict) -> torch.nn.Module:
    net = cls(30, 3)
    net.load_jetnet_state_dict(state)
    return net.fuse()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", default=None)
    args = ap.parse_args()
    jets = synthetic_jets(args.n, 3)
    x = torch.from_numpy((jets / fpnd.FPND_MAXES + fpnd.FPND_SHIFTS).astype(np.float32))
    state = torch.load(fpnd.fpnd_resources() / "pnet_state_dict.pt", map_location="cpu")
    nets = {"pcbench": load(ParticleNet, state)}
    if args.against:
        spec = importlib.util.spec_from_file_location("other_particlenet", args.against)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        nets["other"] = load(mod.ParticleNet, state)
    flops = ParticleNet().flops_per_jet(30) * args.n
    times: dict[str, list[float]] = {k: [] for k in nets}
    outs = {}
    with torch.inference_mode():
        for _ in range(args.repeat):
            for name, net in nets.items():
                t = time.perf_counter()
                outs[name] = torch.cat([net.activations(x[i:i + 1024]) for i in range(0, len(x), 1024)])
                times[name].append(time.perf_counter() - t)
                print(f"  {name}: {times[name][-1]:.2f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"{args.n} SYNTHETIC jets, {flops / 1e9:.0f} GFLOP; torch threads {torch.get_num_threads()}; median of {args.repeat}")
    for name, ts in times.items():
        t = float(np.median(ts))
        print(f"{name:<8} {t:8.2f} s  {args.n / t:8.0f} jets/s  {flops / t / 1e9:6.1f} GFLOP/s")
    if "other" in nets:
        ratio = float(np.median(times["other"])) / float(np.median(times["pcbench"]))
        diff = float(((outs["pcbench"] - outs["other"]).abs().max() / outs["other"].abs().max()))
        print(f"speed-up over --against: {ratio:.2f}x; largest difference of the activations / their largest "
              f"magnitude: {diff:.1e}; bit-equal: {torch.equal(outs['pcbench'], outs['other'])}")
    peak = matmul_peak()
    print("float32 matmul peak now (addmm 1024x256 @ 256x256): "
          + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items()) + f"; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
