"""MDMA (Käch, Melzer-Pellmann, Krücker, "Pay Attention to Mean Fields for Point Cloud Generation",
arXiv:2408.04997; earlier arXiv:2305.15254; code ``kaechb/MDMA``, branch ``NeurIPS``, which the
paper links): a least-squares GAN whose generator and critic are mean-field attention networks
(``nets/mean_field.py``), conditioned on the multiplicity.

As the reference (``default_jet.yaml``, ``fit.py``, ``losses.py``): particles standardised to unit
variance (``norm_sigma`` 1); least-squares losses, one critic step per generator step; the
generator's loss also has the mean-field matching term mean_i ||f_D(fake_i) - f_D(real_i)||^2
(the critic's final tokens, the real one detached; weight ``mf_weight``) during the first
``mf_steps`` steps; Adam with betas (0, 0.999), eps 1e-14 for both networks, the learning rate
times 0.5 (1 + cos(pi t / ``max_iters``)) and, for t < ``warmup``, t / ``warmup`` (t the steps
done); generated features clamped to the training range.  Differences, by design: the
multiplicity is drawn from the training distribution (the reference: a Gaussian KDE of it,
rounded); both tokens of the matching term come from the updated critic (the reference takes the
real one from the pass before the critic's update); batches of one multiplicity, no padding.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ...data import JetSet
from .base import JetStats, feature_bounds
from .gan import LSGAN
from ..nets.mean_field import MeanFieldCritic, MeanFieldGenerator
from ..nets.schedules import cosine_warmup

__all__ = ["MDMA"]


class MDMA(LSGAN):
    """MDMA; the ``full`` config is the reference's JetNet150 top run (file and line in
    docs/generators-jets.md), ``small`` fits 2 CPU cores."""

    # the critic scores its token: the last block's particle update reaches no loss
    ddp_unused_parameters = True

    name = "mdma"
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"gen_dim": 16, "gen_hidden": 48, "gen_heads": 16, "gen_layers": 7, "disc_dim": 16,
                 "disc_hidden": 64, "disc_heads": 16, "disc_layers": 2, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0,
                 "warmup": 2000, "max_iters": 3_000_000, "mf_weight": 1.0, "mf_steps": 50_000, "batch_size": 128,
                 "epochs": 2200, "norm_sigma": 1.0},
        "small": {"gen_dim": 16, "gen_hidden": 48, "gen_heads": 16, "gen_layers": 7, "disc_dim": 16,
                  "disc_hidden": 64, "disc_heads": 16, "disc_layers": 2, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0,
                  "warmup": 200, "max_iters": 3_000_000, "mf_weight": 1.0, "mf_steps": 50_000, "batch_size": 128,
                  "epochs": {30: 75, 150: 32}, "norm_sigma": 1.0},
    }

    @classmethod
    def build(cls, config: dict[str, Any], stats: JetStats, jets: JetSet | None = None) -> MDMA:
        """``jets``: the training jets, whose normalised feature range clamps the generated ones."""
        return cls(config, stats, feature_bounds(jets, replace(stats, norm_sigma=config["norm_sigma"])))

    def __init__(self, config: dict[str, Any], stats: JetStats, bounds: np.ndarray | None = None):
        c = dict(config)
        super().__init__(c, replace(stats, norm_sigma=c["norm_sigma"]))
        p = np.asarray(self.stats.multiplicities, dtype=np.float64)
        mean_n = float((np.arange(len(p)) * p).sum()) or 1.0
        self.gen = MeanFieldGenerator(3, c["gen_dim"], c["gen_hidden"], c["gen_heads"], c["gen_layers"], mean_n)
        self.disc = MeanFieldCritic(3, c["disc_dim"], c["disc_hidden"], c["disc_heads"], c["disc_layers"], mean_n)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.keep_bounds(bounds)

    def noise(self, b, n, generator=None):
        return (torch.randn(b, n, 3, generator=generator, device=self.device),)

    def _schedule(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        c = self.config
        factor = cosine_warmup(int(self.steps_done), c["warmup"], c["max_iters"])
        for key, lr in (("gen", c["lr_g"]), ("disc", c["lr_d"])):
            for group in optimizers[key].param_groups:
                group["lr"] = lr * factor

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = super().make_optimizers()
        self._schedule(optimizers)
        return optimizers

    def generator_loss(self, disc: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        c = self.config
        if int(self.steps_done) >= c["mf_steps"] or not c["mf_weight"]:
            return super().generator_loss(disc, fake, real)
        score, token = disc(fake, with_token=True)
        with torch.no_grad():
            _, token_real = disc(real, with_token=True)
        return 0.5 * ((score - 1) ** 2).mean() + c["mf_weight"] * ((token - token_real) ** 2).mean()

    def after_step(self, optimizers):
        self.steps_done += 1
        self._schedule(optimizers)

    def generate(self, n_jets, multiplicity, generator):
        return self.clamp_to_training(super().generate(n_jets, multiplicity, generator))
