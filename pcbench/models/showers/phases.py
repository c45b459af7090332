"""The training phases of the CaloClouds family, built from a model's losses: ShowerFlow epochs
(negative log-likelihood of the per-shower quantities) and point-model steps (a diffusion or a
distillation loss), each a ``trainer.Phase`` of the one training loop.

The point model has no interaction between points, so each step trains on a random subset of
``points_per_shower`` points of each shower (conditioned on the shower's true number of points):
the loss is the same in expectation and the step far cheaper.  Every random draw is a function of
(seed, phase, step, rank), so that a resumed run continues the same sequence.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..trainer import Phase
from .base import ShowerRun
from .flow import shower_quantities

__all__ = ["flow_phase", "point_phase", "subsample"]

#: the point model's losses are recorded (and shown) as means over this many steps
RECORD_EVERY = 50


def subsample(x: np.ndarray, mask: np.ndarray, rows: np.ndarray, k: int, rng: np.random.Generator):
    """(B, k, 4) random real points of each shower in ``rows`` (fewer: masked), (B, k) mask."""
    keys = np.where(mask[rows], rng.random(mask[rows].shape), -1.0)
    pick = np.argsort(-keys, axis=1)[:, :k]
    return np.take_along_axis(x[rows], pick[..., None], axis=1), np.take_along_axis(mask[rows], pick, axis=1)


def flow_phase(model, run: ShowerRun) -> Phase:
    """ShowerFlow's epochs: seeded shuffles of the training showers, as many batches per rank."""
    c, state, data = model.config, run.state, run.data
    feats = torch.as_tensor(model.flow.encode(shower_quantities(data.points, data.mask, model.layers),
                                              data.incident_energy))
    flow = model.flow.flow
    ctx = model.flow.context(data.incident_energy)
    opt = run.optimizers["flow"]

    def epoch() -> str:
        rng = np.random.default_rng([run.opts.seed, 1, state["flow_epoch"]])
        usable = len(feats) - len(feats) % run.world  # as many batches on every rank (DDP's all-reduce)
        order = rng.permutation(len(feats))[:usable][run.rank::run.world]
        losses = []
        for i in range(0, len(order), c["flow_batch_size"]):
            idx = torch.as_tensor(order[i:i + c["flow_batch_size"]])
            loss = -flow(ctx[idx].to(run.device)).log_prob(feats[idx].to(run.device)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        state["flow_epoch"] += 1
        state["history"].append({"phase": "flow", "epoch": state["flow_epoch"], "nll": float(np.mean(losses))})
        return f"loss {float(np.mean(losses)):.4g}"

    return Phase("ShowerFlow", c["flow_epochs"], "epochs", lambda: state["flow_epoch"], epoch)


def point_phase(model, run: ShowerRun, label: str, key: str, planned: int, stream: int,
                loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]) -> Phase:
    """Steps of the point model on ``loss(points, mask, context, generator)``, then the EMA update;
    ``state[key]`` counts them, ``stream`` separates their random draws from other phases'."""
    c, state, data, world, rank = model.config, run.state, run.data, run.world, run.rank
    x_all = model.to_model(data.points, data.mask)
    n_pts = data.mask.sum(1)
    opt = run.optimizers["net"]
    gen = torch.Generator(device=run.device)
    window: list[float] = []  # losses since the last history entry (their mean is recorded)

    def step() -> str | None:
        gen.manual_seed(run.opts.seed * 1_000_003 + state[key] * world + rank)  # a function of the step: resumable
        rng = np.random.default_rng([run.opts.seed, stream, state[key], rank])
        rows = rng.integers(0, len(x_all), c["batch_size"])
        xb, mb = subsample(x_all, data.mask, rows, c["points_per_shower"], rng)
        xb, mb = torch.as_tensor(xb).to(run.device), torch.as_tensor(mb).to(run.device)
        context = model.point_context(data.incident_energy[rows], n_pts[rows]).to(run.device)
        value = loss(xb, mb, context, gen)
        opt.zero_grad()
        value.backward()
        opt.step()
        model.update_ema()
        state[key] += 1
        window.append(value.item())
        if state[key] % RECORD_EVERY and state[key] != planned:
            return None
        state["history"].append({"phase": label, "step": state[key], "loss": float(np.mean(window))})
        text = f"loss {float(np.mean(window)):.4g}"
        window.clear()
        return text

    every = 500 if run.opts.checkpoint_every is None else run.opts.checkpoint_every
    return Phase("point model" if label == "diffusion" else "consistency distillation", planned, "steps",
                 lambda: state[key], step, every)
