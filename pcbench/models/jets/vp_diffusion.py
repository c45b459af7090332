"""The JeDi diffusion process (PC-JeDi, Leigh et al., arXiv:2303.05376; EPiC-JeDi, Buhmann et al.,
arXiv:2310.00049): a variance-preserving process, its noise-prediction loss and its samplers.

As the reference code (``rodem-hep/PC-JeDi`` and ``DebajyotiS/PC-JeDi``, ``src/models/diffusion.py``):

* schedule, cosine in angle: theta(t) = theta0 + t (theta1 - theta0) with theta0 = arccos(max_sr),
  theta1 = arccos(min_sr); signal alpha(t) = cos theta, noise sigma(t) = sin theta (alpha^2 + sigma^2
  = 1), x_t = alpha x_0 + sigma eps; beta(t) = -d ln alpha^2 / dt = 2 (theta1 - theta0) tan theta(t);
* the network predicts eps (the noise); the loss is the Huber loss (delta 1) between eps and its
  prediction on every real particle.  The reference adds lambda x an "MLE" term whose per-jet
  weights beta/sigma are broadcast over the whole batch, i.e. the loss times
  (1 + lambda mean_jets beta/sigma); pcbench computes exactly that product (``mle_weight``);
* samplers from t = 1 to 0 in n equal steps from x_1 ~ N(0, I), clamped to [-25, 25] after every
  step: ``ddim`` (n network calls; returns the last predicted x_0), ``em`` (Euler-Maruyama on the
  reverse SDE, n calls), and the probability-flow ODE dx/dt = -beta/2 (x - eps_hat / sigma) with
  ``euler`` (n calls), ``midpoint`` (2n) or ``rk4`` (4n).  The reference's Euler and midpoint
  samplers multiply the starting noise by alpha(1) + sigma(1) (about 1.02); pcbench starts from
  N(0, I) for every sampler (the exact probability-flow ODE's start).

Shapes: clouds x (B, n, F); the time t (B,) in [0, 1]; ``predict(x, t)`` returns eps_hat (B, n, F).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["VPSchedule", "time_encoding", "jedi_loss", "jedi_sample", "SAMPLERS", "CALLS_PER_STEP"]

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CLAMP = 25.0
CALLS_PER_STEP = {"ddim": 1, "em": 1, "euler": 1, "midpoint": 2, "rk4": 4}
SAMPLERS = tuple(CALLS_PER_STEP)


@dataclass(frozen=True)
class VPSchedule:
    """The cosine-in-angle variance-preserving schedule; ``max_sr`` = alpha(0), ``min_sr`` = alpha(1)."""

    max_sr: float = 0.999
    min_sr: float = 0.02

    @property
    def theta0(self) -> float:
        return math.acos(self.max_sr)

    @property
    def theta1(self) -> float:
        return math.acos(self.min_sr)

    def theta(self, t: torch.Tensor) -> torch.Tensor:
        return self.theta0 + t * (self.theta1 - self.theta0)

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        th = self.theta(t)
        return torch.cos(th), torch.sin(th)

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return 2.0 * (self.theta1 - self.theta0) * torch.tan(self.theta(t))

    def beta_over_sigma(self, t: torch.Tensor) -> torch.Tensor:
        """beta(t) / sigma(t) = 2 (theta1 - theta0) / cos theta(t): finite where sigma = 0
        (t = 0 with ``max_sr`` 1, PC-JeDi's schedule)."""
        return 2.0 * (self.theta1 - self.theta0) / torch.cos(self.theta(t))


def time_encoding(t: torch.Tensor, dim: int = 32) -> torch.Tensor:
    """(B,) times -> (B, dim) features cos(pi t e^k), k = 0 .. dim - 1 (the reference's
    "exponential" cosine encoding)."""
    k = torch.arange(dim, device=t.device, dtype=t.dtype)
    return torch.cos(math.pi * t[:, None] * torch.exp(k)[None, :])


def jedi_loss(predict: Predictor, x0: torch.Tensor, schedule: VPSchedule, mle_weight: float = 0.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """The JeDi loss of one batch of clean clouds x0 (B, n, F): t ~ U(0, 1) per jet, eps ~ N(0, I),
    Huber(eps, predict(x_t, t)) over every particle and feature, times (1 + mle_weight x the
    batch mean of beta(t) / sigma(t)) (the reference's broadcast MLE term, module docstring)."""
    b = x0.shape[0]
    t = torch.rand(b, device=x0.device, dtype=x0.dtype, generator=generator)
    eps = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
    alpha, sigma = schedule.alpha_sigma(t)
    xt = alpha[:, None, None] * x0 + sigma[:, None, None] * eps
    simple = F.huber_loss(predict(xt, t), eps, delta=1.0)
    if mle_weight:
        simple = simple * (1.0 + mle_weight * schedule.beta_over_sigma(t).mean())
    return simple


def _ode_gradient(predict: Predictor, x: torch.Tensor, t: float, schedule: VPSchedule) -> torch.Tensor:
    """-dx/dt of the probability-flow ODE at t: beta/2 (x - eps_hat / sigma) (a step back in time
    adds it times the step; beta / sigma stays finite at sigma = 0)."""
    tt = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
    return 0.5 * (schedule.beta(tt)[:, None, None] * x - schedule.beta_over_sigma(tt)[:, None, None] * predict(x, tt))


def jedi_sample(predict: Predictor, x1: torch.Tensor, schedule: VPSchedule, steps: int, method: str = "em",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Integrate from the noise x1 (B, n, F) at t = 1 to t = 0 in ``steps`` steps with ``method``
    (``SAMPLERS``); ``generator`` draws the SDE noise of ``em``."""
    if method not in CALLS_PER_STEP:
        raise ValueError(f"unknown sampler {method!r}; expected one of {', '.join(SAMPLERS)}")
    if steps < 1:
        raise ValueError(f"steps {steps}: expected at least 1")
    h = 1.0 / steps
    x = x1
    x0_hat = x1
    for i in range(steps):
        t = 1.0 - i * h
        if method == "ddim":
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
            alpha, sigma = (v[:, None, None] for v in schedule.alpha_sigma(tt))
            eps = predict(x, tt)
            x0_hat = ((x - sigma * eps) / alpha).clamp(-CLAMP, CLAMP)
            a_next, s_next = (v[:, None, None] for v in schedule.alpha_sigma(tt - h))
            x = a_next * x0_hat + s_next * eps
        elif method == "em":
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
            beta = schedule.beta(tt)[:, None, None]
            drift = 0.5 * beta * x - schedule.beta_over_sigma(tt)[:, None, None] * predict(x, tt)  # beta/2 (x + 2 score)
            noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
            x = x + drift * h + torch.sqrt(beta * h) * noise
        elif method == "euler":
            x = x + h * _ode_gradient(predict, x, t, schedule)
        elif method == "midpoint":
            half = x + 0.5 * h * _ode_gradient(predict, x, t, schedule)
            x = x + h * _ode_gradient(predict, half, t - 0.5 * h, schedule)
        else:  # rk4
            k1 = _ode_gradient(predict, x, t, schedule)
            k2 = _ode_gradient(predict, x + 0.5 * h * k1, t - 0.5 * h, schedule)
            k3 = _ode_gradient(predict, x + 0.5 * h * k2, t - 0.5 * h, schedule)
            k4 = _ode_gradient(predict, x + h * k3, max(t - h, 0.0), schedule)
            x = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        x = x.clamp(-CLAMP, CLAMP)
    return x0_hat if method == "ddim" else x
