"""Jet observables computed from particle clouds in JetNet's relative coordinates.

All functions take ``particles`` (N, P, 3) = (etarel, phirel, ptrel) and ``mask`` (N, P) bool and
treat particles as massless, as the jetnet library does; masses and momenta are therefore
relative to the jet pT (dimensionless).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from .._arrays import wrap_phi

__all__ = ["wrap_phi", "jet_kinematics", "efps", "EFP_W1_INDICES", "nsubjettiness", "tau_ratios"]


def _four_momenta(particles: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, P, 4) (E, px, py, pz) of massless particles from (eta, phi, pt); masked ones zero."""
    eta, phi, pt = (particles[..., i].astype(np.float64) for i in range(3))
    pt = np.where(mask, pt, 0.0)
    return np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)


def jet_kinematics(particles: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Relative jet mass m/pT_jet, relative pT, axis and multiplicity of each jet.

    Returns:
        dict of (N,) arrays: ``mass`` (the jetnet library's W1M observable), ``pt`` (|sum of the
        particles' transverse momenta| / pT_jet), ``eta`` and ``phi`` of the summed momentum,
        ``multiplicity`` (number of particles).
    """
    e, px, py, pz = np.moveaxis(_four_momenta(particles, mask).sum(axis=1), -1, 0)
    pt = np.hypot(px, py)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1)), 0.0)
    mass = np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))
    return {"mass": mass, "pt": pt, "eta": eta, "phi": np.arctan2(py, px),
            "multiplicity": mask.sum(axis=1).astype(np.float64)}


@lru_cache(maxsize=4)
def _efp_graphs(spec: tuple) -> tuple[tuple[int, tuple[tuple[int, int], ...]], ...]:
    """(number of vertices, edges) of every EFP of energyflow's ``EFPSet(*spec)``, in its order."""
    import energyflow as ef

    efpset = ef.EFPSet(*spec, measure="hadr", beta=1, normed=None, coords="ptyphim")
    return tuple((int(s[0]), tuple(tuple(int(v) for v in e) for e in g)) for s, g in zip(efpset.specs, efpset.graphs()))


@lru_cache(maxsize=64)
def _elimination_plan(n_vertices: int, edges: tuple[tuple[int, int], ...]) -> tuple[tuple, tuple[int, ...]]:
    """Einsum steps that contract one EFP graph by eliminating vertices in minimum-degree order.

    Factors are z_v (one per vertex) and theta^k_uv (one per distinct edge, k its multiplicity).
    Graphs with at most 4 edges have treewidth <= 2, so every intermediate factor has at most two
    vertex indices.  A step is (pairwise einsum strings, indices of the factors it consumes); its
    result is appended to the factors.  The last step has no strings: the scalar factors left
    are multiplied.
    """
    counts: dict[tuple[int, int], int] = {}
    for e in edges:
        counts[e] = counts.get(e, 0) + 1
    factors: list[tuple[int, ...]] = [(v,) for v in range(n_vertices)] + list(counts)
    alive = list(range(len(factors)))
    remaining = set(range(n_vertices))
    letters = "ijklmnopqrstuvwxyz"
    steps = []
    while remaining:
        def degree(v: int) -> int:
            return len({u for f in alive if v in factors[f] for u in factors[f]} - {v})

        v = min(remaining, key=lambda u: (degree(u), u))
        used = tuple(sorted((f for f in alive if v in factors[f]), key=lambda f: len(factors[f])))
        out_vars = tuple(sorted({u for f in used for u in factors[f]} - {v}))
        if len(out_vars) > 2:
            raise ValueError(f"EFP graph {edges} needs a factor of {len(out_vars)} indices")
        # fold the factors pairwise, smallest first, summing v out only in the last product, so
        # that each product is elementwise or one batched matrix product (never a 3-index tensor)
        acc = factors[used[0]]
        exprs = []
        for k, f in enumerate(used[1:], start=1):
            last = k == len(used) - 1
            keep = tuple(sorted((set(acc) | set(factors[f])) - ({v} if last else set())))
            exprs.append(f"b{''.join(letters[u] for u in acc)},b{''.join(letters[u] for u in factors[f])}"
                         f"->b{''.join(letters[u] for u in keep)}")
            acc = keep
        if len(used) == 1:  # a lone factor: just sum v out
            exprs.append(f"b{''.join(letters[u] for u in acc)}->b{''.join(letters[u] for u in out_vars)}")
        steps.append((tuple(exprs), used))
        alive = [f for f in alive if f not in used] + [len(factors)]
        factors.append(out_vars)
        remaining.discard(v)
    steps.append(((), tuple(alive)))
    return tuple(steps), tuple(counts.values())


def efps(particles: np.ndarray, mask: np.ndarray, spec: tuple = (("d<=", 4),), chunk: int | None = None,
         device: str = "cpu") -> np.ndarray:
    """Energy flow polynomials (Komiske, Metodiev, Thaler, arXiv:1712.07124) of every jet.

    Same definition and order as ``energyflow.EFPSet(*spec, measure="hadr", beta=1,
    normed=None, coords="ptyphim")`` on (ptrel, etarel, phirel), as the jetnet library uses:
    EFP_G = sum over particle tuples of prod_v z_v prod_(k,l) in G theta_kl with z = ptrel and
    theta = sqrt(deta^2 + dphi^2).  Computed by vertex elimination as batched matrix products
    over ``chunk`` jets at a time (memory O(chunk * P^2)) instead of energyflow's loop over jets.

    Args:
        particles: (N, P, 3) etarel, phirel, ptrel.
        mask: (N, P) bool.
        spec: energyflow selection, default all 36 EFPs of degree <= 4 (FPD/KPD features).
        chunk: jets per batch; default 2048 * (30 / P)^2, so that the (chunk, P, P) tensors take
            the same memory (about 15 MB each) whatever P.
        device: torch device of the products (float64 there too).

    Returns:
        (N, number of EFPs) float64.
    """
    import torch

    graphs = _efp_graphs(tuple(spec))
    plans = [_elimination_plan(n, edges) for n, edges in graphs]
    chunk = chunk or max(16, int(2048 * (30 / max(particles.shape[1], 1)) ** 2))
    out = np.empty((len(particles), len(graphs)), dtype=np.float64)
    for lo in range(0, len(particles), chunk):
        p = torch.from_numpy(np.ascontiguousarray(particles[lo:lo + chunk], dtype=np.float64)).to(device)
        z = torch.where(torch.from_numpy(np.ascontiguousarray(mask[lo:lo + chunk])).to(device), p[..., 2], 0.0)
        deta = p[:, :, None, 0] - p[:, None, :, 0]
        dphi = p[:, :, None, 1] - p[:, None, :, 1]
        powers = {1: torch.sqrt(deta * deta + dphi * dphi)}
        for g, ((steps, mults), (n, _)) in enumerate(zip(plans, graphs)):
            for m in mults:
                if m not in powers:
                    powers[m] = powers[1] ** m
            factors = [z] * n + [powers[m] for m in mults]
            for exprs, used in steps[:-1]:
                acc = factors[used[0]]
                if len(used) == 1:
                    acc = torch.einsum(exprs[0], acc)
                for expr, f in zip(exprs, used[1:]):
                    acc = torch.einsum(expr, acc, factors[f])
                factors.append(acc)
            value = factors[steps[-1][1][0]]
            for f in steps[-1][1][1:]:
                value = value * factors[f]
            out[lo:lo + chunk, g] = value.cpu().numpy()
    return out


def _efp_w1_indices() -> list[int]:
    """Positions, within the d<=4 set, of the 5 EFPs jetnet's W1EFP uses (n==4, d==4, prime)."""
    full = _efp_graphs((("d<=", 4),))
    sub = _efp_graphs((("n==", 4), ("d==", 4), ("p==", 1)))
    return [full.index(g) for g in sub]


EFP_W1_INDICES = _efp_w1_indices


def nsubjettiness(particles: np.ndarray, mask: np.ndarray, n_axes: tuple[int, ...] = (1, 2, 3),
                  beta: float = 1.0, r0: float = 0.8) -> np.ndarray:
    """N-subjettiness tau_N (Thaler, Van Tilburg, arXiv:1011.2268) with exclusive-kT axes.

    As FastJet contrib's ``Nsubjettiness(N, KT_Axes(), NormalizedMeasure(beta, R0))``:
    axes from exclusive kT clustering (E-scheme) of the jet's particles into N subjets;
    tau_N = sum_i pT_i min_k dR_ik^beta / sum_i pT_i R0^beta with dR in (rapidity, phi)
    (particles are massless, so rapidity = eta).  Jets with fewer particles than N get 0.

    Returns:
        (N_jets, len(n_axes)) float64.
    """
    import awkward as ak

    from .._fastjet import fastjet as _fastjet

    fastjet = _fastjet()

    p4 = _four_momenta(particles, mask)
    pt = np.where(mask, particles[..., 2], 0.0).astype(np.float64)
    eta, phi = particles[..., 0].astype(np.float64), particles[..., 1].astype(np.float64)
    counts = mask.sum(axis=1)
    out = np.zeros((len(particles), len(n_axes)), dtype=np.float64)
    jet_def = fastjet.JetDefinition(fastjet.kt_algorithm, fastjet.JetDefinition.max_allowable_R)
    norm = pt.sum(axis=1) * r0**beta
    for col, n in enumerate(n_axes):
        sel = np.flatnonzero(counts >= n)
        if len(sel) == 0:
            continue
        m = mask[sel]
        flat = {k: p4[sel][..., i][m] for i, k in enumerate(("E", "px", "py", "pz"))}
        events = ak.unflatten(ak.zip(flat), counts[sel])
        with warnings.catch_warnings():  # fastjet warns that exclusive jets need care (they do not for kT)
            warnings.simplefilter("ignore")
            axes = fastjet.ClusterSequence(events, jet_def).exclusive_jets(n_jets=n)
        ax_px, ax_py, ax_pz, ax_e = (np.asarray(ak.to_numpy(axes[k])).reshape(len(sel), n) for k in ("px", "py", "pz", "E"))
        ax_rap = 0.5 * np.log((ax_e + ax_pz) / (ax_e - ax_pz))
        ax_phi = np.arctan2(ax_py, ax_px)
        d_rap = eta[sel][:, :, None] - ax_rap[:, None, :]
        d_phi = wrap_phi(phi[sel][:, :, None] - ax_phi[:, None, :])
        dr = np.sqrt(d_rap**2 + d_phi**2) ** beta
        out[sel, col] = (pt[sel] * dr.min(axis=2)).sum(axis=1) / norm[sel]
    return out


def tau_ratios(particles: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """tau21 = tau2/tau1 and tau32 = tau3/tau2 per jet (0 where the denominator is 0)."""
    tau = nsubjettiness(particles, mask, (1, 2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        t21 = np.where(tau[:, 0] > 0, tau[:, 1] / tau[:, 0], 0.0)
        t32 = np.where(tau[:, 1] > 0, tau[:, 2] / tau[:, 1], 0.0)
    return {"tau21": t21, "tau32": t32}
