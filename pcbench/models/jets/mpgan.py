"""MP-GAN (Kansal et al., arXiv:2106.11535, NeurIPS 2021): message passing on the fully connected
particle graph, as the authors' released generators are built (``rkansal47/MPGAN``, ``mpgan/model.py``).

One message-passing layer maps node features x (B, N, F) to

    x'_i = f_n([ sum_j w_j f_e([x_i, x_j]), x_i ])

with j over all N nodes (self included), w_j the node mask (1 when unmasked), f_e an MLP with a
leaky ReLU after every layer and f_n an MLP whose last layer is linear; there is no residual
connection.  The generator draws per-particle Gaussian noise (sd 0.2) for all P = 30 slots, keeps
the ``n`` slots whose first noise feature is smallest (the paper's particle-number conditioning,
``mask_c``), runs ``mp_iters`` layers and a final tanh.  Because masked nodes send no messages,
running on the n kept nodes alone gives the same features (:meth:`MPGenerator.forward`), which
is how pcbench trains at one multiplicity per batch.  The MP-LFC variant first maps one latent
vector (128) to the P node vectors with a linear layer.  Discriminator: the same layers on the real
particles (dropout 0.5), a sum over particles, a linear layer and a sigmoid; least-squares loss,
RMSprop (the paper's settings).  Module names follow the authors' state dicts, so their weights
load with strict key checking (:mod:`pcbench.models.jets.mpgan_release`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import JetStats
from .gan import LSGAN

__all__ = ["LinearNet", "MPLayer", "MPGenerator", "MPDiscriminator", "MPGAN", "select_lowest"]


class LinearNet(nn.Module):
    """Linear layers ``net.k`` with leaky ReLU (slope 0.2) after each, except the last if
    ``final_linear``; dropout ``p`` after every layer."""

    def __init__(self, sizes: list[int], final_linear: bool, dropout: float = 0.0, alpha: float = 0.2):
        super().__init__()
        self.net = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.final_linear, self.alpha = final_linear, alpha
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.net) - 1
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i < last or not self.final_linear:
                x = F.leaky_relu(x, self.alpha)
            x = self.dropout(x)
        return x


class MPLayer(nn.Module):
    """x'_i = f_n([sum_j w_j f_e([x_i, x_j, (|x_j - x_i|)]), x_i]) on (B, N, F_in) -> (B, N, F_out).

    ``edge_distance`` appends the Euclidean distance between the two nodes' features to the edge
    input (the authors' ``pos_diffs`` with ``all_ef``), used by some ablation models.
    """

    def __init__(self, in_size: int, fe: list[int], fn: list[int], out_size: int, dropout: float = 0.0,
                 edge_distance: bool = False):
        super().__init__()
        self.edge_distance = edge_distance
        self.fe = LinearNet([2 * in_size + int(edge_distance), *fe], final_linear=False, dropout=dropout)
        self.fn = LinearNet([fe[-1] + in_size, *fn, out_size], final_linear=True, dropout=dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, f = x.shape
        xi = x.unsqueeze(2).expand(b, n, n, f)
        xj = x.unsqueeze(1).expand(b, n, n, f)
        parts = [xi, xj]
        if self.edge_distance:
            parts.append(torch.linalg.norm(xj - xi + 1e-12, dim=-1, keepdim=True))
        msg = self.fe(torch.cat(parts, -1))  # (B, N_i, N_j, E)
        if mask is not None:
            msg = msg * mask[:, None, :, None]
        return self.fn(torch.cat([msg.sum(2), x], -1))


def select_lowest(first_feature: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(B, P) bool: for each jet, the ``counts`` slots with the smallest ``first_feature``
    (the authors' ``argsort(argsort(z)) <= n - 1``)."""
    rank = first_feature.argsort(1).argsort(1)
    return rank < counts.to(rank.device)[:, None]


class MPGenerator(nn.Module):
    """The MP-GAN generator: noise (B, P, latent) or, with ``lfc``, (B, lfc_latent) -> (B, P, out).

    Args:
        num_particles: P, the slots per jet (30).
        latent_node: per-node noise (and first-layer input) size.
        hidden_node: node features between layers.
        fe, fn: edge and node MLP widths.
        mp_iters: message-passing layers.
        out_feats: output features per particle (3: etarel, phirel, ptrel, normalised).
        lfc: a linear layer from one ``lfc_latent`` vector to the P node vectors (MP-LFC).
        tanh: final tanh.
        edge_distance: see :class:`MPLayer`.
        take: keep only the first ``take`` output features (the authors' older generators end
            with ``hidden_node`` features of which the first 3 are the particle).
    """

    def __init__(self, num_particles: int, latent_node: int, hidden_node: int, fe: list[int], fn: list[int],
                 mp_iters: int, out_feats: int = 3, lfc: bool = False, lfc_latent: int = 128, tanh: bool = True,
                 edge_distance: bool = False, take: int | None = None):
        super().__init__()
        self.num_particles, self.latent_node, self.lfc_latent, self.tanh = num_particles, latent_node, lfc_latent, tanh
        self.take = take
        sizes = [latent_node] + [hidden_node] * (mp_iters - 1) + [out_feats]
        self.mp_layers = nn.ModuleList(MPLayer(a, fe, fn, b, edge_distance=edge_distance)
                                       for a, b in zip(sizes[:-1], sizes[1:]))
        self.lfc_layer = nn.Linear(lfc_latent, num_particles * latent_node) if lfc else None

    def noise(self, b: int, generator: torch.Generator | None, sd: float = 0.2) -> torch.Tensor:
        """The generator's input for ``b`` jets: N(0, sd^2) of shape (b, lfc_latent) or (b, P, latent)."""
        dev = next(self.parameters()).device
        shape = (b, self.lfc_latent) if self.lfc_layer is not None else (b, self.num_particles, self.latent_node)
        return torch.randn(shape, generator=generator, device=dev) * sd

    def nodes(self, z: torch.Tensor) -> torch.Tensor:
        """Initial node features (B, P, latent) from the noise (through the LFC layer if any)."""
        if self.lfc_layer is None:
            return z
        return self.lfc_layer(z).reshape(len(z), self.num_particles, self.latent_node)

    def _layers(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        for layer in self.mp_layers:
            x = layer(x, mask)
        if self.take is not None:
            x = x[..., :self.take]
        return torch.tanh(x) if self.tanh else x

    def forward_padded(self, z: torch.Tensor, counts: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All P slots and the mask, as the authors compute them: ((B, P, out), (B, P) bool, or
        None without ``counts``: then every slot is a particle)."""
        x = self.nodes(z)
        mask = None if counts is None else select_lowest(x[..., 0], counts)
        return self._layers(x, None if mask is None else mask.to(x.dtype)), mask

    def forward(self, z: torch.Tensor, n: int) -> torch.Tensor:
        """(B, n, out): only the ``n`` kept slots of every jet, in slot order (the same values as
        :meth:`forward_padded`'s unmasked slots, at (n/P)^2 of its cost)."""
        x = self.nodes(z)
        keep = select_lowest(x[..., 0], torch.full((len(x),), n, dtype=torch.long))
        x = x[keep].reshape(len(x), n, x.shape[-1])
        return self._layers(x, None)


class MPDiscriminator(nn.Module):
    """MP layers on (B, n, 3) real or generated particles, sum over particles, linear, sigmoid."""

    def __init__(self, hidden_node: int, fe: list[int], fn: list[int], mp_iters: int, fnd: list[int],
                 dropout: float = 0.5, in_feats: int = 3):
        super().__init__()
        sizes = [in_feats] + [hidden_node] * mp_iters
        self.mp_layers = nn.ModuleList(MPLayer(a, fe, fn, b, dropout=dropout) for a, b in zip(sizes[:-1], sizes[1:]))
        self.fnd_layer = LinearNet([hidden_node, *fnd, 1], final_linear=True, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.mp_layers:
            x = layer(x)
        return torch.sigmoid(self.fnd_layer(x.sum(1)))


class MPGAN(LSGAN):
    """MP-GAN as in the paper; ``configs["full"]`` holds the released JetNet30 models' settings.

    Features are pcbench's standardised ones scaled to a standard deviation of ``norm_sigma``
    (0.2: inside the generator's tanh range) instead of the authors' division by per-class maxima.
    """

    name = "mp-gan"
    configs: ClassVar[dict[str, dict[str, Any]]] = {
        "full": {"latent_node": 32, "disc_node": 32, "fe": [96, 160, 192], "fn": [256, 256], "fnd": [],
                 "mp_iters": 2, "noise_sd": 0.2, "disc_dropout": 0.5, "optimizer": "rmsprop",
                 "lr_g": 5e-6, "lr_d": 1.5e-5, "beta1": 0.9, "norm_sigma": 0.2, "batch_size": 256, "epochs": 500},
        "small": {"latent_node": 16, "disc_node": 16, "fe": [32, 32], "fn": [64], "fnd": [],
                  "mp_iters": 2, "noise_sd": 0.2, "disc_dropout": 0.5, "optimizer": "rmsprop",
                  "lr_g": 1e-4, "lr_d": 3e-4, "beta1": 0.9, "norm_sigma": 0.2, "batch_size": 128, "epochs": 40},
    }

    def __init__(self, config: dict[str, Any], stats: JetStats):
        c = {**self.configs["full"], **config}
        super().__init__(c, replace(stats, norm_sigma=c["norm_sigma"]))
        self.gen = MPGenerator(stats.num_particles, c["latent_node"], c["latent_node"], c["fe"], c["fn"],
                               c["mp_iters"])
        self.disc = MPDiscriminator(c["disc_node"], c["fe"], c["fn"], c["mp_iters"], c["fnd"], c["disc_dropout"])

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        if c["optimizer"] != "rmsprop":
            return super().make_optimizers()
        return {"gen": torch.optim.RMSprop(self.gen.parameters(), lr=c["lr_g"]),
                "disc": torch.optim.RMSprop(self.disc.parameters(), lr=c["lr_d"])}

    def noise(self, b, n, generator=None):
        return (self.gen.noise(b, generator, self.config["noise_sd"]), n)

