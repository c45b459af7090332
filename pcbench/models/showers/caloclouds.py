"""CaloClouds (I) (Buhmann et al., arXiv:2305.04847): ShowerFlow, and a discrete-time DDPM (100
steps, betas quadratic from 1e-4 to 0.02) whose PointWise Net predicts the noise, conditioned on
the shower conditions and a latent vector: a PointNet encoder (per-point MLP, mean and max
pooling over the shower's points) gives q(z | shower) (KL weight 1e-3 against N(0, 1)), and a
latent flow (zuko NSF) learns p(z | conditions) on the encoded z to sample new showers.  The
calibrations and the rest of the pipeline are CaloClouds II's (``CaloClouds2.sample``).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from .caloclouds2 import CaloClouds2
from .pointwise import PointWiseNet
from .flow import ShowerStats

__all__ = ["CaloClouds", "ddpm_betas"]


def ddpm_betas(steps: int = 100, beta_1: float = 1e-4, beta_t: float = 0.02) -> torch.Tensor:
    """The quadratic schedule: betas = linspace(sqrt(beta_1), sqrt(beta_T), steps)^2."""
    return torch.linspace(beta_1 ** 0.5, beta_t ** 0.5, steps, dtype=torch.float64) ** 2


class _Encoder(nn.Module):
    """PointNet: per-point MLP, masked mean and max pooling, then (mu, log variance) of z."""

    def __init__(self, latent: int, hidden: int, cond: int = 2):
        super().__init__()
        self.point = nn.Sequential(nn.Linear(4, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU())
        self.head = nn.Sequential(nn.Linear(2 * hidden + cond, hidden), nn.LeakyReLU(), nn.Linear(hidden, 2 * latent))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.point(x)
        m = mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1)
        mx = h.masked_fill(m == 0, -1e9).amax(1)
        mu, logvar = self.head(torch.cat([mean, mx, cond], -1)).chunk(2, -1)
        return mu, logvar


class _Parts(nn.Module):
    """Everything trained by the diffusion loss (so one optimiser and one EMA cover it)."""

    def __init__(self, net: nn.Module, encoder: nn.Module, latent_flow: nn.Module):
        super().__init__()
        self.net, self.encoder, self.latent_flow = net, encoder, latent_flow


class CaloClouds(CaloClouds2):
    """CaloClouds (I); configs as CaloClouds II's plus the DDPM and latent settings."""

    name = "caloclouds"
    configs: dict[str, dict[str, Any]] = {
        "full": {**CaloClouds2.configs["full"], "ddpm_steps": 100, "beta_1": 1e-4, "beta_t": 0.02, "latent": 256,
                 "encoder_hidden": 256, "kl_weight": 1e-3, "latent_transforms": 10},
        "small": {**CaloClouds2.configs["small"], "ddpm_steps": 100, "beta_1": 1e-4, "beta_t": 0.02, "latent": 16,
                  "encoder_hidden": 64, "kl_weight": 1e-3, "latent_transforms": 2},
    }

    def __init__(self, config: dict[str, Any], stats: ShowerStats):
        super().__init__(config, stats)
        import zuko

        c = self.config
        net = PointWiseNet(4, 2 + c["latent"], tuple(c["widths"]))
        flow = zuko.flows.NSF(c["latent"], context=2, transforms=c["latent_transforms"], passes=2,
                              hidden_features=(max(64, c["latent"]),) * 2)
        self.denoiser = _Parts(net, _Encoder(c["latent"], c["encoder_hidden"]), flow)
        self.ema = copy.deepcopy(self.denoiser).requires_grad_(False)
        betas = ddpm_betas(c["ddpm_steps"], c["beta_1"], c["beta_t"])
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0).float())
        self.register_buffer("betas", betas.float())

    def _sigma(self, t: torch.Tensor) -> torch.Tensor:
        """The noise level equivalent to DDPM step t (0-based): sqrt((1 - abar) / abar), for the
        PointWise Net's time embedding."""
        ab = self.alpha_bar[t]
        return ((1 - ab) / ab).sqrt()

    def diffusion_loss(self, x: torch.Tensor, mask: torch.Tensor, context: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise-prediction MSE over real points + kl_weight * KL(q(z|x) || N(0, 1)) + the latent
        flow's NLL of the (detached) z."""
        p = self.denoiser
        mu, logvar = p.encoder(x, mask, context)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, device=x.device, generator=generator)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1).mean()
        nll = -p.latent_flow(context).log_prob(z.detach()).mean()
        t = torch.randint(0, len(self.betas), (len(x),), device=x.device, generator=generator)
        ab = self.alpha_bar[t].view(-1, 1, 1)
        eps = torch.randn(x.shape, device=x.device, generator=generator)
        pred = p.net(ab.sqrt() * x + (1 - ab).sqrt() * eps, self._sigma(t), torch.cat([context, z], -1))
        mse = ((pred - eps).pow(2).mean(-1) * mask).sum() / mask.sum().clamp(min=1)
        return mse + self.config["kl_weight"] * kl + nll  # the flow sees z detached: its term trains only the flow

    def generate_points(self, context: torch.Tensor, n_max: int, generator: torch.Generator,
                        num_steps: int | None = None) -> torch.Tensor:
        """Ancestral DDPM sampling over all steps (100 evaluations) with the EMA weights."""
        p = self.ema
        with torch.no_grad():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator)))
                z = p.latent_flow(context).sample()
            x = torch.randn((len(context), n_max, 4), generator=generator, device=context.device)

            def denoise(x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:  # all steps, on a slice of showers
                for t in range(len(self.betas) - 1, -1, -1):
                    tt = torch.full((len(x),), t, device=x.device, dtype=torch.long)
                    eps = p.net(x, self._sigma(tt), ctx)
                    a, ab, b = 1 - self.betas[t], self.alpha_bar[t], self.betas[t]
                    x = (x - b / (1 - ab).sqrt() * eps) / a.sqrt()
                    if t > 0:
                        var = b * (1 - self.alpha_bar[t - 1]) / (1 - ab)
                        x = x + var.sqrt() * torch.randn(x.shape, generator=generator, device=x.device)
                return x

            return self.in_slices(denoise, x, torch.cat([context, z], -1))
