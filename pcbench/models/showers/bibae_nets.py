"""The networks of the BIB-AE with its post-processor ("Getting High", Buhmann et al.,
arXiv:2005.05334; code ``FLC-QU-hep/getting_high`` at 3547483, ``BIBAE/BIBAE_models.py``), on
voxel showers of shape (B, 1, L, U, V) [MeV] with an energy label (B, 1):

- :class:`VoxelEncoder`: 3-D convolutions (bias-free, each with a ``LayerNorm`` over the spatial
  dimensions, i.e. a per-voxel affine), flatten, | label, fully connected layers -> (mu, logvar)
  of the *encoded* latent dimensions (``BiBAE_F_3D_LayerNorm_SmallLatent.encode``);
- :class:`VoxelDecoder`: (z | label) -> fully connected layers -> a small cube -> transposed
  convolutions (to exact output sizes) -> convolutions -> ReLU (``decode``);
- :class:`DifferenceCritic`: the WGAN critic of pairs (a, b): convolutional branches on b and on
  log(b + 1), a linear branch on the voxel-wise difference b - a (0 for real pairs (x, x), so the
  critic is a learned reconstruction loss for fake pairs (x, x_hat)) and one on the label
  (``Discriminator_F_Conv_DIRENR_Diff_v3``);
- :class:`LatentCritic`: a 1 -> 50 -> 100 -> 50 -> 1 MLP applied to every latent coordinate on its
  own (``Latent_Critic``);
- :class:`PostProcessor`: 1x1x1 convolutions (as channels-last linear maps) with a conditioning of
  (sum of the voxels, label)
  broadcast to every voxel (``PostProcess_Size1Conv_EcondV2``).

Layer lists are [out_channels, kernel, stride, padding] (transposed: plus the output size of the
cubic side it must reach), so the published networks and small ones share one class; spatial
sizes follow from the input shape.  LeakyReLU slopes as the reference (0.2; 0.01 where it used
PyTorch's default).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VoxelEncoder", "VoxelDecoder", "DifferenceCritic", "LatentCritic", "PostProcessor", "conv_out"]

Shape = tuple[int, int, int]


def conv_out(shape: Shape, kernel: int, stride: int, padding: int) -> Shape:
    """Spatial shape after a Conv3d (no dilation)."""
    return tuple((n + 2 * padding - kernel) // stride + 1 for n in shape)  # type: ignore[return-value]


class _ConvStack(nn.Module):
    """Conv3d layers [out, k, s, p] (bias-free), each with LayerNorm over its output's spatial
    shape (``norm[i]``) and LeakyReLU(0.2)."""

    def __init__(self, c_in: int, shape: Shape, layers: Sequence[Sequence[int]], norm: Sequence[bool] | None = None):
        super().__init__()
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        norm = [True] * len(layers) if norm is None else list(norm)
        for (c, k, s, p), n in zip(layers, norm):
            self.convs.append(nn.Conv3d(c_in, c, k, s, p, bias=False))
            shape = conv_out(shape, k, s, p)
            self.norms.append(nn.LayerNorm(list(shape)) if n else nn.Identity())
            c_in = c
        self.out_channels, self.out_shape = c_in, shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = F.leaky_relu(norm(conv(x)), 0.2)
        return x


def _mlp(widths: Sequence[int], slope: float) -> nn.Sequential:
    """Linear layers of ``widths`` (first: input), each followed by LeakyReLU(``slope``)."""
    out: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        out += [nn.Linear(a, b), nn.LeakyReLU(slope)]
    return nn.Sequential(*out)


class VoxelEncoder(nn.Module):
    """x (B, 1, L, U, V), label (B, 1) -> mu, logvar (B, ``encoded``).
    The reference: convs [[8,4,2,2],[16,4,2,2],[32,4,2,2],[64,3,1,1]], fc [4000, 768], 24 encoded."""

    def __init__(self, shape: Shape, convs: Sequence[Sequence[int]], fc: Sequence[int], encoded: int):
        super().__init__()
        self.convs = _ConvStack(1, shape, convs)
        flat = self.convs.out_channels * int(torch.tensor(self.convs.out_shape).prod())
        self.fc = _mlp([flat + 1, *fc], 0.2)
        self.mu, self.logvar = nn.Linear(fc[-1], encoded), nn.Linear(fc[-1], encoded)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(torch.cat([self.convs(x).flatten(1), label], 1))
        return self.mu(h), self.logvar(h)


class VoxelDecoder(nn.Module):
    """z (B, latent), label (B, 1) -> x (B, 1, L, U, V) >= 0 [MeV].

    ``fc``: widths after (z | label); ``start``: [channels, side] of the cube the last fully
    connected layer fills; ``up``: transposed convs [out, k, s, p, side] reaching a cube of
    ``side``; ``convs``: convs [out, k, s, p] (all with LayerNorm and LeakyReLU(0.2)); a last
    bias-free Conv3d to 1 channel (kernel ``out_kernel``, same padding) and a ReLU.  The
    reference: fc [768, 4000], start [8, 10], up [[8,3,3,1,30],[16,3,2,1,60]], convs
    [[8,2,2,0],[16,3,1,1],[32,3,1,1],[16,3,1,1]], out_kernel 3.
    """

    def __init__(self, shape: Shape, latent: int, fc: Sequence[int], start: Sequence[int],
                 up: Sequence[Sequence[int]], convs: Sequence[Sequence[int]], out_kernel: int = 3):
        super().__init__()
        c0, side = start
        self.start = (c0, side)
        self.fc = _mlp([latent + 1, *fc, c0 * side ** 3], 0.2)
        self.up, self.up_norms, self.up_sizes = nn.ModuleList(), nn.ModuleList(), []
        c = c0
        for co, k, s, p, n in up:
            self.up.append(nn.ConvTranspose3d(c, co, k, s, p, bias=False))
            self.up_norms.append(nn.LayerNorm([n, n, n]))
            self.up_sizes.append(n)
            c = co
        self.convs = _ConvStack(c, (side,) * 3 if not up else (up[-1][4],) * 3, convs)
        if self.convs.out_shape != tuple(shape):
            raise ValueError(f"decoder ends at {self.convs.out_shape}, expected {tuple(shape)}")
        self.out = nn.Conv3d(self.convs.out_channels, 1, out_kernel, 1, out_kernel // 2, bias=False)

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        c0, side = self.start
        x = self.fc(torch.cat([z, label], 1)).view(-1, c0, side, side, side)
        for conv, norm, n in zip(self.up, self.up_norms, self.up_sizes):
            x = F.leaky_relu(norm(conv(x, output_size=[n, n, n])), 0.2)
        return F.relu(self.out(self.convs(x)))


class DifferenceCritic(nn.Module):
    """pair (B, 2, L, U, V) = (a, b), label (B, 1) -> score (B,).

    ``ndf`` channels per conv branch, ``convs`` [k, s] (padding 0; LayerNorm after all but the
    last), ``features`` per branch, ``head`` widths to the score.  The reference: ndf 128, convs
    [[3,2],[3,2],[3,1]], features 64, head [256, 256, 256].
    """

    def __init__(self, shape: Shape, ndf: int, convs: Sequence[Sequence[int]], features: int, head: Sequence[int]):
        super().__init__()
        layers = [[ndf, k, s, 0] for k, s in convs]
        norm = [True] * (len(convs) - 1) + [False]
        self.branch_b, self.branch_log = _ConvStack(1, shape, layers, norm), _ConvStack(1, shape, layers, norm)
        flat = ndf * int(torch.tensor(self.branch_b.out_shape).prod())
        self.fc_b, self.fc_log = nn.Linear(flat, features), nn.Linear(flat, features)
        self.fc_diff = nn.Linear(int(torch.tensor(shape).prod()), features)
        self.fc_label = nn.Linear(1, features)
        self.head = _mlp([4 * features, *head], 0.2)
        self.score = nn.Linear(head[-1], 1)

    def forward(self, pair: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        a, b = pair[:, :1], pair[:, 1:2]
        h = torch.cat([F.leaky_relu(self.fc_b(self.branch_b(b).flatten(1)), 0.2),
                       F.leaky_relu(self.fc_log(self.branch_log(torch.log(b + 1.0)).flatten(1)), 0.2),
                       F.leaky_relu(self.fc_diff((b - a).flatten(1)), 0.01),
                       F.leaky_relu(self.fc_label(label), 0.2)], 1)
        return self.score(self.head(h)).view(-1)


class LatentCritic(nn.Module):
    """z (B, D) -> scores (B, D): one MLP (1 -> hidden -> 1, LeakyReLU 0.01) on every coordinate."""

    def __init__(self, hidden: Sequence[int] = (50, 100, 50)):
        super().__init__()
        self.net = nn.Sequential(_mlp([1, *hidden], 0.01), nn.Linear(hidden[-1], 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(-1, 1)).view(z.shape)


def _per_voxel(layer: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """A 1x1x1 convolution of (B, C_in, V) voxels as ``layer``'s matrix product: (B, C_out, V)."""
    out = torch.matmul(layer.weight, h)
    return out if layer.bias is None else out + layer.bias[:, None]


