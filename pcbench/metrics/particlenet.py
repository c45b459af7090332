"""ParticleNet (Qu, Gouskos, arXiv:1902.08570) as the MP-GAN authors trained it for FPND, in plain torch.

The architecture of the jetnet library's ``_ParticleNet`` (arXiv:2106.11535): k = 16 nearest
neighbours; three EdgeConv blocks (edge MLP of 3 x (Linear, BatchNorm, ReLU) with widths 64, 128,
256, mean aggregation over neighbours of h(x_i, x_j - x_i)), each block's output concatenated
with its input; the first block finds neighbours in (etarel, phirel) only, later blocks in the
full feature space; all slots, zero padding included, take part; global mean pooling; ``fc1``
(256) gives the activations FPND uses.  The kNN graph is built densely per jet (pairwise
distances and top-k, the node itself excluded) instead of with ``torch_cluster``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["ParticleNet"]


class _EdgeNet(nn.Module):
    """h(x_i, x_j - x_i): 3 x (Linear, BatchNorm, ReLU) on the concatenated edge features."""

    def __init__(self, in_size: int, width: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.Linear(in_size * 2 if i == 0 else width, width), nn.BatchNorm1d(width), nn.ReLU()]
        self.model = nn.Sequential(*layers)
        self._fused: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def fuse(self) -> None:
        """Fold each eval-mode BatchNorm into its Linear (the same function up to float rounding)."""
        fused = []
        for lin, bn in ((self.model[i], self.model[i + 1]) for i in (0, 3, 6)):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused.append(((lin.weight * scale[:, None]).detach(), ((lin.bias - bn.running_mean) * scale + bn.bias).detach()))
        self._fused = fused

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Mean over each point's neighbours ``idx`` (B, N, k) of h; x is (B, N, F)."""
        if self._fused is None:
            nbr = _gather(x, idx)
            centre = x.unsqueeze(2).expand_as(nbr)
            edges = torch.cat([centre, nbr - centre], dim=-1)
            return self.model(edges.reshape(-1, edges.shape[-1])).reshape(*edges.shape[:-1], -1).mean(dim=2)
        (w1, b1), (w2, b2), (w3, b3) = self._fused
        b, n, f = x.shape
        k = idx.shape[-1]
        # W [x_i, x_j - x_i] = (W_a - W_b) x_i + W_b x_j: project the points once, gather per edge
        own = torch.nn.functional.linear(x, w1[:, :f] - w1[:, f:], b1).reshape(b * n, -1)
        other = torch.nn.functional.linear(x, w1[:, f:]).reshape(b * n, -1)
        nbr = (idx + (torch.arange(b, device=x.device) * n)[:, None, None]).reshape(b * n, k)
        out = torch.empty(b * n, w3.shape[0], dtype=x.dtype, device=x.device)
        layers = ((w2.t(), b2), (w3.t(), b3))
        if x.device.type != "cpu":  # one pass: the accelerator wants large products
            _edge_rows(own, other, nbr, layers, out, 0, b * n)
            return out.view(b, n, -1)
        # CPU: the per-edge products in cache-sized slices of points, the slices shared by threads
        # that each run single-threaded torch ops (fixed slice bounds: the same bits for any
        # number of threads)
        step = max(1, _EDGE_ROWS // k)
        bounds = [(lo, min(lo + step, b * n)) for lo in range(0, b * n, step)]
        threads = min(torch.get_num_threads(), len(bounds))

        def work(part: list[tuple[int, int]]) -> None:
            torch.set_num_threads(1)  # per native thread under OpenMP
            bufs = _buffers(step * k, [own.shape[1], w2.shape[0], w3.shape[0]], x.dtype)
            with torch.inference_mode(out.is_inference()), torch.no_grad():  # thread-local modes
                for lo, hi in part:
                    _edge_rows(own, other, nbr, layers, out, lo, hi, bufs)

        with _single_threaded_ops():
            if threads <= 1:
                work(bounds)
            else:
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(work, [bounds[t::threads] for t in range(threads)]))
        return out.view(b, n, -1)


