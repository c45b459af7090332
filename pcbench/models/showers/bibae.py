"""BIB-AE with its post-processor (Buhmann, Diefenbacher, Eren, Gaede, Kasieczka, Korol, Krüger,
"Getting High: High Fidelity Simulation of High Granularity Calorimeters with High Speed",
arXiv:2005.05334; code ``FLC-QU-hep/getting_high`` at 3547483, ``BIBAE/``): a voxel model of
photon showers on a 30 x 30 x 30 grid (``ild-ecal-30``).

Data.  The training showers (points, mm, MeV) are projected onto the grid's cells (no threshold,
as the reference trains on its raw cell energies) and modelled as (B, 1, layers, u, v) voxels in
MeV with no other preprocessing; the label is E_inc [GeV] x ``e_label_scale`` (the reference: raw
GeV, scale 1).

Bounded-information-bottleneck autoencoder (``bibae_nets``).  The encoder gives (mu, logvar) of
``latent_encoded`` dimensions; the decoder sees ``latent`` dimensions, the rest filled with N(0, 1)
noise (the reference's 24 of 512).  Per batch, ``n_critic`` steps of the difference critic (WGAN
with gradient penalty on real pairs (x, x) against fake pairs (x, x_hat)) and of the latent
critic (N(0, 1) against the encoded z, per coordinate, with gradient penalty), each on a fresh
reconstruction as in the reference; then one autoencoder step minimising

    w_kld KLD + w_mmd_latent sum_alpha MMD_alpha(z, N(0, 1)) - w_adv D(x, x_hat) - w_adv_latent D_L(z)

(``BIBAE_functions.py`` with the weights of ``BIBAE_Run.py``: no pixel loss; the difference
critic is the reconstruction loss).  The post-processor learns from detached reconstructions: the
identity (MSE(PP(x_hat), x_hat)) during the BIB-AE phase, then MSE + ``pp_mmd_weight`` x the sorted
kernel MMD of the hit spectra (per shower, the voxel energies of x and PP(x_hat) sorted, windows of
``mmd_kernel`` values every ``mmd_stride`` up to ``mmd_cutoff``, Gaussian kernel of ``mmd_alpha``
[MeV^-2]); the BIB-AE keeps training alongside (``pp_train_bibae``, the reference's
``BIBAE_Train``).  Both phases are epochs of the one training loop; every learning rate decays by
``lr_gamma`` per epoch (StepLR).

Generation.  z ~ N(0, I_latent) (the reference's prior sampling: ``BIBAE_PP_generate.py``),
decoded with the label, post-processed (``use_pp``), cut at the grid's readout threshold
(0.1 MeV, half a MIP); the cells above it come back as hits at the cell centres, as
``pipeline.project_showers`` gives them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data.containers import ShowerPointSet, VoxelShowerSet
from ...errors import ConfigError
from ...geometry import LayeredGrid, get_geometry
from ..trainer import Phase, TrainOptions
from .base import ShowerGenerator, ShowerRun
from .bibae_nets import DifferenceCritic, LatentCritic, PostProcessor, VoxelDecoder, VoxelEncoder
from .pipeline import PipelineSteps, batch_seed
from .voxels import cells_to_showers, layer_images

__all__ = ["BIBAE", "latent_mmd", "sorted_kernel_mmd", "gradient_penalty"]

_FULL: dict[str, Any] = {
    "grid": "ild-ecal-30",
    "latent": 512, "latent_encoded": 24,
    "enc_convs": [[8, 4, 2, 2], [16, 4, 2, 2], [32, 4, 2, 2], [64, 3, 1, 1]], "enc_fc": [4000, 768],
    "dec_fc": [768, 4000], "dec_start": [8, 10], "dec_up": [[8, 3, 3, 1, 30], [16, 3, 2, 1, 60]],
    "dec_convs": [[8, 2, 2, 0], [16, 3, 1, 1], [32, 3, 1, 1], [16, 3, 1, 1]], "dec_out_kernel": 3,
    "critic_ndf": 128, "critic_convs": [[3, 2], [3, 2], [3, 1]], "critic_features": 64,
    "critic_head": [256, 256, 256], "latent_critic": [50, 100, 50],
    "pp_ndf": 128, "pp_out": "none", "pp_sum_scale": 1.0, "use_pp": True,
    "e_label_scale": 1.0,
    "batch_size": 8, "n_critic": 5, "bibae_epochs": 100, "pp_epochs": 900, "pp_train_bibae": True,
    "lr_ae": 5e-4, "lr_critic": 5e-4, "lr_latent_critic": 2e-3, "lr_pp": 5e-4, "betas": [0.5, 0.9],
    "lr_gamma": 0.95,
    "w_kld": 0.05, "w_mmd_latent": 100.0, "mmd_latent_alphas": [1.0, 0.01], "w_adv": 1.0, "w_adv_latent": 100.0,
    "gp_lambda": 10.0,
    "pp_mmd_weight": 5.0, "mmd_kernel": 100, "mmd_stride": 25, "mmd_cutoff": 2000, "mmd_alpha": 200.0,
}

_SMALL: dict[str, Any] = {
    **_FULL,
    "latent": 64, "latent_encoded": 24,
    "enc_convs": [[4, 4, 2, 2], [8, 4, 2, 2], [16, 4, 2, 2]], "enc_fc": [256],
    "dec_fc": [256], "dec_start": [16, 8], "dec_up": [[8, 4, 2, 1, 16], [4, 4, 2, 2, 30]],
    "dec_convs": [[4, 3, 1, 1]], "dec_out_kernel": 3,
    "critic_ndf": 8, "critic_features": 16, "critic_head": [32, 32],
    "pp_ndf": 8, "pp_sum_scale": 1e-3, "e_label_scale": 0.01,
    # 1,400 showers on one core: 1.8-2.6 CPU-s per BIB-AE batch, 1.9-2.0 per post-processor batch,
    # about 14 CPU-minutes for the 6 + 3 epochs (measured at load 6)
    "batch_size": 32, "n_critic": 1, "bibae_epochs": 6, "pp_epochs": 3, "pp_train_bibae": False,
    "lr_gamma": 0.9,
}


def latent_mmd(z: torch.Tensor, prior: torch.Tensor, alpha: float) -> torch.Tensor:
    """The biased Gaussian-kernel MMD^2 of two (B, D) samples, exp(-alpha |u - v|^2), / B^2 sums."""
    def k(a, b):  # squared distances as |a|^2 + |b|^2 - 2 a.b (the reference's; no sqrt to differentiate)
        d2 = a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.T
        return torch.exp(-alpha * d2).mean()

    return k(prior, prior) + k(z, z) - 2 * k(prior, z)


def sorted_kernel_mmd(fake: torch.Tensor, real: torch.Tensor, kernel: int, stride: int, cutoff: int,
                      alpha: float) -> torch.Tensor:
    """The reference's sorted-kernel MMD of hit spectra: per shower, the voxel values (B, C) of
    each sorted descending; for windows starting at 0, stride, ... < min(cutoff, C), of ``kernel``
    values, the biased MMD^2 (kernel exp(-alpha (u - v)^2)) between the real and fake values;
    the mean over the showers and the windows."""
    n = fake.shape[1]
    top = min(n, cutoff + kernel)
    f = torch.topk(fake, top, dim=1).values
    r = torch.topk(real, top, dim=1).values

    def mmd(a, b):  # (B, W, k) each
        def k(u, v):
            return torch.exp(-alpha * (u[..., :, None] - v[..., None, :]).pow(2)).mean((-1, -2))
        return k(b, b) + k(a, a) - 2 * k(a, b)

    starts = list(range(0, min(cutoff, n), stride))
    full = [j for j in starts if j + kernel <= top]
    parts = []
    if full:
        idx = torch.as_tensor(full, device=fake.device)[:, None] + torch.arange(kernel, device=fake.device)
        parts.append(mmd(f[:, idx], r[:, idx]))
    parts += [mmd(f[:, None, j:], r[:, None, j:]) for j in starts[len(full):]]
    return torch.cat(parts, 1).mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(score of real, score of fake, weight * mean (|grad critic(interpolate)| - 1)^2), the critic
    called once on the three (one DDP forward); ``alpha`` (B,) mixes real and fake per sample."""
    b = len(real)
    a = alpha.view(-1, *[1] * (real.dim() - 1))
    inter = (a * real + (1 - a) * fake).requires_grad_(True)
    score = critic(torch.cat([real, fake, inter]))
    grad, = torch.autograd.grad(score[2 * b:].sum(), inter, create_graph=True)
    gp = weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return score[:b], score[b:2 * b], gp