class PostProcessor(nn.Module):
    """x (B, 1, L, U, V) [MeV], label (B, 1) -> x' (same shape): per-voxel (1x1x1) convolutions
    (as matrix products over the flattened voxels, the same function) with the spatial LayerNorm.

    Conditioning: (sum of x * ``sum_scale``, label) -> 3 linear layers of ``ndf // 2``
    (LeakyReLU 0.01), broadcast to every voxel and joined to the first layer's ``ndf`` channels;
    then 3 layers with LayerNorm, one without, and a bias-free one to 1 channel; ``out``: ``none``
    (linear, as the reference's instance), ``relu`` or ``leaky_relu``.
    """

    def __init__(self, shape: Shape, ndf: int, bias: bool = True, out: str = "none", sum_scale: float = 1.0):
        super().__init__()
        half, voxels = ndf // 2, int(torch.tensor(shape).prod())
        self.sum_scale, self.out_fn = sum_scale, out
        self.cond = _mlp([2, half, half, half], 0.01)
        self.layers = nn.ModuleList([nn.Linear(1, ndf, bias=bias), nn.Linear(ndf + half, ndf, bias=bias)] +
                                    [nn.Linear(ndf, ndf, bias=bias) for _ in range(3)])
        self.norms = nn.ModuleList([nn.LayerNorm(voxels) for _ in range(4)] + [nn.Identity()])
        self.last = nn.Linear(ndf, 1, bias=False)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = x.flatten(2)                                                    # (B, 1, V)
        c = self.cond(torch.cat([h.sum(2) * self.sum_scale, label], 1))    # (B, ndf // 2)
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            if i == 1:
                h = torch.cat([h, c[:, :, None].expand(-1, -1, h.shape[2])], 1)
            h = F.leaky_relu(norm(_per_voxel(layer, h)), 0.01)
        y = _per_voxel(self.last, h).view(x.shape)
        if self.out_fn == "relu":
            return F.relu(y)
        return F.leaky_relu(y, 0.01) if self.out_fn == "leaky_relu" else y
