"""Training any registered jet generator: epochs, validation W1M, best epoch, checkpoints, resume, DDP.

The epochs are one phase of the one training loop (``trainer.py``: budget, checkpoints, bar).
Under ``torchrun`` every rank draws the same shuffled equal-multiplicity batches and takes every
K-th, gradients are averaged, and rank 0 validates and writes the checkpoints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import __version__
from ...data import JetSet
from ...metrics.jet_observables import jet_kinematics
from ...metrics.wasserstein import w1
from ..checkpoints import load_checkpoint_file, resume_path, save_checkpoint
from .base import JetGenerator, JetStats, equal_multiplicity_batches
from ...errors import CheckpointError
from ..registry import MODELS, build_model
from ..trainer import Budget, Phase, ddp, distributed_context, run_phases

__all__ = ["TrainOptions", "train", "load_model", "distributed_context"]  # distributed_context: from trainer


@dataclass
class TrainOptions:
    """How to train (the model's own settings are in its config).

    Attributes:
        epochs: total epochs (a resumed run continues up to this number).
        out_dir: where ``last.pt`` and ``best.pt`` are written.
        device: ``cpu`` or ``cuda`` (``cuda:<local rank>`` under torchrun).
        seed: seeds weights, noise and batch order: same seed, same weights on CPU.
        val_every: validate (W1M on the validation jets) every this many epochs; 0 never.
        val_jets: at most this many validation jets.
        checkpoint_every: write ``last.pt`` every this many epochs (and at the end).
        resume: continue from ``out_dir/last.pt``.
        max_minutes: stop after the first epoch that ends past this wall-clock budget (None: no limit).
        progress: show a rich progress bar.
        provenance: data provenance stored in the checkpoints.
    """

    epochs: int
    out_dir: Path
    device: str = "cpu"
    seed: int = 0
    val_every: int = 5
    val_jets: int = 5000
    checkpoint_every: int = 5
    resume: bool = False
    max_minutes: float | None = None
    progress: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)


def _validate(model: JetGenerator, valid: JetSet, n: int, seed: int) -> float:
    """W1 of the relative jet mass between ``n`` generated and validation jets."""
    real = valid.subset(slice(0, n))
    gen = model.sample(len(real), seed=seed, multiplicities=real.mask.sum(1))
    return w1(jet_kinematics(real.particles, real.mask)["mass"], jet_kinematics(gen.particles, gen.mask)["mass"])


def _payload(model: JetGenerator, name: str, optimizers, epoch: int, history: list, best: dict,
             opts: TrainOptions, world: int) -> dict[str, Any]:
    return {"model": name, "config": model.config, "stats": model.stats.to_dict(), "state_dict": model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()}, "epoch": epoch, "history": history,
            "best": best, "planned_epochs": opts.epochs, "seed": opts.seed, "world_size": world, "torch_rng": torch.get_rng_state(),
            "provenance": {**opts.provenance, "pcbench_version": __version__, "torch": torch.__version__}}


def train(name: str, config: dict[str, Any], train_jets: JetSet, opts: TrainOptions,
          valid_jets: JetSet | None = None) -> Path:
    """Train model ``name``; returns the path of the best checkpoint (``last.pt`` without validation).
    Its epochs are one phase of the one training loop (``trainer.py``)."""
    rank, world, device = distributed_context(opts.device)
    torch.manual_seed(opts.seed)
    out = Path(opts.out_dir)
    model = build_model(name, config, train_jets).to(device)
    optimizers = model.make_optimizers()
    run = {"epoch": 0, "history": [], "best": {"epoch": None, "w1m": float("inf")}}
    last = resume_path(out, opts.resume)
    if last is not None:
        state = load_checkpoint_file(last, device)
        model.load_state_dict(state["state_dict"])
        for k, o in optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        run.update(epoch=state["epoch"], history=state["history"], best=state["best"])
        torch.set_rng_state(state["torch_rng"])
    modules = dict(model.trainable())
    if world > 1:
        modules = {k: ddp(m, device) for k, m in modules.items()}
    mult = train_jets.mask.sum(1)
    particles = torch.as_tensor(train_jets.particles, dtype=torch.float32)
    budget = Budget(opts.max_minutes, world)

    def save(path: Path = out / "last.pt") -> None:
        if rank == 0:
            save_checkpoint(path, _payload(model, name, optimizers, run["epoch"], run["history"], run["best"], opts,
                                           world))

    def epoch() -> str:
        t0 = time.perf_counter()
        e = run["epoch"] + 1
        model.train()
        rng = np.random.default_rng([opts.seed, e])
        losses: dict[str, list[float]] = {}
        for idx in equal_multiplicity_batches(mult, model.config["batch_size"], rng, rank, world):
            m = int(mult[idx[0]])
            x = model.stats.normalise(particles[idx, :m].to(device))
            for k, v in model.training_step(x, optimizers, modules).items():
                losses.setdefault(k, []).append(v)
        record = {"epoch": e, "seconds": time.perf_counter() - t0, **{k: float(np.mean(v)) for k, v in losses.items()}}
        run["epoch"] = e
        if rank == 0 and valid_jets is not None and opts.val_every and e % opts.val_every == 0:
            record["val_w1m"] = _validate(model, valid_jets, opts.val_jets, opts.seed)
        run["history"].append(record)
        if record.get("val_w1m", float("inf")) < run["best"]["w1m"]:
            run["best"] = {"epoch": e, "w1m": record["val_w1m"]}
            save(out / "best.pt")
        return " ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds"))

    phase = Phase("epochs", opts.epochs, "", lambda: run["epoch"], epoch, opts.checkpoint_every)
    start = run["epoch"]
    run_phases(name, [phase], budget, save, opts.progress and rank == 0)
    if run["epoch"] > start or not (out / "last.pt").exists():
        save()
    return out / ("best.pt" if (out / "best.pt").exists() else "last.pt")


def load_model(path: str | Path, device: str = "cpu") -> tuple[JetGenerator, dict[str, Any]]:
    """A generator restored from a checkpoint, in eval mode, and the checkpoint's payload."""
    payload = load_checkpoint_file(path, device)
    if payload["model"] not in MODELS:
        raise CheckpointError(f"{path}: a checkpoint of {payload['model']!r}, not of a jet model ({', '.join(MODELS)})")
    model = build_model(payload["model"], payload["config"], stats=JetStats.from_dict(payload["stats"]))
    if payload["model"] == "independent":  # its particle pool is a buffer of a size known only now
        model.pool = torch.empty_like(payload["state_dict"]["pool"])
    if "train_conditions" in payload["state_dict"]:
        model.train_conditions = torch.empty_like(payload["state_dict"]["train_conditions"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload
