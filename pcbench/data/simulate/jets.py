"""Offline jets in the JetNet layout from Pythia 8 and FastJet (``pcbench simulate jetnet30``).

Jets are made as JetNet's were as far as Pythia 8 alone can (``docs/simulation-jets.md``):
13 TeV pp; a hard process that gives the wanted jet class; parton shower, multi-parton
interactions and hadronisation; anti-kT R = 0.8 on all visible final-state particles (hadrons
with c*tau > 10 mm are stable, as at generator level at the LHC); each jet matched within
Delta R < 0.4 to a hard-process object of the class (gluon, light quark u/d/s, top, W, Z) and kept
if |eta| < 2.5.  Constituents are sorted by pT and the leading ``num_particles`` are kept.

JetNet: Kansal et al., "Particle Cloud Generation with Message Passing Generative Adversarial
Networks", NeurIPS 2021, arXiv:2106.11535.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..._arrays import wrap_phi
from ..containers import JET_TYPES, JetSet
from .chunks import output_run, run_chunks

__all__ = ["JetSimConfig", "PROCESSES", "simulate_jets", "simulate_jet_chunk", "jet_features_from_constituents"]

#: Pythia 8 processes per jet class, and the hard-process objects a jet must match:
#: (settings, |PDG ids| of the matched objects, status of those objects in the process record).
PROCESSES: dict[str, tuple[tuple[str, ...], tuple[int, ...], int]] = {
    "g": (("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on", "HardQCD:qg2qg = on"), (21,), 23),
    "q": (("HardQCD:qg2qg = on", "HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on",
           "HardQCD:gg2qqbar = on"), (1, 2, 3), 23),
    "t": (("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"), (6,), 22),
    "w": (("WeakDoubleBoson:ffbar2WW = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"), (24,), 22),
    "z": (("WeakDoubleBoson:ffbar2gmZgmZ = on", "WeakZ0:gmZmode = 2", "23:onMode = off",
           "23:onIfAny = 1 2 3 4 5"), (23,), 22),
}


@dataclass(frozen=True)
class JetSimConfig:
    """Settings of the jet simulation (all of them recorded in the output file).

    Attributes:
        jet_type: g, q, t, w or z.
        num_particles: constituents kept per jet (30 or 150 in JetNet).
        sqrt_s: centre-of-mass energy [GeV].
        pthat_min, pthat_max: window of the hard process's pT [GeV]; jets come out near 1 TeV.
        jet_radius: anti-kT radius R.
        max_abs_eta: jets with |eta| above this are dropped.
        match_radius: Delta R within which a jet must lie of its hard-process object.
        tau0_max: hadrons with c*tau above this [mm] are stable.
        extra: further Pythia settings (strings), e.g. ``("PartonLevel:MPI = off",)``.
    """

    jet_type: str
    num_particles: int = 30
    sqrt_s: float = 13000.0
    pthat_min: float = 950.0
    pthat_max: float = 1050.0
    jet_radius: float = 0.8
    max_abs_eta: float = 2.5
    match_radius: float = 0.4
    tau0_max: float = 10.0
    extra: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.jet_type not in JET_TYPES:
            raise ValueError(f"jet type must be one of {JET_TYPES}, got {self.jet_type!r}")

    def physics_settings(self) -> list[str]:
        """The Pythia 8 configuration strings that define the physics (recorded in the file)."""
        return [
            f"Beams:eCM = {self.sqrt_s}",
            *PROCESSES[self.jet_type][0],
            f"PhaseSpace:pTHatMin = {self.pthat_min}",
            f"PhaseSpace:pTHatMax = {self.pthat_max}",
            "ParticleDecays:limitTau0 = on",
            f"ParticleDecays:tau0Max = {self.tau0_max}",
            *self.extra,
        ]

    def pythia_settings(self, seed: int) -> list[str]:
        """All configuration strings for a chunk with ``seed`` (quiet output)."""
        return [*self.physics_settings(), "Random:setSeed = on", f"Random:seed = {seed}", "Print:quiet = on"]


def jet_features_from_constituents(p4: np.ndarray, num_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """JetNet features of one jet from its constituents' four-momenta.

    Args:
        p4: (k, 4) constituents' (px, py, pz, E) [GeV].
        num_particles: P, slots of the output.

    Returns:
        (P, 4) float32 (etarel, phirel, ptrel, mask), sorted by decreasing pT, zero-padded; and
        (4,) float32 jet (pt [GeV], eta, mass [GeV], k).
    """
    px, py, pz, e = p4.sum(axis=0)
    jet_pt = np.hypot(px, py)
    jet_eta = np.arcsinh(pz / jet_pt)
    jet_phi = np.arctan2(py, px)
    jet_mass = np.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0))
    pt = np.hypot(p4[:, 0], p4[:, 1])
    order = np.argsort(-pt, kind="stable")[:num_particles]
    pt = pt[order]
    eta = np.arcsinh(p4[order, 2] / pt)
    phi = np.arctan2(p4[order, 1], p4[order, 0])
    out = np.zeros((num_particles, 4), dtype=np.float64)
    k = len(order)
    out[:k, 0] = eta - jet_eta
    out[:k, 1] = wrap_phi(phi - jet_phi)
    out[:k, 2] = pt / jet_pt
    out[:k, 3] = 1.0
    return out.astype(np.float32), np.array([jet_pt, jet_eta, jet_mass, len(p4)], dtype=np.float32)


def simulate_jet_chunk(config: JetSimConfig, seed: int, n: int) -> dict[str, np.ndarray]:
    """Generate events until ``n`` matched jets exist; return JetNet arrays of ``n`` rows."""
    import pythia8mc

    from ..._fastjet import fastjet as _fastjet

    fastjet = _fastjet()
    pythia = pythia8mc.Pythia("", False)
    for s in config.pythia_settings(seed):
        if not pythia.readString(s):
            raise RuntimeError(f"Pythia refused the setting {s!r}")
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed")
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, config.jet_radius)
    _, ids, status = PROCESSES[config.jet_type]
    pf = np.zeros((n, config.num_particles, 4), dtype=np.float32)
    jf = np.zeros((n, 4), dtype=np.float32)
    got = 0
    while got < n:
        if not pythia.next():
            continue
        targets = [(q.eta(), q.phi()) for q in pythia.process
                   if q.idAbs() in ids and q.statusAbs() == status]
        if not targets:
            continue
        parts = [fastjet.PseudoJet(q.px(), q.py(), q.pz(), q.e())
                 for q in pythia.event if q.isFinal() and q.isVisible()]
        cs = fastjet.ClusterSequence(parts, jet_def)
        jets = fastjet.sorted_by_pt(cs.inclusive_jets(0.25 * config.pthat_min))
        taken: set[int] = set()
        for t_eta, t_phi in targets:
            if got >= n or not jets:
                break
            dr = [np.hypot(j.eta() - t_eta, wrap_phi(np.array(j.phi_std() - t_phi))) for j in jets]
            best = int(np.argmin(dr))
            jet = jets[best]
            if best in taken or dr[best] >= config.match_radius or abs(jet.eta()) >= config.max_abs_eta:
                continue
            taken.add(best)
            p4 = np.array([(c.px(), c.py(), c.pz(), c.E()) for c in jet.constituents()], dtype=np.float64)
            pf[got], jf[got] = jet_features_from_constituents(p4, config.num_particles)
            got += 1
    return {"particle_features": pf, "jet_features": jf}


def simulate_jets(n: int, config: JetSimConfig, out: str | Path, seed: int = 1, workers: int = 1,
                  resume: bool = False, chunk_size: int = 250, progress: bool = True) -> Path:
    """Simulate ``n`` jets and write them (JetNet layout, pcbench schema) to ``out``.

    The data arrays depend only on (n, config, seed, chunk_size), not on ``workers``.
    Interrupted runs continue with ``resume=True`` (finished chunks are kept in ``out.chunks/``).
    The run holds the lock of ``out``: a concurrent run into it is refused (``RunLockedError``).
    """
    out = Path(out)
    settings = {"kind": "jets", "n": n, **asdict(config)}
    with output_run(out) as work:
        arrays = run_chunks(functools.partial(simulate_jet_chunk, config), n, seed, work, settings,
                            chunk_size=chunk_size, workers=workers, resume=resume,
                            description=f"Pythia 8 {config.jet_type} jets", progress=progress)
        _write_jets(out, arrays, config, seed, chunk_size)
        shutil.rmtree(work, ignore_errors=True)
    return out


def _write_jets(out: Path, arrays: dict[str, np.ndarray], config: JetSimConfig, seed: int, chunk_size: int) -> None:
    """Write the simulated jets with their provenance (generator versions, settings, seed)."""
    import pythia8mc

    from ..._fastjet import fastjet as _fastjet
    from .. import formats

    fastjet = _fastjet()
    jets = JetSet.from_jetnet(arrays["particle_features"], arrays["jet_features"], config.jet_type)
    pythia_version = getattr(pythia8mc, "__version__", "8.317")
    attrs = {
        "source": "simulated by pcbench with Pythia 8 + FastJet (not the JetNet data set)",
        "generator": f"Pythia {pythia_version} + FastJet {fastjet.__version__}",
        "seed": seed,
        "chunk_size": chunk_size,
        "settings": asdict(config),
        "pythia_settings": config.physics_settings(),
        "selection": f"anti-kT R={config.jet_radius}, matched within dR<{config.match_radius} to "
                     f"{config.jet_type}, |eta|<{config.max_abs_eta}",
    }
    formats.write(out, jets, attrs, compression=None)
