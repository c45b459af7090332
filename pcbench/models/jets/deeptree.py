"""DeepTreeGAN (Scham et al., arXiv:2311.12616; v2, arXiv:2312.00042; code
``DeGeSim/chep23DeepTreeGAN``, ``DeGeSim/nips23DeepTreeGANv2``): the tree-branching generator
(``nets/tree_branching.py``) against the iterative-pooling critic (``nets/pool_critic.py``), a hinge GAN.

As the v2 run (``wd/scan_cdr5_fullcopy/af5e229/hyperparameters.yaml``): hinge losses summed over
the critic's heads, one critic step per generator step, the generator's loss plus ``fm_weight`` x
a feature-matching term (each critic latent of the fakes against the real batch's, both
standardised with the real batch's mean and width per feature, mean absolute difference; the real
pass without gradients); Adam with betas (0.9, 0.999) and weight decay 1e-4 for both networks;
the critic sees the jet condition of the real batch (for the fakes too); at 150 particles the fakes'
pT fractions are divided by their jet's sum before the critic sees them and after sampling
(``norm_pt_sum``, as v2's ``fgsim/ml/holder.py`` L209 and L248-254 with
``fgsim/datasets/jetnet/post_gen_transfrom.py`` L9-30, for training and the test samples alike, via
``fgsim/ml/eval.py`` L26; JetNet150's fractions of all constituents sum to 1).  The tree is v2's for
150 particles (branches 2, 3, 5, 5; widths 64, 33, 20, 10, 3) and v1's for 30 (2, 3, 5; 64, 33,
20, 3), chosen from the data's particle number when ``branches`` is empty.

Differences, by design: v1's branching (a split of the parent vector, with a residual that adds
the wrong parent) is replaced by v2's for both sizes, and v1's MP-GAN critic by v2's pooling
critic; the multiplicity condition is n / P (v2: a dequantised, logit-scaled, standardised n);
the critic's jet condition is the cloud's relative mass and pT (v2: the real jet's pT, eta and
mass from JetNet); particle features standardised (the reference: Box-Cox for ptrel); the
critic's readout counts a jet's nodes (the reference's counts the batch for pooled nodes);
no self-loops in the pooling (the reference's attention adds spurious ones).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import ConfigError
from .base import JetGenerator, JetStats
from .epic_fm import jet_conditions
from ..nets.pool_critic import PoolCritic
from ..nets.tree_branching import TreeGenerator

__all__ = ["DeepTreeGAN", "feature_matching", "normalise_pt_sum", "TREES"]

#: particles -> (branches, widths) of the published trees (v1 at 30, v2 at 150)
TREES = {30: ([2, 3, 5], [64, 33, 20, 3]), 150: ([2, 3, 5, 5], [64, 33, 20, 10, 3])}


def feature_matching(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Mean over latents of mean |z(real) - z(fake)|, z standardised with the real batch's mean and
    sd per feature (the last axis); a latent with a single row (a batch of one jet: no sd) is
    left out, and with none left the term is 0."""
    terms = []
    for r, f in zip(real, fake):
        flat = r.reshape(-1, r.shape[-1])
        if len(flat) < 2:
            continue
        mean, sd = flat.mean(0), flat.std(0) + 1e-8
        terms.append(((r - mean) / sd - (f - mean) / sd).abs().mean())
    return torch.stack(terms).mean() if terms else fake[0].sum() * 0.0


