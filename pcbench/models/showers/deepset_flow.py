"""DeepSetFlow: a coupling normalising flow over the points of a set whose couplings also see a
DeepSets summary of the set (CaloPointFlow II, Schnake et al., arXiv:2403.15782, "DSF").

Each coupling splits a point's features into an identity half x_a and a transformed half x_b
(a fixed mask per coupling, ``torch.randperm(features) % 2 == i % 2`` as the reference code draws
them, kept as a buffer).  x_b goes through a monotonic rational-quadratic spline (zuko's
``MonotonicRQSTransform``, bound 5, identity outside) whose parameters come from an MLP of
(x_a, the set's context, s), where s = reduce_net(masked mean over the set's points of
point_net(x_a)).  s depends only on the x_a halves, which the coupling leaves unchanged, so the
coupling is invertible and its Jacobian over the whole set is block-triangular: log |det| is the
sum of the per-point spline log-derivatives.  The flow is permutation-equivariant in the points.

Shapes: points x (B, P, d), mask (B, P) bool (real points; padded points are transformed too but
take no part in the summaries), context (B, C).  Data -> base (``forward``) gives z and the
per-point log |det| (B, P); ``log_prob`` the per-point log-density (B, P) under N(0, I).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from zuko.nn import MLP
from zuko.transforms import MonotonicRQSTransform

__all__ = ["SetCoupling", "DeepSetFlow", "masked_mean"]


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, P, H), (B, P) -> (B, H): the mean over each set's real points (0 for an empty set)."""
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class SetCoupling(nn.Module):
    """One coupling transform (module docstring); ``mask``: True = identity feature."""

    def __init__(self, features: int, context: int, mask: torch.Tensor, bins: int, hidden: tuple[int, ...],
                 point_net: tuple[int, ...], reduce_net: tuple[int, ...], bound: float = 5.0, slope: float = 1e-4):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.bool))
        fa = int(self.mask.sum())
        fb = features - fa
        if fa < 1 or fb < 1:
            raise ValueError("a coupling needs at least one identity and one transformed feature")
        self.bins, self.fb, self.bound, self.slope = bins, fb, bound, slope
        self.point_net = MLP(fa, point_net[-1], list(point_net[:-1]))
        self.reduce_net = MLP(point_net[-1], reduce_net[-1], list(reduce_net[:-1]))
        self.hyper = MLP(fa + context + reduce_net[-1], fb * (3 * bins - 1), list(hidden))

    def _spline(self, x_a: torch.Tensor, mask: torch.Tensor, context: torch.Tensor) -> MonotonicRQSTransform:
        s = self.reduce_net(masked_mean(self.point_net(x_a), mask))  # (B, S)
        b, p = x_a.shape[:2]
        h = torch.cat([x_a, context[:, None].expand(b, p, -1), s[:, None].expand(b, p, -1)], -1)
        phi = self.hyper(h).unflatten(-1, (self.fb, 3 * self.bins - 1))
        w, hh, d = phi.split([self.bins, self.bins, self.bins - 1], -1)
        return MonotonicRQSTransform(w, hh, d, bound=self.bound, slope=self.slope)

    def _merge(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        out = x_a.new_empty((*x_a.shape[:-1], len(self.mask)))
        out[..., self.mask] = x_a
        out[..., ~self.mask] = x_b
        return out

    def forward(self, x: torch.Tensor, mask: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data side -> base side: y (B, P, d) and log |dy/dx| per point (B, P)."""
        x_a, x_b = x[..., self.mask], x[..., ~self.mask]
        y_b, ladj = self._spline(x_a, mask, context).call_and_ladj(x_b)
        return self._merge(x_a, y_b), ladj.sum(-1)

    def inverse(self, y: torch.Tensor, mask: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        y_a, y_b = y[..., self.mask], y[..., ~self.mask]
        return self._merge(y_a, self._spline(y_a, mask, context).inv(y_b))


class DeepSetFlow(nn.Module):
    """``transforms`` set couplings and a standard normal base over ``features`` per point."""

    def __init__(self, features: int, context: int, transforms: int, bins: int, hidden: tuple[int, ...],
                 point_net: tuple[int, ...], reduce_net: tuple[int, ...], mask_seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(mask_seed)  # the masks: a function of the config, not of torch's state
        self.features = features
        self.couplings = nn.ModuleList(
            SetCoupling(features, context, torch.randperm(features, generator=g) % 2 == i % 2, bins, hidden,
                        point_net, reduce_net) for i in range(transforms))

    def to_base(self, x: torch.Tensor, mask: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, P, d) -> z (B, P, d) and the summed log |det| per point (B, P)."""
        ladj = x.new_zeros(x.shape[:-1])
        for c in self.couplings:
            x, l_ = c(x, mask, context)
            ladj = ladj + l_
        return x, ladj

    def from_base(self, z: torch.Tensor, mask: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for c in reversed(self.couplings):
            z = c.inverse(z, mask, context)
        return z

    def forward(self, x: torch.Tensor, mask: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Per-point log p(x | set, context) (B, P) (padded points: whatever; mask them out)."""
        z, ladj = self.to_base(x, mask, context)
        return -0.5 * (z ** 2).sum(-1) - 0.5 * self.features * math.log(2 * math.pi) + ladj

    log_prob = forward

    @torch.no_grad()
    def sample(self, mask: torch.Tensor, context: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, P, d) points of sets with real points ``mask`` (B, P), drawn jointly per set."""
        z = torch.randn((*mask.shape, self.features), generator=generator, device=mask.device)
        return self.from_base(z, mask, context)
