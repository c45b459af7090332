"""A stand-in for ``torch_cluster.knn_graph`` for the benchmarks' reference environments only.

torch_cluster has no wheel for torch 2.13 on PyPI and its source build takes over an hour on this
machine's two cores, so ``benchmarks/jet_metrics.py --fpnd`` puts this folder on the jetnet side's
``PYTHONPATH`` when the real package is missing (and says so in its output).  It builds the same
graph as torch_cluster's exact kNN (the ``k`` nearest other nodes of each node within its batch
entry, Euclidean distance, self excluded when ``loop=False``), as dense pairwise distances and
``torch.topk`` per batch entry: the rule pcbench's own ParticleNet uses
(``pcbench.metrics.particlenet._knn``).  Not part of pcbench; never imported by it.
"""

from __future__ import annotations

import torch

__all__ = ["knn_graph"]


def knn_graph(x: torch.Tensor, k: int, batch: torch.Tensor | None = None, loop: bool = False,
              flow: str = "source_to_target", cosine: bool = False, num_workers: int = 1,
              batch_size: int | None = None) -> torch.Tensor:
    """(2, E) edges (neighbour, node) for ``source_to_target``; (node, neighbour) otherwise."""
    if cosine:
        raise NotImplementedError("the stand-in knn_graph has no cosine distance")
    if batch is None:
        batch = torch.zeros(len(x), dtype=torch.long, device=x.device)
    _, counts = torch.unique_consecutive(batch, return_counts=True)
    rows, cols = [], []
    for n in sorted(set(counts.tolist())):  # entries of equal size together: one batched top-k each
        starts = torch.cumsum(counts, 0) - counts
        sel = starts[counts == n]
        idx = sel[:, None] + torch.arange(n, device=x.device)[None, :]            # (B, n) node ids
        pts = x[idx]                                                               # (B, n, d)
        d = torch.cdist(pts, pts)
        if not loop:
            d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
        kk = min(k, n - (0 if loop else 1))
        if kk <= 0:
            continue
        nb = d.topk(kk, dim=2, largest=False).indices                             # (B, n, kk)
        node = idx[:, :, None].expand(-1, -1, kk)
        neigh = torch.gather(idx, 1, nb.reshape(len(idx), -1)).reshape(nb.shape)
        rows.append(neigh.reshape(-1))
        cols.append(node.reshape(-1))
    row, col = (torch.cat(rows), torch.cat(cols)) if rows else (torch.zeros(0, dtype=torch.long),) * 2
    return torch.stack([row, col] if flow == "source_to_target" else [col, row], 0)
