"""The one training loop of every generator, jets and showers: phases of epochs or steps, a
wall-clock budget that all ranks agree on, periodic checkpoints, the progress bar, DDP.

A generator's training is a list of :class:`Phase` (a jet model: its epochs; CaloClouds II:
ShowerFlow epochs, then point-model steps; its consistency model: distillation steps).  Each phase
says how many units it plans, how many are done (read from the run's state, so a resumed run
continues), and trains one unit at a time.  :func:`run_phases` runs them in order and stops after
the unit that ends past ``max_minutes``: under DDP (``torchrun``) every rank takes the same
decision (the first rank past the budget stops them all), so that no rank waits alone in an
all-reduce.  Started as ``torchrun --nproc_per_node K -m pcbench train ...``, training runs on K
processes (gloo on CPU, nccl on GPUs); :func:`distributed_context` sets the process group up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._progress import TrainingProgress

__all__ = ["TrainOptions", "Phase", "Budget", "CLOCKS", "run_phases", "distributed_context", "ddp"]


@dataclass
class TrainOptions:
    """How to train any generator (the model's own settings are in its config).

    Attributes:
        out_dir: where ``last.pt`` (and, for jets, ``best.pt``) are written.
        device: ``cpu`` or ``cuda`` (``cuda:<local rank>`` under torchrun).
        seed: seeds weights, noise and batch order: same seed, same weights on CPU.
        resume: continue from ``out_dir/last.pt`` (which must exist).
        max_minutes: stop after the unit (epoch, step) that ends past this budget, the same unit
            on every rank (None: no limit).
        clock: what ``max_minutes`` counts: ``wall`` (wall-clock time) or ``cpu`` (this
            process's CPU time, all its threads: a budget that other load on the machine does
            not shrink; with one torch thread it equals the wall time on an idle core).
        progress: show a rich progress bar.
        provenance: data provenance stored in the checkpoints.
        epochs: jets: total epochs (None: the config's; a resumed run continues up to it).
        checkpoint_every: write ``last.pt`` every this many units (None: 5 epochs, 500 steps).
        val_every, val_jets: jets: validate W1M on at most ``val_jets`` validation jets every
            ``val_every`` epochs (0: never); ``best.pt`` is the best so far.
        teacher: the checkpoint a distilled model learns from (caloclouds2-cm).
        occupancy_showers: showers used to fit the occupancy calibration (CaloClouds).
    """

    out_dir: Path
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    max_minutes: float | None = None
    clock: str = "wall"
    progress: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    checkpoint_every: int | None = None
    val_every: int = 5
    val_jets: int = 5000
    teacher: Path | None = None
    occupancy_showers: int = 300


@dataclass
class Phase:
    """One phase of a training run.

    Attributes:
        label: its name in the bar and in messages ("epochs", "ShowerFlow", "point model").
        planned: units planned in total (a resumed run continues up to this number).
        unit: "epochs" or "steps".
        done: the units done so far (the run's state: it advances as ``step`` trains).
        step: trains one unit and advances the state; returns the bar's text, or None to leave
            the bar as it is (e.g. between the point model's 50-step records).
        checkpoint_every: write a checkpoint (``save``) every this many units; 0: only at the end.
    """

    label: str
    planned: int
    unit: str
    done: Callable[[], int]
    step: Callable[[], str | None]
    checkpoint_every: int = 0


#: the clocks a budget can count [s]: wall-clock time, or this process's CPU time (all threads)
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


class Budget:
    """A budget of ``max_minutes`` (None: none) on ``clock`` (see :data:`CLOCKS`), agreed by
    all ``world`` ranks."""

    def __init__(self, max_minutes: float | None, world: int = 1, clock: str = "wall"):
        if clock not in CLOCKS:
            raise ValueError(f"clock: expected one of {', '.join(CLOCKS)}, got {clock!r}")
        self.max_minutes, self.world, self.clock_name = max_minutes, world, clock
        self.clock = CLOCKS[clock]
        self.started = self.clock()

    def elapsed(self) -> float:
        """Seconds spent on this rank's clock since the budget started."""
        return self.clock() - self.started

    def spent(self) -> bool:
        """Whether the budget is spent on any rank (every rank gets the same answer)."""
        if self.max_minutes is None:
            return False
        late = self.elapsed() > 60 * self.max_minutes
        if self.world > 1:
            import torch.distributed as dist

            flag = torch.tensor([float(late)])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            late = bool(flag.item())
        return late


def run_phases(name: str, phases: list[Phase], budget: Budget, save: Callable[[], object], show: bool) -> bool:
    """Run ``phases`` in order, each until its plan is done or the budget is spent (checked after
    every unit); ``save`` writes a checkpoint at each phase's cadence.  Returns whether the budget
    stopped the run.  The caller writes the final checkpoint."""
    bar = TrainingProgress(name, [(p.label, p.planned, p.unit) for p in phases], budget.max_minutes, show,
                           done=tuple(p.done() for p in phases), budget_elapsed=budget.elapsed,
                           clock=budget.clock_name)
    try:
        for i, phase in enumerate(phases):
            while phase.done() < phase.planned:
                text = phase.step()
                k = phase.done()
                if text is not None:
                    bar.update(i, k, text)
                if budget.spent():
                    return True
                if phase.checkpoint_every and k % phase.checkpoint_every == 0 and k < phase.planned:
                    save()
        return False
    finally:
        bar.close()


def distributed_context(device: str) -> tuple[int, int, str]:
    """(rank, world size, device); initialises the process group when torchrun started us."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), world, device


def wait_for_all_ranks(world: int) -> None:
    """A barrier at the end of distributed training: no rank returns (and tears its process group
    down) while rank 0 is still writing the checkpoint the others are about to name."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def ddp(module: torch.nn.Module, device: str, find_unused: bool = False) -> torch.nn.Module:
    """``module`` in DistributedDataParallel (gradients averaged over the ranks); ``find_unused``:
    parameters that a loss does not reach are allowed (DDP then searches the graph each step)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(module, device_ids=[device] if device.startswith("cuda") else None, find_unused_parameters=find_unused)
