"""Milliseconds per shower of the CaloClouds generators, beside the CaloClouds II paper's table.

Run: .venv/bin/python benchmarks/shower_generation_time.py [--device cpu|cuda] [--threads N]
        [--points 1500] [--batch-sizes 1,64] [--showers 64] [--checkpoint CKPT]

Full-size networks (the published widths), untrained unless --checkpoint is given (the time does
not depend on the weights); every shower has --points points (the CaloClouds II showers have up
to 6,000, about 1,500 cell hits); the time is the point model's (noise -> points, the papers'
timing) after a warm-up batch, in inference mode, with and without the rest of the pipeline
("pipeline": flow, calibrations).  Published: Xeon E5-2640, one thread, batch 1: CaloClouds
3146.7, CaloClouds II 651.7, CaloClouds II (CM) 84.4 ms; A100, batch 64: 24.9, 6.1, 2.1 ms.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pcbench.models.caloclouds2 import CaloClouds2
from pcbench.models.caloclouds2_cm import CaloClouds2CM
from pcbench.models.shower_flow import ShowerStats

PUBLISHED = {("caloclouds2", "cpu", 1): 651.68, ("caloclouds2-cm", "cpu", 1): 84.35,
             ("caloclouds2", "cuda", 64): 6.12, ("caloclouds2-cm", "cuda", 64): 2.09}


def stats() -> ShowerStats:
    return ShowerStats(30, 6000, 6000.0, 2500.0, (0.0, 1900.0, 40.0), (5.0, 30.0, 5.0), 2.0, (-200.0, 200.0), (-160.0, 240.0))


def time_points(model, batch: int, points: int, device: str, repeats: int) -> float:
    """Seconds per shower of the point model alone."""
    ctx = model.point_context(np.full(batch, 50e3), np.full(batch, points)).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.inference_mode():
        model.generate_points(ctx, points, g)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(repeats):
            model.generate_points(ctx, points, g)
        if device == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - t) / (repeats * batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--points", type=int, default=1500)
    ap.add_argument("--batch-sizes", default="1,64")
    ap.add_argument("--showers", type=int, default=64, help="showers timed per measurement")
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    full = CaloClouds2.configs["full"]
    models = {"caloclouds2": CaloClouds2(full, stats()), "caloclouds2-cm": CaloClouds2CM(CaloClouds2CM.configs["full"], stats())}
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, {args.points} points per shower, "
          f"PointWise Net widths {full['widths']}")
    print(f"{'model':<16}{'evals':>6}{'batch':>7}{'ms/shower':>12}{'published ms/shower':>22}")
    for name, model in models.items():
        model = model.to(args.device).eval()
        evals = 1 if name.endswith("cm") else 2 * full["num_steps"] - 1
        for b in (int(x) for x in args.batch_sizes.split(",")):
            reps = max(1, args.showers // b)
            ms = time_points(model, b, args.points, args.device, reps) * 1e3
            pub = PUBLISHED.get((name, args.device, b))
            print(f"{name:<16}{evals:>6}{b:>7}{ms:>12.2f}{(f'{pub:.2f}' if pub else '-'):>22}")


if __name__ == "__main__":
    main()