class BIBAE(ShowerGenerator):
    """The generator (module docstring); training: the BIB-AE phase, then the post-processor phase."""

    name = "bib-ae"
    configs: dict[str, dict[str, Any]] = {"full": _FULL, "small": _SMALL}

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = c = dict(config)
        grid = get_geometry(c["grid"])
        if not isinstance(grid, LayeredGrid):
            raise ConfigError(f"bib-ae: grid {c['grid']!r} is not a layered grid; the BIB-AE models voxels of a "
                              "layered grid such as ild-ecal-30 (CaloChallenge geometries are not supported)")
        if not 0 < c["latent_encoded"] <= c["latent"]:
            raise ConfigError(f"bib-ae: latent_encoded {c['latent_encoded']} must be in 1..latent ({c['latent']})")
        if c["pp_out"] not in ("none", "relu", "leaky_relu"):
            raise ConfigError(f"bib-ae: pp_out {c['pp_out']!r}; expected none, relu or leaky_relu")
        shape = grid.shape
        try:
            encoder = VoxelEncoder(shape, c["enc_convs"], c["enc_fc"], c["latent_encoded"])
            decoder = VoxelDecoder(shape, c["latent"], c["dec_fc"], c["dec_start"], c["dec_up"], c["dec_convs"],
                                   c["dec_out_kernel"])
            self.critic = DifferenceCritic(shape, c["critic_ndf"], c["critic_convs"], c["critic_features"],
                                           c["critic_head"])
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"bib-ae: the network layers do not fit the {shape} grid: {exc}") from None
        self.latent_critic = LatentCritic(c["latent_critic"])
        self.post = PostProcessor(shape, c["pp_ndf"], True, c["pp_out"], c["pp_sum_scale"])
        self.ae = _AutoEncoder(encoder, decoder, c["latent"])

    @classmethod
    def build(cls, config: dict[str, Any], data: ShowerPointSet, opts: TrainOptions,
              teacher: ShowerGenerator | None = None, log_point_energy: bool = False) -> BIBAE:
        return cls(config)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> BIBAE:
        return cls(payload["config"])

    @property
    def decoder(self) -> VoxelDecoder:
        return self.ae.decoder

    @property
    def device(self) -> torch.device:
        return self.post.last.weight.device

    def label(self, e_inc_mev: np.ndarray) -> torch.Tensor:
        """(B, 1) the energy label: E_inc [GeV] x ``e_label_scale``."""
        e = np.asarray(e_inc_mev, np.float64) / 1000.0 * self.config["e_label_scale"]
        return torch.as_tensor(e, dtype=torch.float32).view(-1, 1)

    # --- training ------------------------------------------------------------------------------
    def initial_state(self) -> dict[str, Any]:
        return {"bibae_epoch": 0, "pp_epoch": 0, "history": []}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam with betas (0.5, 0.9) for each of the four networks (``BIBAE_Main.py:161-181``)."""
        c = self.config
        nets = {"ae": self.ae, "critic": self.critic, "latent_critic": self.latent_critic, "pp": self.post}
        return {k: torch.optim.Adam(net.parameters(), lr=c[f"lr_{k}"], betas=tuple(c["betas"]))
                for k, net in nets.items()}

    def trained_parts(self) -> list[tuple[nn.Module, str]]:
        return [(self, "ae"), (self, "critic"), (self, "latent_critic"), (self, "post")]

    def train_batch(self, x: torch.Tensor, label: torch.Tensor, gen: torch.Generator,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None, train_ae: bool = True,
                    pp_mode: str = "identity") -> dict[str, float]:
        """One batch (module docstring) on voxels x (B, 1, L, U, V) [MeV]: the critic steps and the
        autoencoder step (``train_ae``), then the post-processor step (``pp_mode``: ``identity``
        or ``mmd``).  Only the networks named in ``optimizers`` are updated (None: none; the losses
        of the current weights)."""
        c, b = self.config, len(x)
        out: dict[str, float] = {}

        def step(name: str, loss: torch.Tensor) -> None:
            if optimizers is not None and name in optimizers:
                optimizers[name].zero_grad()
                loss.backward()
                optimizers[name].step()

        if train_ae:
            for _ in range(c["n_critic"]):
                with torch.no_grad():
                    recon, _, _, z = self.ae(x, label, gen)
                real, fake = torch.cat([x, x], 1), torch.cat([x, recon], 1)
                alpha = torch.rand(b, generator=gen, device=x.device)
                s_real, s_fake, gp = gradient_penalty(lambda p: self.critic(p, label.repeat(3, 1)), real, fake, alpha,
                                                      c["gp_lambda"])
                d_loss = s_fake.mean() - s_real.mean() + gp
                step("critic", d_loss)
                prior = torch.randn(z.shape, generator=gen, device=x.device)
                alpha = torch.rand(b, generator=gen, device=x.device)
                l_real, l_fake, l_gp = gradient_penalty(self.latent_critic, prior, z, alpha, c["gp_lambda"])
                dl_loss = l_fake.mean() - l_real.mean() + l_gp
                step("latent_critic", dl_loss)
            recon, mu, logvar, z = self.ae(x, label, gen)
            adv = self.critic(torch.cat([x, recon], 1), label).mean()
            adv_latent = self.latent_critic(z).mean()
            kld = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / b
            prior = torch.randn(z.shape, generator=gen, device=x.device)
            mmd = sum(latent_mmd(z, prior, a) for a in c["mmd_latent_alphas"])
            ae_loss = c["w_kld"] * kld + c["w_mmd_latent"] * mmd - c["w_adv"] * adv - c["w_adv_latent"] * adv_latent
            step("ae", ae_loss)
            out.update(critic=d_loss.item(), gp=gp.item(), latent_critic=dl_loss.item(), ae=ae_loss.item(),
                       kld=kld.item(), mmd_latent=mmd.item(), adv=adv.item())
            recon = recon.detach()
        else:
            with torch.no_grad():
                recon = self.ae(x, label, gen)[0]
        pp = self.post(recon, label)
        mse = F.mse_loss(pp, recon)
        pp_loss = mse
        if pp_mode == "mmd":
            hit = sorted_kernel_mmd(pp.flatten(1), x.flatten(1), c["mmd_kernel"], c["mmd_stride"], c["mmd_cutoff"],
                                    c["mmd_alpha"])
            pp_loss = mse + c["pp_mmd_weight"] * hit
            out["pp_hit_mmd"] = hit.item()
        step("pp", pp_loss)
        out.update(pp=pp_loss.item(), pp_mse=mse.item())
        return out

    def phases(self, run: ShowerRun) -> list[Phase]:
        c, state, world, rank = self.config, run.state, run.world, run.rank
        grid = self.grid
        voxels = torch.as_tensor(layer_images(run.data.points, run.data.mask, grid, threshold=0.0))[:, None]
        labels = self.label(run.data.incident_energy)
        usable = len(voxels) - len(voxels) % world  # as many batches on every rank (DDP's all-reduce)
        if usable // world == 0:
            raise ConfigError(f"bib-ae: {len(voxels)} training showers for {world} ranks")
        gen = torch.Generator(device=run.device)

        def epoch(key: str, label: str, train_ae: bool, pp_mode: str) -> str:
            e = state["bibae_epoch"] + state["pp_epoch"]  # the global epoch (StepLR)
            for name, opt in run.optimizers.items():
                for group in opt.param_groups:
                    group["lr"] = c[f"lr_{name}"] * c["lr_gamma"] ** e
            order = np.random.default_rng([run.opts.seed, 24, e]).permutation(len(voxels))[:usable][rank::world]
            logs: list[dict[str, float]] = []
            for i in range(0, len(order), c["batch_size"]):
                idx = torch.as_tensor(np.sort(order[i:i + c["batch_size"]]))
                gen.manual_seed(run.opts.seed * 1_000_003 + (e * 100_003 + i) * world + rank)
                logs.append(self.train_batch(voxels[idx].to(run.device), labels[idx].to(run.device), gen,
                                             run.optimizers, train_ae, pp_mode))
            state[key] += 1
            mean = {k: float(np.mean([g[k] for g in logs])) for k in logs[0]}
            state["history"].append({"phase": label, "epoch": state[key], **mean})
            if "ae" in mean:
                return f"D {mean['critic']:.3g} AE {mean['ae']:.3g} PP {mean['pp']:.3g}"
            return f"PP {mean['pp']:.3g}"

        every = 5 if run.opts.checkpoint_every is None else run.opts.checkpoint_every
        return [Phase("BIB-AE", c["bibae_epochs"], "epochs", lambda: state["bibae_epoch"],
                      lambda: epoch("bibae_epoch", "bibae", True, "identity"), every),
                Phase("post-processor", c["pp_epochs"], "epochs", lambda: state["pp_epoch"],
                      lambda: epoch("pp_epoch", "pp", c["pp_train_bibae"], "mmd"), every)]

    def untrained(self, state: dict[str, Any]) -> list[str]:
        c, out = self.config, []
        if state["bibae_epoch"] < c["bibae_epochs"]:
            out.append(f"BIB-AE ({state['bibae_epoch']} of {c['bibae_epochs']} epochs)")
        if state["pp_epoch"] < c["pp_epochs"]:
            out.append(f"post-processor ({state['pp_epoch']} of {c['pp_epochs']} epochs)")
        return out

    # --- sampling ------------------------------------------------------------------------------
    @torch.no_grad()
    def generate_voxels(self, e_inc_mev: np.ndarray, generator: torch.Generator, use_pp: bool | None = None
                        ) -> torch.Tensor:
        """(B, 1, L, U, V) voxels [MeV] before the threshold: z ~ N(0, I), decoded, post-processed."""
        label = self.label(e_inc_mev).to(self.device)
        z = torch.randn((len(label), self.config["latent"]), generator=generator, device=self.device)
        x = self.decoder(z, label)
        return self.post(x, label) if (self.config["use_pp"] if use_pp is None else use_pp) else x

    def sample(self, e_inc_mev: np.ndarray, seed: int = 0, batch_size: int = 64,
               steps: PipelineSteps = PipelineSteps(), progress: Callable[[int], None] | None = None
               ) -> ShowerPointSet | VoxelShowerSet:
        """Showers at the given incident energies [MeV]: cell hits at or above the threshold as
        points at the cell centres (mm, MeV), with or without ``steps.project`` (a voxel model's
        points are its cells; the other steps do not apply)."""
        e = np.asarray(e_inc_mev, np.float64)
        grid = self.grid
        parts = []
        for i, a in enumerate(range(0, len(e), batch_size)):
            gen = torch.Generator(device=self.device).manual_seed(batch_seed(seed, i))
            parts.append(self.generate_voxels(e[a:a + batch_size], gen).cpu().numpy().reshape(-1, grid.n_cells))
            if progress is not None:
                progress(len(parts[-1]))
        cells = np.concatenate(parts) if parts else np.zeros((0, grid.n_cells), np.float32)
        return cells_to_showers(cells, e, grid)


class _AutoEncoder(nn.Module):
    """Encoder and decoder as one trained part: x, label -> (x_hat, mu, logvar, z), z the
    reparametrised encoded dimensions followed by N(0, 1) noise up to ``latent``."""

    def __init__(self, encoder: VoxelEncoder, decoder: VoxelDecoder, latent: int):
        super().__init__()
        self.encoder, self.decoder, self.latent = encoder, decoder, latent

    def forward(self, x: torch.Tensor, label: torch.Tensor, gen: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x, label)
        eps = torch.randn((len(x), self.latent), generator=gen, device=x.device)
        k = mu.shape[1]
        z = torch.cat([mu + eps[:, :k] * torch.exp(0.5 * logvar), eps[:, k:]], 1)
        return self.decoder(z, label), mu, logvar, z