#: edges per slice of the CPU edge MLP: 1024 x 256 float32 = 1 MB per layer stays in L2
_EDGE_ROWS = 1024


def _buffers(rows: int, widths: list[int], dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.empty(rows, w, dtype=dtype) for w in widths]


def _edge_rows(own: torch.Tensor, other: torch.Tensor, nbr: torch.Tensor,
               layers: tuple[tuple[torch.Tensor, torch.Tensor], ...], out: torch.Tensor, lo: int, hi: int,
               bufs: list[torch.Tensor] | None = None) -> None:
    """out[lo:hi] = mean over k of relu(L3 relu(L2 relu(own_i + other_j))) for points lo..hi.

    own, other: (P, W) per-point halves of the first Linear; nbr: (P, k) flat neighbour rows.
    """
    k = nbr.shape[1]
    m = (hi - lo) * k
    h = torch.index_select(other, 0, nbr[lo:hi].reshape(-1), out=None if bufs is None else bufs[0][:m])
    h.view(hi - lo, k, -1).add_(own[lo:hi, None]).relu_()
    for i, (wt, bias) in enumerate(layers):
        h = torch.addmm(bias, h, wt, out=None if bufs is None else bufs[i + 1][:m]).relu_()
    torch.mean(h.view(hi - lo, k, -1), 1, out=out[lo:hi])


@contextmanager
def _single_threaded_ops() -> Iterator[None]:
    """torch intra-op parallelism off for the block (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(B, N, k, F) features of the neighbours ``idx`` (B, N, k) of each point of x (B, N, F)."""
    b, n, k = idx.shape
    flat = idx.reshape(b, n * k, 1).expand(-1, -1, x.shape[-1])
    return torch.gather(x, 1, flat).reshape(b, n, k, x.shape[-1])


def _knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, N, k) indices of each point's k nearest other points (Euclidean) within its jet."""
    d = torch.cdist(x, x)
    d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    return d.topk(k, dim=-1, largest=False).indices


class ParticleNet(nn.Module):
    """The FPND ParticleNet; ``forward`` takes (B, N, F) normalised particle features."""

    def __init__(self, num_particles: int = 30, num_features: int = 3, num_classes: int = 5, k: int = 16):
        super().__init__()
        self.k = k
        widths = [64, 128, 256]
        sizes = [num_features]
        self.edge_nets = nn.ModuleList()
        for w in widths:
            self.edge_nets.append(_EdgeNet(sizes[-1], w))
            sizes.append(sizes[-1] + w)
        self.fc1 = nn.Sequential(nn.Linear(sizes[-1], 256))
        self.fc2 = nn.Linear(256, num_classes)

    def activations(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 256) fc1 outputs before the ReLU (the FPND activations)."""
        for i, net in enumerate(self.edge_nets):
            idx = _knn(x[..., :2] if i == 0 else x, min(self.k, x.shape[1] - 1))
            x = torch.cat([net(x, idx), x], dim=-1)
        return self.fc1(x.mean(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_classes) class logits (dropout omitted: inference only)."""
        return self.fc2(torch.relu(self.activations(x)))

    def flops_per_jet(self, num_particles: int) -> int:
        """Floating-point operations (2 per multiply-add) of ``activations`` for one jet, as run
        fused: per block the two per-point halves of the first Linear, then per edge the 2nd and 3rd
        Linear (the per-edge matrix products are all but a few per cent)."""
        n, k = num_particles, min(self.k, num_particles - 1)
        total, f = 0, self.edge_nets[0].model[0].in_features // 2
        for net in self.edge_nets:
            w = net.model[0].out_features
            total += 2 * n * (2 * f * w) + 2 * n * k * (2 * w * w)
            f += w
        return total + 2 * f * self.fc1[0].out_features

    def load_jetnet_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state dict saved from jetnet's ``_ParticleNet`` (its duplicated EdgeConv keys dropped)."""
        self.load_state_dict({k: v for k, v in state.items() if not k.startswith("edge_convs.")})

    def fuse(self) -> ParticleNet:
        """Switch to inference with BatchNorm folded into the Linear layers (call after loading)."""
        self.eval()
        for net in self.edge_nets:
            net.fuse()
        return self
