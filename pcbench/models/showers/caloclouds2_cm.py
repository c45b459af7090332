"""CaloClouds II (CM) (Buhmann et al., arXiv:2309.05704): the CaloClouds II point model distilled
into a one-step consistency model (Song et al., arXiv:2303.01469).  The student starts from the
teacher's EMA weights with the consistency boundary condition (D = identity at sigma_min); its
EMA is the distillation target; sampling is one evaluation at sigma_max.  ShowerFlow and the
calibrations are the teacher's."""

from __future__ import annotations

from typing import Any

import torch

from ...data.containers import ShowerPointSet
from ..trainer import Phase, TrainOptions
from .base import ShowerGenerator, ShowerRun
from .caloclouds2 import CaloClouds2
from .edm import consistency_loss
from .phases import point_phase

__all__ = ["CaloClouds2CM"]


class CaloClouds2CM(CaloClouds2):
    """One network evaluation per shower."""

    name = "caloclouds2-cm"
    consistency = True
    teacher_of = "caloclouds2"
    configs: dict[str, dict[str, Any]] = {
        "full": {**CaloClouds2.configs["full"], "cm_steps": 200_000, "lr": 4e-5, "ema_decay": 0.9999},
        "small": {**CaloClouds2.configs["small"], "cm_steps": 1500, "lr": 2e-4, "ema_decay": 0.99},
    }

    @classmethod
    def from_teacher(cls, teacher: CaloClouds2, config: dict[str, Any]) -> CaloClouds2CM:
        """A student with the teacher's flow, statistics, occupancy and point weights (EMA)."""
        student = cls({**teacher.config, **{k: config[k] for k in ("cm_steps", "cm_scales", "lr", "ema_decay")}},
                      teacher.stats)
        student.flow.load_state_dict(teacher.flow.state_dict())
        student.denoiser.net.load_state_dict(teacher.ema.net.state_dict())
        student.ema.net.load_state_dict(teacher.ema.net.state_dict())
        student.occupancy = teacher.occupancy
        return student

    @classmethod
    def build(cls, config: dict[str, Any], data: ShowerPointSet, opts: TrainOptions,
              teacher: ShowerGenerator | None = None, log_point_energy: bool = False) -> CaloClouds2CM:
        return cls.from_teacher(teacher, config)

    def phases(self, run: ShowerRun) -> list[Phase]:
        def loss(x, mask, context, generator):
            return self.distillation_loss(run.teacher, x, mask, context, generator)

        return [point_phase(self, run, "distillation", "cm_step", self.config["cm_steps"], 3, loss)]

    def finish(self, run: ShowerRun) -> None:
        """Nothing: ShowerFlow and the calibrations are the teacher's."""

    def untrained(self, state: dict[str, Any]) -> list[str]:
        if state["cm_step"] < self.config["cm_steps"]:
            return [f"consistency distillation ({state['cm_step']} of {self.config['cm_steps']} steps)"]
        return []

    def distillation_loss(self, teacher: CaloClouds2, x: torch.Tensor, mask: torch.Tensor, context: torch.Tensor,
                          generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.config
        return consistency_loss(self.denoiser, self.ema, teacher.ema, x, context, mask, c["cm_scales"],
                                c["sigma_min"], c["sigma_max"], c["rho"], generator)

    def generate_points(self, context: torch.Tensor, n_max: int, generator: torch.Generator,
                        num_steps: int | None = None) -> torch.Tensor:
        """One evaluation: D(x_T, sigma_max) with x_T ~ N(0, sigma_max^2)."""
        sigma_max = self.config["sigma_max"]
        x = torch.randn((len(context), n_max, 4), generator=generator, device=context.device) * sigma_max
        with torch.no_grad():
            return self.in_slices(lambda xs, cs: self.ema(xs, sigma_max, cs), x, context)
