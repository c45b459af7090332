"""Generation time per jet of each generator at N = 30 and N = 150 particles (O(N) vs O(N^2)).

Run: .venv/bin/python benchmarks/generation_time.py [--config full] [--device cpu] [--jets 2048]
Untrained networks of the chosen config (timing does not depend on the weights); every jet has
exactly N particles; MP-GAN batches are capped where its O(N^2) edge tensors outgrow memory; for each batch size in --batch-sizes the wall-clock time per jet of the network's generation
(after a warm-up batch; post-processing excluded, as in the papers' timings) is measured and the
best batch size reported, beside the published A100 figures of the EPiC-GAN paper (MP-GAN 26 / 660 us, EPiC-GAN 1 / 6 us).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pcbench.models import build_model, model_config
from pcbench.models.jets.base import JetStats

PUBLISHED_US = {("mp-gan", 30): 26, ("mp-gan", 150): 660, ("epic-gan", 30): 1, ("epic-gan", 150): 6}


def stats_for(n: int) -> JetStats:
    probs = np.zeros(n + 1)
    probs[n] = 1.0
    return JetStats(np.zeros(3), np.ones(3), 5.0, probs, 1e-4, np.full(10, 1000.0), n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="full", choices=["small", "full"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jets", type=int, default=1024, help="jets timed per measurement")
    ap.add_argument("--batch-sizes", default="64,256,1024")
    ap.add_argument("--models", default="epic-gan,epic-fm,mp-gan")
    args = ap.parse_args()
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, config {args.config}, {args.jets} jets each")
    print(f"{'model':<10}{'N':>5}{'best batch':>11}{'us/jet':>10}{'published A100 us/jet':>23}")
    for name in args.models.split(","):
        cfg = model_config(name, args.config)
        for n in (30, 150):
            model = build_model(name, cfg, stats=stats_for(n)).to(args.device).eval()
            best = (None, float("inf"))
            for bs in (int(b) for b in args.batch_sizes.split(",")):
                if name == "mp-gan" and bs * n * n > 64 * 150 * 150:
                    continue  # MP-GAN's (batch, N, N, width) edge tensors would not fit in memory
                gen = torch.Generator(device=args.device).manual_seed(0)
                batches = max(1, args.jets // bs)
                with torch.inference_mode():
                    model.generate(bs, n, gen)  # warm-up
                    t0 = time.perf_counter()
                    for _ in range(batches):
                        model.generate(bs, n, gen)
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                per = (time.perf_counter() - t0) / (batches * bs)
                if per < best[1]:
                    best = (bs, per)
            pub = PUBLISHED_US.get((name, n), "-")
            print(f"{name:<10}{n:>5}{best[0]:>11}{best[1] * 1e6:10.1f}{pub!s:>23}")


if __name__ == "__main__":
    main()
