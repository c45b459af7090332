"""Training any registered jet generator: epochs, validation W1M, best epoch, checkpoints, resume, DDP.

The epochs are one phase of the one training loop (``trainer.py``: budget, checkpoints, bar).
Under ``torchrun`` every rank draws the same shuffled equal-multiplicity batches and takes every
K-th, gradients are averaged, and rank 0 validates and writes the checkpoints.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import __version__
from ...data import JetSet
from ...errors import ConfigError, TrainingError
from ...metrics.jet_observables import jet_kinematics
from ...metrics.wasserstein import w1
from ..checkpoints import load_checkpoint_file, resume_path, save_checkpoint
from .base import JetGenerator, JetStats, equal_multiplicity_batches
from ..trainer import Budget, Phase, TrainOptions, ddp, distributed_context, run_phases, wait_for_all_ranks

__all__ = ["train_jets"]


def _validate(model: JetGenerator, valid: JetSet, n: int, seed: int) -> float:
    """W1 of the relative jet mass between ``n`` generated and validation jets."""
    real = valid.subset(slice(0, n))
    gen = model.sample(len(real), seed=seed, multiplicities=real.mask.sum(1))
    return w1(jet_kinematics(real.particles, real.mask)["mass"], jet_kinematics(gen.particles, gen.mask)["mass"])


def _payload(model: JetGenerator, optimizers, epoch: int, history: list, best: dict, planned: int,
             opts: TrainOptions, world: int) -> dict[str, Any]:
    return {"model": model.name, "fitted": model.fitted, "config": model.config, "stats": model.stats.to_dict(), "state_dict": model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()}, "epoch": epoch, "history": history,
            "best": best, "planned_epochs": planned, "seed": opts.seed, "world_size": world, "torch_rng": torch.get_rng_state(),
            "provenance": {**opts.provenance, "pcbench_version": __version__, "torch": torch.__version__}}


def _mark_selected(best: Path, trained: int, history: list[dict[str, Any]], opts: TrainOptions) -> None:
    """Record in ``best.pt`` that it was selected by validation W1M among ``trained`` epochs, with
    the whole run's time, so that its summary says "best validation epoch 45 of 75" rather than
    an unfinished 45-epoch run."""
    state = load_checkpoint_file(best, "cpu")
    state.pop("checkpoint_md5")  # of the file before this mark
    state["selected"] = {"by": "validation W1M", "every": opts.val_every, "val_jets": opts.val_jets,
                         "epoch": state["epoch"], "of": trained, "val_w1m": state["best"]["w1m"],
                         "minutes": round(sum(h["seconds"] for h in history) / 60, 2),
                         "cpu_minutes": round(sum(h["cpu_seconds"] for h in history) / 60, 2)}
    save_checkpoint(best, state)


def planned_epochs(model: str, config: dict[str, Any], num_particles: int) -> int:
    """The epochs ``config`` plans for jets of ``num_particles`` particles: its ``epochs``, either a
    number or, in a small config whose cost per epoch grows with the particle count, a mapping
    from particle count to epochs (``{30: 75, 150: 32}``: each fits the same CPU budget)."""
    epochs = config["epochs"]
    if not isinstance(epochs, dict):
        return int(epochs)
    by_count = {int(k): int(v) for k, v in epochs.items()}
    if num_particles not in by_count:
        raise ConfigError(f"{model}: this config plans epochs for jets of {', '.join(map(str, sorted(by_count)))} "
                          f"particles, not {num_particles}; give them with --set epochs=N")
    return by_count[num_particles]


def train_jets(cls: type[JetGenerator], config: dict[str, Any], train_jets: JetSet, opts: TrainOptions,
               valid_jets: JetSet | None = None) -> Path:
    """Train jet generator ``cls``; returns the path of the best checkpoint (``last.pt`` without
    validation).  Its epochs are one phase of the one training loop (``trainer.py``)."""
    rank, world, device = distributed_context(opts.device)
    torch.manual_seed(opts.seed)
    out = Path(opts.out_dir)
    planned = int(opts.epochs) if opts.epochs is not None else planned_epochs(cls.name, config,
                                                                              train_jets.particles.shape[1])
    model = cls.build(config, JetStats.fit(train_jets), train_jets).to(device)
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
        modules = {k: ddp(m, device, model.ddp_unused_parameters) for k, m in modules.items()}
    mult = train_jets.mask.sum(1)
    particles = torch.as_tensor(train_jets.particles, dtype=torch.float32)
    budget = Budget(opts.max_minutes, world, opts.clock)

    def save(path: Path = out / "last.pt") -> None:
        if rank == 0:
            save_checkpoint(path, _payload(model, optimizers, run["epoch"], run["history"], run["best"], planned,
                                           opts, world))

    def epoch() -> str:
        t0, c0 = time.perf_counter(), time.process_time()
        e = run["epoch"] + 1
        model.train()
        rng = np.random.default_rng([opts.seed, e])
        losses: dict[str, list[float]] = {}
        for idx in equal_multiplicity_batches(mult, model.config["batch_size"], rng, rank, world):
            m = int(mult[idx[0]])
            x = model.stats.normalise(particles[idx, :m].to(device))
            for k, v in model.training_step(x, optimizers, modules).items():
                losses.setdefault(k, []).append(v)
        record = {"epoch": e, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                  **{k: float(np.mean(v)) for k, v in losses.items()}}
        diverged = [k for k in losses if not math.isfinite(record[k])]
        if diverged:  # stop before this epoch's weights reach a checkpoint
            raise TrainingError(f"{model.name}: training diverged in epoch {e}: loss {diverged[0]!r} is "
                                f"{record[diverged[0]]} (the weights are no longer finite); {out / 'last.pt'} "
                                f"holds the last checkpoint written before it")
        run["epoch"] = e
        if rank == 0 and valid_jets is not None and opts.val_every and e % opts.val_every == 0:
            record["val_w1m"] = _validate(model, valid_jets, opts.val_jets, opts.seed)
        run["history"].append(record)
        if record.get("val_w1m", float("inf")) < run["best"]["w1m"]:
            run["best"] = {"epoch": e, "w1m": record["val_w1m"]}
            save(out / "best.pt")
        return " ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds", "cpu_seconds"))

    phase = Phase("epochs", planned, "", lambda: run["epoch"], epoch,
                  5 if opts.checkpoint_every is None else opts.checkpoint_every)
    start = run["epoch"]
    run_phases(model.name, [phase], budget, save, opts.progress and rank == 0)
    if run["epoch"] > start or not (out / "last.pt").exists():
        save()
    if rank == 0 and (out / "best.pt").exists():
        _mark_selected(out / "best.pt", run["epoch"], run["history"], opts)
    wait_for_all_ranks(world)
    return out / ("best.pt" if (out / "best.pt").exists() else "last.pt")
