"""Frechet ParticleNet distance (FPND; Kansal et al., arXiv:2106.11535) for JetNet30 g, q, t jets.

The trained ParticleNet weights and the mean and covariance of its activations on real JetNet
jets are the MP-GAN authors' files shipped inside the ``jetnet`` wheel on PyPI (MIT licence),
``jetnet/evaluation/fpnd_resources/jetnet/30_particles/``.  pcbench reads them from an installed
``jetnet`` distribution without importing it (``pip install --no-deps jetnet==0.2.5``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import PcbenchError
from .frechet import frechet_distance

__all__ = ["FPND_JET_TYPES", "FPND_MAXES", "FPND_SHIFTS", "fpnd", "fpnd_resources", "particlenet_activations"]

FPND_JET_TYPES = ("g", "q", "t")
#: JetNet's FPND input normalisation: features / maxes + shifts (etarel, phirel, ptrel).
FPND_MAXES = np.array([1.6211985349655151, 0.520724892616272, 0.8934717178344727])
FPND_SHIFTS = np.array([0.0, 0.0, -0.5])
NUM_SAMPLES = 50_000


def fpnd_resources() -> Path:
    """The folder with ``pnet_state_dict.pt`` and ``{g,q,t}_{mu,sigma}.txt``; a clear error if absent."""
    import importlib.metadata as md

    try:
        dist = md.distribution("jetnet")
    except md.PackageNotFoundError:
        raise PcbenchError("FPND needs the ParticleNet weights that ship in the jetnet wheel on PyPI: "
                           "pip install --no-deps jetnet==0.2.5") from None
    path = Path(str(dist.locate_file("jetnet/evaluation/fpnd_resources/jetnet/30_particles")))
    if not (path / "pnet_state_dict.pt").is_file():
        raise PcbenchError(f"the installed jetnet ({dist.version}) has no FPND resources at {path}")
    return path


@lru_cache(maxsize=2)
def _network(device: str = "cpu"):
    import torch

    from .particlenet import ParticleNet

    net = ParticleNet(30, 3)
    net.load_jetnet_state_dict(torch.load(fpnd_resources() / "pnet_state_dict.pt", map_location="cpu"))
    return net.to(device).fuse()


def particlenet_activations(particles: np.ndarray, batch_size: int = 1024, device: str = "cpu") -> np.ndarray:
    """(N, 256) FPND activations of (N, 30, 3) (etarel, phirel, ptrel) jets (normalised here).

    ``device``: a torch device ("cpu", "cuda", "cuda:1"); the batches run there.
    """
    import torch

    x = (particles.astype(np.float32) / FPND_MAXES.astype(np.float32)) + FPND_SHIFTS.astype(np.float32)
    net = _network(str(device))
    out = []
    with torch.inference_mode():
        for lo in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[lo:lo + batch_size])).to(device)
            out.append(net.activations(batch).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def fpnd(particles: np.ndarray, jet_type: str, num_samples: int = NUM_SAMPLES, device: str = "cpu") -> float:
    """FPND of generated jets against the stored real-JetNet statistics of ``jet_type``.

    Args:
        particles: (N, 30, 3) etarel, phirel, ptrel (zero-padded); the first ``num_samples``
            (50,000, as jetnet) are used.
        jet_type: g, q or t.
        device: torch device of the ParticleNet ("cpu" or "cuda"; equal values to float32 rounding).
    """
    if jet_type not in FPND_JET_TYPES:
        raise PcbenchError(f"FPND is defined for JetNet30 jet types {FPND_JET_TYPES}, not {jet_type!r}")
    if particles.ndim != 3 or particles.shape[1:] != (30, 3):
        raise PcbenchError(f"FPND needs (N, 30, 3) particles, got {particles.shape}")
    res = fpnd_resources()
    mu_real = np.loadtxt(res / f"{jet_type}_mu.txt")
    sigma_real = np.loadtxt(res / f"{jet_type}_sigma.txt")
    act = particlenet_activations(particles[:num_samples], device=device)
    return frechet_distance(mu_real, sigma_real, act.mean(axis=0), np.cov(act, rowvar=False))
