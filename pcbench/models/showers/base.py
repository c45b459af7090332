"""What every shower generator implements: how it is built from training showers, the phases it
trains (ShowerFlow epochs, point-model or distillation steps; none for a fitted baseline), what
its checkpoint holds, what finishes it (CaloClouds' occupancy calibration), and sampling.

``showers.training`` drives any of them with the one training loop; it knows no model by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...geometry import Geometry, get_geometry
from ..generator import Generator, load_state
from ..trainer import Phase, TrainOptions
from .pipeline import PipelineSteps

__all__ = ["ShowerGenerator", "ShowerRun"]


@dataclass
class ShowerRun:
    """What a model's phases train with.

    Attributes:
        data: the training showers as points (point convention, mm, MeV).
        state: the run's counters and history (saved in ``last.pt``; a resumed run continues).
        opts: the training options (seed, checkpoint cadence, ...).
        rank, world, device: this process under DDP (0, 1 and the device without).
        optimizers: by name, as :meth:`ShowerGenerator.make_optimizers` made them.
        teacher: the model a distillation learns from (None otherwise).
    """

    data: ShowerPointSet
    state: dict[str, Any]
    opts: TrainOptions
    rank: int
    world: int
    device: str
    optimizers: dict[str, torch.optim.Optimizer]
    teacher: ShowerGenerator | None = None


class ShowerGenerator(Generator):
    """Base class of the shower generators (the module docstring lists what they implement)."""

    kind = "showers"

    @classmethod
    def build(cls, config: dict[str, Any], data: ShowerPointSet, opts: TrainOptions,
              teacher: ShowerGenerator | None = None, log_point_energy: bool = False) -> ShowerGenerator:
        """A fresh model fitted to the training showers (statistics, or the whole baseline);
        ``log_point_energy``: the points came from voxels (energies spanning decades)."""
        raise NotImplementedError

    @classmethod
    def restore(cls, payload: dict[str, Any]) -> ShowerGenerator:
        model = cls.from_payload(payload)
        load_state(model, payload["state_dict"])
        return model

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ShowerGenerator:
        """The model (weights not yet loaded) that a checkpoint payload describes."""
        raise NotImplementedError

    # -- training ------------------------------------------------------------------------------
    def initial_state(self) -> dict[str, Any]:
        """The counters of a fresh run (e.g. epochs and steps done per phase)."""
        return {"history": []}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def phases(self, run: ShowerRun) -> list[Phase]:
        """The phases the one training loop runs, in order (none: fitted when built)."""
        return []

    def trained_parts(self) -> list[tuple[nn.Module, str]]:
        """(parent, attribute) of every separately called trained network (each DDP-wrapped)."""
        return []

    def finish(self, run: ShowerRun) -> None:
        """What follows the phases once they all ran to their plan (rank 0, eval mode)."""

    def untrained(self, state: dict[str, Any]) -> list[str]:
        """The parts a (budget-stopped) run left short of its config, in words."""
        return []

    def payload(self) -> dict[str, Any]:
        """What a checkpoint holds besides the weights and the run's state."""
        return {"model": self.name, "fitted": self.fitted, "config": self.config}

    # -- sampling -----------------------------------------------------------------------------
    @property
    def grid(self) -> Geometry:
        """The geometry the model generates for (its cells, for the occupancy and projection)."""
        return get_geometry(self.config["grid"])

    def sample(self, e_inc_mev: np.ndarray, seed: int = 0, batch_size: int = 64,
               steps: PipelineSteps = PipelineSteps(),
               progress: Callable[[int], None] | None = None) -> ShowerPointSet | VoxelShowerSet:
        """Showers at the given incident energies [MeV]: points (point convention, MeV), or with
        ``steps.project`` cell hits (grid) or voxels (CaloChallenge); ``progress`` is called with
        the number of showers of each finished batch."""
        raise NotImplementedError