def normalise_pt_sum(x: torch.Tensor, stats: JetStats, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised clouds x (B, n, 3) with each jet's pT fractions (feature 2, floored at the
    training minimum) divided by their sum over its particles: the first ``counts[i]`` slots of
    jet i (all n without counts); the other slots are returned unchanged.  Differentiable."""
    p = stats.denormalise(x.double())
    pt = torch.clamp(p[..., 2], min=stats.min_ptrel)
    keep = (torch.ones_like(pt, dtype=torch.bool) if counts is None else
            torch.arange(x.shape[1], device=x.device)[None, :] < counts.to(x.device)[:, None])
    total = torch.where(keep, pt, torch.zeros_like(pt)).sum(1, keepdim=True)
    p = torch.cat([p[..., :2], (pt / total.clamp(min=1e-12))[..., None]], -1)
    scaled = stats.normalise(p)[..., 2].to(x.dtype)
    return torch.cat([x[..., :2], torch.where(keep, scaled, x[..., 2])[..., None]], -1)


class DeepTreeGAN(JetGenerator):
    """DeepTreeGAN; the ``full`` config is the v2 run's (file and line in
    docs/generators-jets.md), ``small`` fits 2 CPU cores."""

    name = "deeptree-gan"
    mixed_batches = True  # the generator normalises with its batch's statistics (ffn.py)
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"branches": [], "widths": [], "pool_nodes": [], "critic_heads": 16, "critic_updates": 2,
                 "critic_dropout": 0.5, "hidden": 100, "fm_weight": 0.1, "norm_pt_sum": None, "lr_g": 1e-5, "lr_d": 3e-5, "weight_decay": 1e-4,
                 "batch_size": 200, "epochs": 3857},
        # small: the pooling onto 30 seeds cost 3/4 of a 150-particle step, so both sizes pool onto 6, 1
        "small": {"branches": [], "widths": [], "pool_nodes": [6, 1], "critic_heads": 4, "critic_updates": 1,
                  "critic_dropout": 0.0, "hidden": 32, "fm_weight": 0.1, "norm_pt_sum": None, "lr_g": 1e-4, "lr_d": 3e-4, "weight_decay": 1e-4,
                  "batch_size": 128, "epochs": {30: 40, 150: 12}},
    }

    def __init__(self, config: dict[str, Any], stats: JetStats):
        c = dict(config)
        super().__init__(c, replace(stats, norm_sigma=1.0))
        p = stats.num_particles
        branches, widths = (c["branches"], c["widths"]) if c["branches"] else TREES.get(p, (None, None))
        if branches is None:
            raise ConfigError(f"deeptree-gan: no published tree for {p} particles; set branches (product {p}) "
                              "and widths (one more entry, the last 3)")
        leaves = math.prod(branches)
        if leaves != p or widths[-1] != 3:
            raise ConfigError(f"deeptree-gan: branches {branches} make {leaves} leaves "
                              f"and widths {widths} end in {widths[-1]}; expected {p} leaves and 3 features")
        pool = c["pool_nodes"] or [m for m in (30, 6, 1) if m < p]
        # norm_pt_sum None: as the reference, only at 150 particles
        self.norm_pt = p == 150 if c.get("norm_pt_sum") is None else bool(c["norm_pt_sum"])
        self.gen = TreeGenerator(branches, widths, c["hidden"])
        self.disc = PoolCritic(3, 2, pool, c["critic_heads"], c["critic_updates"], c["critic_dropout"], c["hidden"])

    def trainable(self) -> dict[str, nn.Module]:
        return {"gen": self.gen, "disc": self.disc}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {k: torch.optim.Adam(getattr(self, k).parameters(), lr=c[f"lr_{k[0]}"], betas=(0.9, 0.999),
                                    weight_decay=c["weight_decay"]) for k in ("gen", "disc")}

    def _noise(self, b: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(b, self.gen.widths[0], generator=generator, device=self.device)

    def training_step(self, x, optimizers, modules):
        gen, disc = modules["gen"], modules["disc"]
        b, n, _ = x.shape
        cond = jet_conditions(x, self.stats)
        fake = gen(self._noise(b), n)
        if self.norm_pt:
            fake = normalise_pt_sum(fake, self.stats)
        s_real, _ = disc(x, cond)
        s_fake, _ = disc(fake.detach(), cond)
        loss_d = (torch.relu(1 - s_real).mean(1) + torch.relu(1 + s_fake).mean(1)).sum()
        optimizers["disc"].zero_grad()
        loss_d.backward()
        optimizers["disc"].step()
        s_fake, lat_fake = disc(fake, cond)
        loss_g = -s_fake.mean(1).sum()
        if self.config["fm_weight"]:
            with torch.no_grad():
                _, lat_real = disc(x, cond)
            loss_g = loss_g + self.config["fm_weight"] * feature_matching(lat_real, lat_fake)
        optimizers["gen"].zero_grad()
        loss_g.backward()
        optimizers["gen"].step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    def generate(self, n_jets, multiplicity, generator):
        x = self.gen(self._noise(n_jets, generator), multiplicity)
        return normalise_pt_sum(x, self.stats) if self.norm_pt else x

    def generate_mixed(self, multiplicities, generator):
        x = self.gen(self._noise(len(multiplicities), generator), multiplicities)
        return normalise_pt_sum(x, self.stats, multiplicities) if self.norm_pt else x
