"""Least-squares GAN training (Mao et al., arXiv:1611.04076), shared by EPiC-GAN and MP-GAN."""

from __future__ import annotations

import torch
from torch import nn

from .base import JetGenerator

__all__ = ["LSGAN"]


class LSGAN(JetGenerator):
    """A generator ``self.gen`` and a critic ``self.disc`` trained with the least-squares loss.

    Subclasses build ``gen`` and ``disc`` and define :meth:`noise` (the generator's inputs for
    ``b`` jets of ``n`` particles); configs carry ``lr_g``, ``lr_d`` and ``beta1``.  Hooks:
    :meth:`generator_loss` (extra terms) and :meth:`after_step` (learning-rate schedules).
    """

    gen: nn.Module
    disc: nn.Module

    def noise(self, b: int, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def trainable(self) -> dict[str, nn.Module]:
        return {"gen": self.gen, "disc": self.disc}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.get("beta1", 0.5), 0.999)
        return {"gen": torch.optim.Adam(self.gen.parameters(), lr=c["lr_g"], betas=betas, eps=1e-14),
                "disc": torch.optim.Adam(self.disc.parameters(), lr=c["lr_d"], betas=betas, eps=1e-14)}

    def training_step(self, x, optimizers, modules):
        gen, disc = modules["gen"], modules["disc"]
        b, n, _ = x.shape
        fake = gen(*self.noise(b, n))
        scores = disc(torch.cat([x, fake.detach()]))  # one pass (DistributedDataParallel-friendly)
        loss_d = 0.5 * (((scores[:b] - 1) ** 2).mean() + (scores[b:] ** 2).mean())
        optimizers["disc"].zero_grad()
        loss_d.backward()
        optimizers["disc"].step()
        loss_g = self.generator_loss(disc, gen(*self.noise(b, n)), x)
        optimizers["gen"].zero_grad()
        loss_g.backward()
        optimizers["gen"].step()
        self.after_step(optimizers)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    def generator_loss(self, disc: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The generator's loss on a batch of fakes (the real batch for terms that compare)."""
        return 0.5 * ((disc(fake) - 1) ** 2).mean()

    def after_step(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """Called after both updates of a training step."""

    def generate(self, n_jets, multiplicity, generator):
        return self.gen(*self.noise(n_jets, multiplicity, generator))
