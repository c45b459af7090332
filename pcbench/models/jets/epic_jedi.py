"""EPiC-JeDi (Buhmann et al., arXiv:2310.00049): the JeDi diffusion (``vp_diffusion.py``) with the
Local EPiC noise predictor (``local_epic.py``), as the published runs of ``DebajyotiS/PC-JeDi``
(branch ``all``: ``configs/model/localepicjedi.yaml``, ``configs/experiment/epic_{30,150}_{cond,
uncond}.yaml``, ``src/models/local_epic_jedi.py``).

The particles are standardised to unit variance (``norm_sigma`` 1, as the reference's
normaliser); the condition is the 32-feature time encoding and, if ``conditional``, the jet's
relative mass and pT.  Training: the JeDi loss, AdamW with a linear warm-up of the learning rate
over ``warmup`` steps, gradients clipped to norm 5, an exponential moving average (``ema``) of
the weights, which generates.  Differences to the reference, by design: the condition is the
clouds' own relative mass and pT drawn jointly from the training jets (as pcbench's EPiC-FM;
the reference conditions on JetNet's jet pT and mass and draws them, with the multiplicity, from
a separately trained normalising flow; pcbench draws them from the training jets of the
multiplicity being generated), and batches hold jets of one multiplicity (no padding).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ...data import JetSet
from .base import JetGenerator, JetStats
from .epic_fm import jet_conditions, training_conditions
from .local_epic import LocalEPiC
from .vp_diffusion import VPSchedule, jedi_loss, jedi_sample, time_encoding

__all__ = ["EPiCJeDi"]

TIME_DIM = 32


class EPiCJeDi(JetGenerator):
    """EPiC-JeDi; the ``full`` config is the published runs' (file and line in
    docs/generators-jets.md), ``small`` fits 2 CPU cores."""

    name = "epic-jedi"
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"hidden": 128, "global_dim": 10, "layers": 6, "sum_scale": 0.01, "conditional": True,
                 "max_sr": 0.999, "min_sr": 0.02, "mle_weight": 1e-3, "lr": 1e-4, "weight_decay": 1e-4,
                 "warmup": 20_000, "grad_clip": 5.0, "ema": 0.999, "batch_size": 1024, "epochs": 10_000,
                 "steps": 200, "method": "em", "norm_sigma": 1.0},
        "small": {"hidden": 64, "global_dim": 10, "layers": 3, "sum_scale": 0.01, "conditional": False,
                  "max_sr": 0.999, "min_sr": 0.02, "mle_weight": 1e-3, "lr": 1e-3, "weight_decay": 1e-4,
                  "warmup": 500, "grad_clip": 5.0, "ema": 0.99, "batch_size": 128, "epochs": 100,
                  "steps": 100, "method": "em", "norm_sigma": 1.0},
    }

    @classmethod
    def build(cls, config: dict[str, Any], stats: JetStats, jets: JetSet | None = None) -> EPiCJeDi:
        """With ``conditional``, the (N, 2) conditions of every training jet (drawn at sampling);
        ``jets`` are the training jets (None when restoring)."""
        scaled = replace(stats, norm_sigma=config["norm_sigma"])
        conditions = counts = None
        if jets is not None and config.get("conditional"):
            conditions, counts = training_conditions(jets, scaled), jets.mask.sum(1)
        return cls(config, stats, conditions, counts)

    def __init__(self, config: dict[str, Any], stats: JetStats, conditions: np.ndarray | None = None,
                 counts: np.ndarray | None = None):
        c = dict(config)
        super().__init__(c, replace(stats, norm_sigma=c["norm_sigma"]))
        self.schedule = VPSchedule(c["max_sr"], c["min_sr"])
        n_cond = TIME_DIM + (2 if c["conditional"] else 0)
        self.net = LocalEPiC(3, n_cond, c["hidden"], c["global_dim"], c["layers"], c["sum_scale"])
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("train_conditions", torch.as_tensor(
            conditions if conditions is not None else np.zeros((1, 2)), dtype=torch.float32))
        self.register_buffer("train_counts", torch.as_tensor(  # each condition's multiplicity
            counts if counts is not None else np.zeros(1), dtype=torch.long))

    def trainable(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"net": torch.optim.AdamW(self.net.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])}

    def _context(self, t: torch.Tensor, jet_cond: torch.Tensor | None) -> torch.Tensor:
        enc = time_encoding(t, TIME_DIM)
        return enc if jet_cond is None else torch.cat([enc, jet_cond], 1)

    def training_step(self, x, optimizers, modules):
        c = self.config
        net, opt = modules["net"], optimizers["net"]
        jet_cond = jet_conditions(x, self.stats) if c["conditional"] else None
        loss = jedi_loss(lambda xt, t: net(xt, self._context(t, jet_cond)), x, self.schedule, c["mle_weight"])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), c["grad_clip"])
        self.steps_done += 1
        for group in opt.param_groups:  # linear warm-up to the constant learning rate
            group["lr"] = c["lr"] * min(1.0, float(self.steps_done) / max(c["warmup"], 1))
        opt.step()
        with torch.no_grad():
            for e, p in zip(self.ema_net.parameters(), self.net.parameters()):
                e.lerp_(p, 1.0 - c["ema"])
        return {"loss": loss.item()}

    def generate(self, n_jets, multiplicity, generator, steps: int | None = None, method: str | None = None):
        c = self.config
        x = torch.randn(n_jets, multiplicity, 3, generator=generator, device=self.device)
        jet_cond = None
        if c["conditional"]:  # (mass, pT) of training jets of this multiplicity (all jets if none has it)
            pool = torch.nonzero(self.train_counts == multiplicity).flatten()
            pool = pool if len(pool) else torch.arange(len(self.train_conditions), device=self.device)
            rows = pool[torch.randint(len(pool), (n_jets,), generator=generator, device=self.device)]
            jet_cond = self.train_conditions[rows]
        return jedi_sample(lambda y, t: self.ema_net(y, self._context(t, jet_cond)), x, self.schedule,
                           steps or c["steps"], method or c["method"], generator)
