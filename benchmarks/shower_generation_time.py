"""Milliseconds per shower of the CaloClouds generators, beside the CaloClouds II paper's table.

Run: .venv/bin/python benchmarks/shower_generation_time.py [--device cpu|cuda] [--threads N]
        [--points 1500] [--batch-sizes 1,64] [--rounds 5] [--models caloclouds,caloclouds2,caloclouds2-cm]
        [--naive caloclouds2-cm]

Full-size networks (the published widths, CaloClouds' latent 256), untrained (the time does not
depend on the weights); every shower has --points points (CaloClouds II showers have up to 6,000,
about 1,500 cell hits); the time is the point model's (noise -> points, the papers' timing), in
inference mode, after a warm-up call.  Each configuration is timed --rounds times, interleaved
with the others (this machine's speed drifts), and the minimum and median are printed.

pcbench's sampling evaluates the point-wise network on slices of whole showers of about 2,048
points and, without autograd, folds each layer's per-shower gate and bias into its weights.  The
"naive" rows time the same network on the whole batch, unfolded, in the same run: their ratio is
what slicing and folding buy.

Published (arXiv:2309.05704, table 3): Xeon E5-2640, one thread, batch 1: CaloClouds 3146.7,
CaloClouds II 651.7, CaloClouds II (CM) 84.4 ms; A100, batch 64: 24.9, 6.1, 2.1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import numpy as np
import torch

from pcbench.models.showers.caloclouds import CaloClouds
from pcbench.models.showers.caloclouds2 import CaloClouds2
from pcbench.models.showers.caloclouds2_cm import CaloClouds2CM
from pcbench.models.showers.pointwise import ConcatSquashLinear
from pcbench.models.showers.flow import ShowerStats

PUBLISHED = {("caloclouds", "cpu", 1): 3146.7, ("caloclouds2", "cpu", 1): 651.68, ("caloclouds2-cm", "cpu", 1): 84.35,
             ("caloclouds", "cuda", 64): 24.91, ("caloclouds2", "cuda", 64): 6.12, ("caloclouds2-cm", "cuda", 64): 2.09}
MODELS = {"caloclouds": (CaloClouds, 100), "caloclouds2": (CaloClouds2, 25), "caloclouds2-cm": (CaloClouds2CM, 1)}


def stats() -> ShowerStats:
    """ILD-like normalisations (any values serve: they do not change the time)."""
    return ShowerStats(30, 6000, 6000.0, 2500.0, (0.0, 1900.0, 40.0), (5.0, 30.0, 5.0), 2.0, (-200.0, 200.0), (-160.0, 240.0))


@contextmanager
def naive(model):
    """The whole batch in one slice, and the layers unfolded."""
    slices = model.in_slices
    model.in_slices = lambda fn, x, context, points=0: fn(x, context)
    ConcatSquashLinear.fold = False
    try:
        yield
    finally:
        model.in_slices = slices
        ConcatSquashLinear.fold = True


def one_call(model, batch: int, points: int, device: str, plain: bool) -> float:
    """Seconds per shower of one call of the point model (after the caller's warm-up)."""
    ctx = model.point_context(np.full(batch, 50e3), np.full(batch, points)).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    with torch.inference_mode():
        if plain:
            with naive(model):
                model.generate_points(ctx, points, g)
        else:
            model.generate_points(ctx, points, g)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--points", type=int, default=1500)
    ap.add_argument("--batch-sizes", default="1,64")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default="caloclouds,caloclouds2,caloclouds2-cm")
    ap.add_argument("--naive", default="caloclouds2-cm", help="models also timed naively (comma list, or none)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {}
    for name in args.models.split(","):
        cls, _ = MODELS[name]
        models[name] = cls(cls.configs["full"], stats()).to(args.device).eval()
    runs = [(name, b, plain) for name in models for b in (int(x) for x in args.batch_sizes.split(","))
            for plain in ((False, True) if name in args.naive.split(",") else (False,))]
    times: dict[tuple, list[float]] = {r: [] for r in runs}
    for r in runs:  # warm-up
        one_call(models[r[0]], r[1], args.points, args.device, r[2])
    for _ in range(args.rounds):
        for r in runs:
            times[r].append(one_call(models[r[0]], r[1], args.points, args.device, r[2]) * 1e3)
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, {args.points} points per "
          f"shower, PointWise Net widths {CaloClouds2.configs['full']['widths']}, {args.rounds} rounds")
    print(f"{'model':<16}{'evals':>6}{'batch':>6}{'variant':>9}{'min ms':>9}{'median ms':>11}{'published ms':>14}"
          f"{'naive/pcbench':>15}")
    for name, b, plain in runs:
        v = times[(name, b, plain)]
        pub = PUBLISHED.get((name, args.device, b))
        ratio = "-"
        if not plain and (name, b, True) in times:
            ratio = f"{statistics.median(times[(name, b, True)]) / statistics.median(v):.2f}x"
        print(f"{name:<16}{MODELS[name][1]:>6}{b:>6}{'naive' if plain else 'pcbench':>9}{min(v):>9.2f}"
              f"{statistics.median(v):>11.2f}{(f'{pub:.1f}' if pub else '-'):>14}{ratio:>15}")


if __name__ == "__main__":
    main()
