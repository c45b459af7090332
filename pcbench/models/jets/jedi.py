"""What the JeDi generators share (PC-JeDi, Leigh et al., arXiv:2303.05376; EPiC-JeDi, Buhmann et
al., arXiv:2310.00049): a noise predictor ``net(x_t, c)`` trained with the JeDi loss and sampled
with the JeDi samplers (``vp_diffusion.py``); the subclasses choose the network.

The condition c (B, C) is the 32-feature time encoding and, if ``conditional``, the cloud's
relative mass and pT (``epic_fm.jet_conditions``), drawn at generation from the training jets of
the multiplicity being generated.  With ``log_pt`` the network sees log(ptrel), standardised over
the training particles, instead of the standardised ptrel (PC-JeDi's log-pT feature).  Training:
AdamW, a linear warm-up of the learning rate over ``warmup`` steps then constant, gradients
clipped to norm ``grad_clip``, an exponential moving average (``ema``) of the weights, which
generates.  Generated features are clamped to the training range (the references clip eta_rel
and phi_rel to [-0.5, 0.5] and ptrel to [0, 1] before their metrics, ``pc_jedi.py`` L197-209:
the sampler's rare stray particles otherwise dominate the EFP-based FPD).  Batches hold jets of
one multiplicity (no padding; the references pad and mask).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data import JetSet
from .base import JetGenerator, JetStats, feature_bounds
from .epic_fm import jet_conditions, training_conditions
from .vp_diffusion import VPSchedule, jedi_loss, jedi_sample, time_encoding

__all__ = ["JeDiGenerator", "TIME_DIM", "log_pt_stats"]

#: features of the time encoding (both references: 32)
TIME_DIM = 32


def log_pt_stats(jets: JetSet) -> np.ndarray:
    """(2,) mean and standard deviation of log(ptrel) over the real particles of ``jets``."""
    lp = np.log(jets.particles[jets.mask][:, 2].astype(np.float64))
    return np.array([lp.mean(), lp.std() + 1e-12]) if lp.size else np.array([0.0, 1.0])


class JeDiGenerator(JetGenerator):
    """A JeDi diffusion generator (module docstring); subclasses set ``name``, ``configs`` and
    :meth:`make_net`."""

    @classmethod
    def build(cls, config: dict[str, Any], stats: JetStats, jets: JetSet | None = None) -> JeDiGenerator:
        """With ``conditional``, the (N, 2) conditions of every training jet and their
        multiplicities; with ``log_pt``, the training particles' log(ptrel) mean and width
        (``jets`` None when restoring: the buffers come from the checkpoint)."""
        scaled = replace(stats, norm_sigma=config["norm_sigma"])
        conditions = counts = log_pt = None
        if jets is not None and config.get("conditional"):
            conditions, counts = training_conditions(jets, scaled), jets.mask.sum(1)
        if jets is not None and config.get("log_pt"):
            log_pt = log_pt_stats(jets)
        return cls(config, stats, conditions, counts, log_pt, feature_bounds(jets, scaled))

    def __init__(self, config: dict[str, Any], stats: JetStats, conditions: np.ndarray | None = None,
                 counts: np.ndarray | None = None, log_pt: np.ndarray | None = None,
                 bounds: np.ndarray | None = None):
        c = dict(config)
        super().__init__(c, replace(stats, norm_sigma=c["norm_sigma"]))
        self.schedule = VPSchedule(c["max_sr"], c["min_sr"])
        self.net = self.make_net(TIME_DIM + (2 if c["conditional"] else 0))
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("train_conditions", torch.as_tensor(
            conditions if conditions is not None else np.zeros((1, 2)), dtype=torch.float32))
        self.register_buffer("train_counts", torch.as_tensor(  # each condition's multiplicity
            counts if counts is not None else np.zeros(1), dtype=torch.long))
        self.keep_bounds(bounds)
        if c.get("log_pt"):
            self.register_buffer("log_pt", torch.as_tensor(log_pt if log_pt is not None else [0.0, 1.0],
                                                           dtype=torch.float64))

    def make_net(self, cond: int) -> nn.Module:
        """The noise predictor: ``net(x (B, n, 3), c (B, cond)) -> eps_hat (B, n, 3)``."""
        raise NotImplementedError

    def trainable(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"net": torch.optim.AdamW(self.net.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])}

    def _context(self, t: torch.Tensor, jet_cond: torch.Tensor | None) -> torch.Tensor:
        enc = time_encoding(t, TIME_DIM)
        return enc if jet_cond is None else torch.cat([enc, jet_cond], 1)

    def _to_net(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised clouds -> the network's features (ptrel -> standardised log ptrel with ``log_pt``)."""
        if not self.config.get("log_pt"):
            return x
        pt = self.stats.denormalise(x.double())[..., 2]
        # a float32 normalised ptrel resolves ptrel only to eps32 (|mean| + std): below that (the
        # simulated JetNet150 top jets hold ptrel down to 7e-17) x * std + mean can come back <= 0
        floor = torch.finfo(torch.float32).eps * float(abs(self.stats.mean[2]) + self.stats.std[2])
        z = (torch.log(pt.clamp_min(floor)) - self.log_pt[0]) / self.log_pt[1]
        return torch.cat([x[..., :2], z[..., None].to(x.dtype)], -1)

    def _from_net(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`_to_net`."""
        if not self.config.get("log_pt"):
            return y
        pt = torch.exp(y[..., 2].double() * self.log_pt[1] + self.log_pt[0])
        mean, std = self.stats.mean[2], self.stats.std[2] / self.stats.norm_sigma
        return torch.cat([y[..., :2], ((pt - mean) / std)[..., None].to(y.dtype)], -1)

    def training_step(self, x, optimizers, modules):
        c = self.config
        net, opt = modules["net"], optimizers["net"]
        jet_cond = jet_conditions(x, self.stats) if c["conditional"] else None
        loss = jedi_loss(lambda xt, t: net(xt, self._context(t, jet_cond)), self._to_net(x), self.schedule,
                         c["mle_weight"])
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
        y = jedi_sample(lambda z, t: self.ema_net(z, self._context(t, jet_cond)), x, self.schedule,
                        steps or c["steps"], method or c["method"], generator)
        return self.clamp_to_training(self._from_net(y))
