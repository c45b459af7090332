"""Continuous-time diffusion after Karras et al. (EDM, arXiv:2206.00364) and consistency
distillation after Song et al. (arXiv:2303.01469), as CaloClouds II uses them (arXiv:2309.05704).

A ``Denoiser`` wraps any network F(x_in, sigma, context) into D(x, sigma) = c_skip x + c_out F(c_in x,
sigma): the EDM preconditioning with ``sigma_data``, or, for a consistency model, the boundary
condition variant (c_skip = 1, c_out = 0 at sigma_min).  Shapes: x (B, N, d), sigma (B,),
context (B, C).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["karras_sigmas", "Denoiser", "edm_loss", "sample_heun", "sample_euler", "consistency_loss"]


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """(n + 1,) noise levels sigma_max ... sigma_min spaced in sigma^(1/rho), then a final 0."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sig = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sig, sig.new_zeros(1)]).float()


class Denoiser(nn.Module):
    """EDM preconditioning around ``net``; ``consistency=True`` for the one-step student."""

    def __init__(self, net: nn.Module, sigma_data: float = 0.5, consistency: bool = False, sigma_min: float = 0.002):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data
        self.consistency = consistency
        self.sigma_min = sigma_min

    def scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """c_skip, c_out, c_in, each (B, 1, 1)."""
        s, sd = sigma.view(-1, 1, 1), self.sigma_data
        c_in = 1 / (s ** 2 + sd ** 2).sqrt()
        if self.consistency:
            c_skip = sd ** 2 / ((s - self.sigma_min) ** 2 + sd ** 2)
            c_out = (s - self.sigma_min) * sd / (s ** 2 + sd ** 2).sqrt()
        else:
            c_skip = sd ** 2 / (s ** 2 + sd ** 2)
            c_out = s * sd / (s ** 2 + sd ** 2).sqrt()
        return c_skip, c_out, c_in

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, context: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(sigma):
            sigma = torch.full((x.shape[0],), float(sigma), device=x.device)
        c_skip, c_out, c_in = self.scalings(sigma)
        return c_skip * x + c_out * self.net(x * c_in, sigma, context)


def edm_loss(denoiser: Denoiser, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None,
             p_mean: float = -1.2, p_std: float = 1.2, generator: torch.Generator | None = None) -> torch.Tensor:
    """The EDM training loss: ln sigma ~ N(p_mean, p_std), weight (sigma^2 + sd^2) / (sigma sd)^2,
    i.e. the MSE of F against its target; averaged over real points (``mask`` (B, N))."""
    b = x.shape[0]
    sigma = (torch.randn(b, device=x.device, generator=generator) * p_std + p_mean).exp()
    noise = torch.randn(x.shape, device=x.device, generator=generator)
    c_skip, c_out, c_in = denoiser.scalings(sigma)
    noised = x + noise * sigma.view(-1, 1, 1)
    target = (x - c_skip * noised) / c_out
    err = (denoiser.net(noised * c_in, sigma, context) - target).pow(2).mean(-1)
    if mask is None:
        return err.mean()
    return (err * mask).sum() / mask.sum().clamp(min=1)


@torch.no_grad()
def sample_heun(denoiser: nn.Module, x: torch.Tensor, sigmas: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Heun's second-order solver of the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma
    from sigmas[0] to sigmas[-1] = 0 (Karras et al. algorithm 1, no churn): 2 n - 1 evaluations for
    n + 1 sigmas (the last step is Euler)."""
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - denoiser(x, s.item(), context)) / s
        x_next = x + d * (s_next - s)
        if s_next > 0:
            d2 = (x_next - denoiser(x_next, s_next.item(), context)) / s_next
            x_next = x + (d + d2) / 2 * (s_next - s)
        x = x_next
    return x


@torch.no_grad()
def sample_euler(denoiser: nn.Module, x: torch.Tensor, sigmas: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Euler's first-order solver of the same ODE (n evaluations for n + 1 sigmas)."""
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        x = x + (x - denoiser(x, s.item(), context)) / s * (s_next - s)
    return x


def consistency_loss(student: Denoiser, target: Denoiser, teacher: Denoiser, x: torch.Tensor, context: torch.Tensor,
                     mask: torch.Tensor | None = None, n_scales: int = 18, sigma_min: float = 0.002,
                     sigma_max: float = 80.0, rho: float = 7.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Consistency distillation: for adjacent Karras levels t > t2, noise the data to t, take one
    Heun step of the teacher to t2, and pull the student's D(x_t, t) to the (EMA) target's
    D(x_t2, t2) (squared error, uniform weights, as CaloClouds II)."""
    b = x.shape[0]
    idx = torch.randint(0, n_scales - 1, (b,), device=x.device, generator=generator)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    t = (hi + idx / (n_scales - 1) * (lo - hi)) ** rho
    t2 = (hi + (idx + 1) / (n_scales - 1) * (lo - hi)) ** rho
    x_t = x + torch.randn(x.shape, device=x.device, generator=generator) * t.view(-1, 1, 1)
    with torch.no_grad():
        d = (x_t - teacher(x_t, t, context)) / t.view(-1, 1, 1)
        x_euler = x_t + d * (t2 - t).view(-1, 1, 1)
        d2 = (x_euler - teacher(x_euler, t2, context)) / t2.view(-1, 1, 1)
        x_t2 = x_t + (d + d2) / 2 * (t2 - t).view(-1, 1, 1)
        goal = target(x_t2, t2, context)
    err = (student(x_t, t, context) - goal).pow(2).mean(-1)
    if mask is None:
        return err.mean()
    return (err * mask).sum() / mask.sum().clamp(min=1)
