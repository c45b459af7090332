"""The convolutional coupling flow over one calorimeter layer image of Convolutional L2LFlows
(Buss et al., arXiv:2405.20407; code ``FLC-QU-hep/ConvL2LFlow`` @ f7f92a5, ``src/flow.py``, with
the flow layers of the ``ThorstenBuss/nflows`` fork @ 138f868).

An image (B, 1, H, W) is squeezed to (B, s0 s1, H / s0, W / s1), then ``blocks`` times
[ActNorm -> rational-quadratic spline coupling -> LU 1x1 convolution]; the base distribution is a
standard normal over the squeezed shape.  Each coupling transforms the first C // 2 channels with
monotonic rational-quadratic splines (K bins on [-B, B], identity outside: linear tails; zuko's
``MonotonicRQSTransform``) whose 3K - 1 parameters per pixel a U-Net computes from the other
channels and the embedded context.  Every part starts as the identity (zero last U-Net conv, 1x1
convolution = a fixed channel permutation), as the code's ``identity_init``.  ActNorm takes its
data-dependent initial scale and shift from the first batch it sees in training mode
(``ConvFlow.initialize``).  The U-Net holds batch norms: it is evaluated in eval mode when sampling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["squeeze", "unsqueeze", "ActNorm", "LUConv1x1", "UNet", "RQSCoupling", "context_embedding", "ConvFlow"]


def squeeze(x: torch.Tensor, factor: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C s0 s1, H / s0, W / s1): each s0 x s1 patch becomes channels."""
    b, c, h, w = x.shape
    s0, s1 = factor
    x = x.reshape(b, c, h // s0, s0, w // s1, s1)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * s0 * s1, h // s0, w // s1)


def unsqueeze(x: torch.Tensor, factor: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`squeeze`."""
    b, c, h, w = x.shape
    s0, s1 = factor
    x = x.reshape(b, c // (s0 * s1), s0, s1, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(b, c // (s0 * s1), h * s0, w * s1)


class ActNorm(nn.Module):
    """y = (x - shift) * exp(log_scale) per channel (Glow); the first training-mode call sets
    shift and scale so that this batch comes out with zero mean and unit variance per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("ready", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.ready):
            with torch.no_grad():
                self.shift.copy_(x.mean((0, 2, 3)))
                self.log_scale.copy_(-torch.log(x.std((0, 2, 3)) + 1e-6))
                self.ready.fill_(True)
        y = (x - self.shift.view(1, -1, 1, 1)) * self.log_scale.exp().view(1, -1, 1, 1)
        return y, self.log_scale.sum().expand(len(x)) * (x.shape[2] * x.shape[3])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * (-self.log_scale).exp().view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)


class LUConv1x1(nn.Module):
    """Invertible 1x1 convolution W = P L (U + diag(exp(log_s))) (Glow's LU form): P a fixed random
    permutation, L unit lower triangular, U strictly upper; starts as W = P."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("perm", torch.randperm(channels))
        self.lower = nn.Parameter(torch.zeros(channels, channels))
        self.upper = nn.Parameter(torch.zeros(channels, channels))
        self.log_s = nn.Parameter(torch.zeros(channels))

    def weight(self) -> torch.Tensor:
        c = len(self.log_s)
        eye = torch.eye(c, device=self.log_s.device, dtype=self.log_s.dtype)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.log_s.exp())
        return eye[self.perm] @ lower @ upper

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.einsum("ij,bjhw->bihw", self.weight(), x)
        return y, self.log_s.sum().expand(len(x)) * (x.shape[2] * x.shape[3])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        w = self.weight().double()
        return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(w).to(y.dtype), y)


class _CircularPad(nn.Module):
    """Circular padding by 1 of the last (angular) axis; the conv after it zero-pads the other."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (1, 1, 0, 0), mode="circular")


def _conv3(c_in: int, c_out: int, cyclic: bool) -> list[nn.Module]:
    if cyclic:
        return [_CircularPad(), nn.Conv2d(c_in, c_out, 3, padding=(1, 0))]
    return [nn.Conv2d(c_in, c_out, 3, padding=1)]


def _block(c_in: int, c_mid: int, c_out: int, cyclic: bool, last_act: bool) -> nn.Sequential:
    """conv3x3 -> BN -> LeakyReLU -> conv3x3 [-> BN -> LeakyReLU] (the code's ``UNet.get_block``)."""
    mods = [*_conv3(c_in, c_mid, cyclic), nn.BatchNorm2d(c_mid), nn.LeakyReLU(), *_conv3(c_mid, c_out, cyclic)]
    if last_act:
        mods += [nn.BatchNorm2d(c_out), nn.LeakyReLU()]
    return nn.Sequential(*mods)


class UNet(nn.Module):
    """The coupling subnet (code ``flow.py:11-103``): level i has 2^i ``hidden`` channels and is
    downsampled by a strided conv with kernel = stride = ``downsamples[i]``; the decoder upsamples
    by transposed convs and joins the skips; the last conv is zero (identity start).

    Shapes: x (B, c_in, H, W) and context (B, c_ctx, H, W) -> (B, c_out, H, W); H and W must be
    divisible by the product of the downsampling factors."""

    def __init__(self, c_in: int, c_out: int, hidden: int, downsamples: list[tuple[int, int]], cyclic: bool):
        super().__init__()
        self.enc, self.dec, self.down, self.up = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i, k in enumerate(downsamples):
            k = tuple(k)
            w = 2 ** i * hidden
            self.enc.append(_block(c_in if i == 0 else w, w, w, cyclic, True))
            self.dec.append(_block(2 * w, w, c_out if i == 0 else w, cyclic, i != 0))
            self.down.append(nn.Conv2d(w, 2 * w, k, stride=k))
            self.up.append(nn.ConvTranspose2d(2 * w, w, k, stride=k))
        self.act = nn.LeakyReLU()
        last = self.dec[0][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x, context], 1)
        skips = []
        for block, down in zip(self.enc, self.down):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.act(x)
        for block, up in zip(reversed(self.dec), reversed(self.up)):
            x = block(torch.cat([up(x), skips.pop()], 1))
        return x


class RQSCoupling(nn.Module):
    """Rational-quadratic spline coupling (Durkan et al., arXiv:1906.04032) over channels: the
    first C // 2 channels are transformed pixel-wise, conditioned on the rest and the context."""

    def __init__(self, channels: int, context: int, hidden: int, downsamples: list[tuple[int, int]], cyclic: bool,
                 bins: int = 10, bound: float = 15.0):
        super().__init__()
        self.split, self.bins, self.bound = channels // 2, bins, bound
        self.net = UNet(channels - self.split + context, self.split * (3 * bins - 1), hidden, downsamples, cyclic)

    def _spline(self, x_id: torch.Tensor, context: torch.Tensor):
        from zuko.transforms import MonotonicRQSTransform

        b, _, h, w = x_id.shape
        p = self.net(x_id, context).view(b, self.split, 3 * self.bins - 1, h, w).permute(0, 1, 3, 4, 2)
        k = self.bins
        return MonotonicRQSTransform(p[..., :k], p[..., k:2 * k], p[..., 2 * k:], bound=self.bound)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_tr, x_id = x[:, :self.split], x[:, self.split:]
        y, ladj = self._spline(x_id, context).call_and_ladj(x_tr)
        return torch.cat([y, x_id], 1), ladj.sum((1, 2, 3))

    def inverse(self, y: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        y_tr, y_id = y[:, :self.split], y[:, self.split:]
        return torch.cat([self._spline(y_id, context).inv(y_tr), y_id], 1)


def context_embedding(c_in: int, c_out: int, factor: tuple[int, int], cyclic: bool) -> nn.Sequential:
    """Condition maps (B, c_in, H, W) -> (B, c_out, H / s0, W / s1) (code ``flow.py:106-134``):
    conv1x1, conv3x3, strided conv (kernel = stride = squeeze; average pooling above 2), conv3x3."""
    factor = tuple(factor)
    mods: list[nn.Module] = [nn.Conv2d(c_in, c_out, 1), nn.LeakyReLU(), *_conv3(c_out, c_out, cyclic), nn.LeakyReLU()]
    if max(factor) <= 2:
        mods += [nn.Conv2d(c_out, c_out, factor, stride=factor), nn.LeakyReLU()]
    else:
        mods.append(nn.AvgPool2d(factor))
    return nn.Sequential(*mods, *_conv3(c_out, c_out, cyclic))


class _Strided(nn.Module):
    """The code's ``NoEmbeddingNet`` (layer 0): constant condition maps, subsampled to the squeezed grid."""

    def __init__(self, factor: tuple[int, int]):
        super().__init__()
        self.factor = tuple(factor)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return c[..., ::self.factor[0], ::self.factor[1]]


class ConvFlow(nn.Module):
    """p(image | condition maps) for (B, 1, H, W) images and (B, n_context, H, W) conditions.

    ``forward`` gives the log-density [nats per image] (so that DDP sees the whole loss in one
    call); ``transform`` the latent and the log |det J|; ``inverse`` and ``sample`` the way back.
    ``embed=0``: no context embedding (the code's layer-0 flow; the conditions, subsampled, go to
    the U-Nets as they are)."""

    def __init__(self, shape: tuple[int, int], n_context: int, factor: tuple[int, int] = (2, 2), blocks: int = 8,
                 hidden: int = 32, embed: int = 8, downsamples: list[tuple[int, int]] = ((3, 3), (5, 5)),
                 cyclic: bool = False, bins: int = 10, bound: float = 15.0):
        super().__init__()
        self.factor = tuple(factor)
        h, w = shape
        self.latent_shape = (self.factor[0] * self.factor[1], h // self.factor[0], w // self.factor[1])
        c = self.latent_shape[0]
        self.embed = context_embedding(n_context, embed, self.factor, cyclic) if embed else _Strided(self.factor)
        c_ctx = embed or n_context
        self.norms = nn.ModuleList([ActNorm(c) for _ in range(blocks)])
        self.couplings = nn.ModuleList([RQSCoupling(c, c_ctx, hidden, downsamples, cyclic, bins, bound)
                                        for _ in range(blocks)])
        self.mixers = nn.ModuleList([LUConv1x1(c) for _ in range(blocks)])

    def transform(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, H, W) images -> latent (B, C, H', W') and log |det dz/dx| (B,)."""
        ctx = self.embed(context)
        z = squeeze(x, self.factor)
        logdet = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        for norm, coupling, mixer in zip(self.norms, self.couplings, self.mixers):
            z, ld_norm = norm(z)
            z, ld_coupling = coupling(z, ctx)
            z, ld_mixer = mixer(z)
            logdet = logdet + ld_norm + ld_coupling + ld_mixer
        return z, logdet

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        z, logdet = self.transform(x, context)
        return logdet - 0.5 * z.pow(2).sum((1, 2, 3)) - 0.5 * math.log(2 * math.pi) * z[0].numel()

    def inverse(self, z: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Latent (B, C, H', W') -> images (B, 1, H, W)."""
        ctx = self.embed(context)
        for norm, coupling, mixer in zip(reversed(self.norms), reversed(self.couplings), reversed(self.mixers)):
            z = norm.inverse(coupling.inverse(mixer.inverse(z), ctx))
        return unsqueeze(z, self.factor)

    def sample(self, context: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn((len(context), *self.latent_shape), generator=generator, device=context.device)
        return self.inverse(z, context)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor, context: torch.Tensor) -> None:
        """The data-dependent ActNorm start from one batch (call before training, on every rank
        with the same batch, so that DDP replicas start equal)."""
        was = self.training
        self.train()
        self.transform(x, context)
        self.train(was)
