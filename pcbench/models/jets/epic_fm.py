"""EPiC-FM (Buhmann et al., arXiv:2310.00049): conditional flow matching with an EPiC velocity field.

Straight paths between data x0 (t = 0) and noise eps (t = 1):
x_t = (1 - t) x0 + (sigma_min + (1 - sigma_min) t) eps, target velocity (1 - sigma_min) eps - x0
(Lipman et al., arXiv:2210.02747); loss || v(x_t, t) - target ||^2.  Sampling integrates
dx/dt = v from t = 1 (pure noise) to t = 0 with a fixed-step Euler or midpoint solver.  With
``conditional`` the velocity also sees the jet's relative mass and pT; at generation these are
drawn jointly from the training jets (the paper samples them with a normalising flow).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ...data import JetSet
from .base import JetGenerator, JetStats
from .epic import EPiCNetwork

__all__ = ["EPiCFM", "ode_solve", "jet_conditions", "training_conditions"]


def ode_solve(f, x: torch.Tensor, t0: float, t1: float, steps: int, method: str = "midpoint") -> torch.Tensor:
    """Integrate dx/dt = f(x, t) from t0 to t1 with ``steps`` fixed steps (``euler`` or ``midpoint``)."""
    h = (t1 - t0) / steps
    t = t0
    for _ in range(steps):
        if method == "euler":
            x = x + h * f(x, t)
        elif method == "midpoint":
            x = x + h * f(x + 0.5 * h * f(x, t), t + 0.5 * h)
        else:
            raise ValueError(f"unknown ODE method {method!r}; expected 'euler' or 'midpoint'")
        t += h
    return x


def jet_conditions(x: torch.Tensor, stats: JetStats) -> torch.Tensor:
    """(B, 2) standardised relative mass and pT of normalised clouds x (B, n, 3)."""
    p = stats.denormalise(x.double())
    eta, phi, pt = p[..., 0], p[..., 1], p[..., 2]
    e, px, py, pz = (pt * torch.cosh(eta)).sum(1), (pt * torch.cos(phi)).sum(1), (pt * torch.sin(phi)).sum(1), (pt * torch.sinh(eta)).sum(1)
    mass = torch.sqrt(torch.clamp(e * e - px * px - py * py - pz * pz, min=0))
    return torch.stack([mass * 10 - 1, torch.hypot(px, py) * 10 - 10], 1).float()


def training_conditions(jets: JetSet, stats: JetStats) -> np.ndarray:
    """(N, 2) ``jet_conditions`` of every training jet, each on its real particles (conditional
    generation draws them jointly from these)."""
    x = stats.normalise(torch.as_tensor(jets.particles, dtype=torch.float64))
    counts = jets.mask.sum(1)
    conditions = np.zeros((len(counts), 2), np.float32)
    for m in np.unique(counts):
        rows = np.flatnonzero(counts == m)
        conditions[rows] = jet_conditions(x[rows, :m], stats).numpy()
    return conditions if len(conditions) else np.zeros((1, 2), np.float32)


class EPiCFM(JetGenerator):
    """EPiC-FM; conditions: the time t (and, if conditional, relative jet mass and pT)."""

    name = "epic-fm"
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"hidden": 128, "global_dim": 16, "layers": 6, "sigma_min": 1e-4, "lr": 1e-3, "batch_size": 128,
                 "epochs": 500, "steps": 100, "method": "midpoint", "conditional": False},
        "small": {"hidden": 64, "global_dim": 16, "layers": 3, "sigma_min": 1e-4, "lr": 1e-3, "batch_size": 128,
                  "epochs": 40, "steps": 20, "method": "midpoint", "conditional": False},
    }

    @classmethod
    def build(cls, config: dict[str, Any], stats: JetStats, jets: JetSet | None = None) -> EPiCFM:
        """With ``conditional``, the (N, 2) conditions of every training jet, each computed on its
        real particles, for sampling (drawn jointly from the training jets)."""
        conditions = training_conditions(jets, stats) if jets is not None and config.get("conditional") else None
        return cls(config, stats, conditions)

    def __init__(self, config: dict[str, Any], stats: JetStats, conditions: np.ndarray | None = None):
        super().__init__(config, stats)
        c = self.config
        self.n_cond = 1 + (2 if c["conditional"] else 0)
        self.net = EPiCNetwork(3, self.n_cond, c["hidden"], c["global_dim"], c["layers"], 3, cond_dim=self.n_cond)
        # training (mass, pT) pairs for conditional generation, stored with the weights
        self.register_buffer("train_conditions", torch.as_tensor(
            conditions if conditions is not None else np.zeros((1, 2)), dtype=torch.float32))

    def trainable(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def make_optimizers(self):
        return {"net": torch.optim.Adam(self.net.parameters(), lr=self.config["lr"])}

    def _cond(self, t: torch.Tensor, jet_cond: torch.Tensor | None) -> torch.Tensor:
        return t[:, None] if jet_cond is None else torch.cat([t[:, None], jet_cond], 1)

    def training_step(self, x, optimizers, modules):
        net = modules["net"]
        b = x.shape[0]
        s = self.config["sigma_min"]
        t = torch.rand(b, device=x.device)
        eps = torch.randn_like(x)
        tt = t[:, None, None]
        xt = (1 - tt) * x + (s + (1 - s) * tt) * eps
        cond = self._cond(t, jet_conditions(x, self.stats) if self.config["conditional"] else None)
        loss = ((net(cond, xt, cond) - ((1 - s) * eps - x)) ** 2).mean()
        optimizers["net"].zero_grad()
        loss.backward()
        optimizers["net"].step()
        return {"loss": loss.item()}

    def generate(self, n_jets, multiplicity, generator, steps: int | None = None, method: str | None = None):
        c = self.config
        x = torch.randn(n_jets, multiplicity, 3, generator=generator, device=self.device)
        jet_cond = None
        if c["conditional"]:
            rows = torch.randint(len(self.train_conditions), (n_jets,), generator=generator, device=self.device)
            jet_cond = self.train_conditions[rows]

        def velocity(y: torch.Tensor, t: float) -> torch.Tensor:
            cond = self._cond(torch.full((n_jets,), t, device=self.device), jet_cond)
            return self.net(cond, y, cond)

        return ode_solve(velocity, x, 1.0, 0.0, steps or c["steps"], method or c["method"])
