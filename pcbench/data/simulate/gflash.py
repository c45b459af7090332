"""A parameterised electromagnetic shower model in the GFlash tradition (stands in for Geant4).

Grindhammer, Rudowicz, Peters, NIM A290 (1990) 469; Grindhammer and Peters, hep-ex/0001020.
Per shower:

* longitudinal: the energy density in depth t [X0] behind the shower start is a Gamma
  distribution ``f(t) = (beta t)^(alpha-1) beta exp(-beta t) / Gamma(alpha)``; ``ln T`` and
  ``ln alpha`` (T = (alpha - 1) / beta, the depth of the maximum) are drawn from a correlated
  normal whose means, widths and correlation depend on ``y = E / E_c`` (homogeneous-media
  parameterisation); a photon starts its shower at a depth drawn from ``Exp(9/7 X0)``;
* radial: ``f(r) = p fC(r) + (1 - p) fT(r)`` with ``fX(r) = 2 r RX^2 / (r^2 + RX^2)^2``: a core and a
  tail whose radii RC, RT [Moliere radii] and weight p depend on tau = t / T and on E;
* energy spots: the deposit is cut into spots of ``spot_energy`` [MeV] (Poisson number), each
  at a depth and radius drawn from the profiles of its shower, with a Gamma(kappa)-distributed
  share of energy; their number sets the sampling fluctuations ``sigma/E = sqrt(spot_energy
  (1 + 1/kappa) / E)``, i.e. ``stochastic / sqrt(E [GeV])``.

Everything here is labelled as parameterised wherever it is written: it gives physically
shaped showers offline, never a replacement for Geant4 data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import gammainc

__all__ = ["Material", "TUNGSTEN", "ShowerModel", "ShowerParams", "draw_showers", "radial_fraction", "sample_radius",
           "sample_spots"]


@dataclass(frozen=True)
class Material:
    """Absorber constants: radiation length and Moliere radius [mm], critical energy [MeV], Z."""

    name: str
    x0: float
    moliere_radius: float
    critical_energy: float
    z: float


TUNGSTEN = Material("tungsten", x0=3.504, moliere_radius=9.3, critical_energy=8.0, z=74.0)


@dataclass(frozen=True)
class ShowerModel:
    """The model's settings (all recorded in every file it writes).

    Attributes:
        material: absorber constants.
        particle: ``photon`` (shower starts after a conversion depth) or ``electron``.
        stochastic: sampling term of the resolution, sigma/E = stochastic / sqrt(E [GeV]).
        spot_shape: kappa of the Gamma distribution of the spot energies (larger: more equal).
        radial_scale: multiplies the core and tail radii (1 = the GFlash parameterisation).
    """

    material: Material = TUNGSTEN
    particle: str = "photon"
    stochastic: float = 0.166
    spot_shape: float = 2.0
    radial_scale: float = 1.0

    @property
    def spot_energy(self) -> float:
        """Mean deposited energy per spot [MeV] that gives the stochastic term."""
        return self.stochastic ** 2 * 1000.0 / (1.0 + 1.0 / self.spot_shape)

    def as_attrs(self) -> dict[str, Any]:
        d = asdict(self)
        d["spot_energy_mev"] = self.spot_energy
        return d


@dataclass(frozen=True)
class ShowerParams:
    """Per-shower parameters of N showers (arrays of shape (N,))."""

    energy: np.ndarray   # incident energy [MeV]
    start: np.ndarray    # shower start depth [X0]
    tmax: np.ndarray     # T, depth of the maximum behind the start [X0]
    alpha: np.ndarray
    beta: np.ndarray     # [1/X0]

    def longitudinal_cdf(self, t: np.ndarray) -> np.ndarray:
        """Fraction of each shower's energy deposited before depth ``t`` [X0] (broadcast (N, k))."""
        s = np.clip(t - self.start[:, None], 0.0, None)
        return gammainc(self.alpha[:, None], self.beta[:, None] * s)


def draw_showers(energy: np.ndarray, model: ShowerModel, rng: np.random.Generator) -> ShowerParams:
    """Draw the fluctuating longitudinal parameters of showers of ``energy`` (N,) [MeV]."""
    m = model.material
    ln_y = np.log(energy / m.critical_energy)
    mean_ln_t = np.log(np.clip(ln_y - 0.812, 0.1, None))
    mean_ln_a = np.log(0.81 + (0.458 + 2.26 / m.z) * ln_y)
    sig_t = 1.0 / (-1.4 + 1.26 * ln_y)
    sig_a = 1.0 / (-0.58 + 0.86 * ln_y)
    rho = 0.705 - 0.023 * ln_y
    z1, z2 = rng.standard_normal((2, len(energy)))
    ln_t = mean_ln_t + sig_t * z1
    ln_a = mean_ln_a + sig_a * (rho * z1 + np.sqrt(1 - rho ** 2) * z2)
    tmax, alpha = np.exp(ln_t), np.maximum(np.exp(ln_a), 1.05)
    start = rng.exponential(9.0 / 7.0, len(energy)) if model.particle == "photon" else np.zeros(len(energy))
    return ShowerParams(energy, start, tmax, alpha, (alpha - 1.0) / tmax)


def _radial_parameters(tau: np.ndarray, energy_gev: np.ndarray, model: ShowerModel) -> tuple[np.ndarray, ...]:
    """Core radius, tail radius [Moliere radii] and core weight p at tau = t / T."""
    z, ln_e = model.material.z, np.log(energy_gev)
    rc = (0.0251 + 0.00319 * ln_e) + (0.1162 - 0.000381 * z) * tau
    k1, k2, k3, k4 = 0.659 - 0.00309 * z, 0.645, -2.59, 0.3585 + 0.0421 * ln_e
    rt = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    p1, p2, p3 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z, 1.313 - 0.0686 * ln_e
    x = (p2 - tau) / p3
    p = np.clip(p1 * np.exp(x - np.exp(x)), 0.0, 1.0)
    return rc * model.radial_scale, rt * model.radial_scale, p


def radial_fraction(r_mm: np.ndarray, tau: np.ndarray, energy_gev: np.ndarray, model: ShowerModel) -> np.ndarray:
    """Fraction of the energy at tau within radius ``r_mm`` of the axis (broadcasting)."""
    rc, rt, p = _radial_parameters(tau, energy_gev, model)
    r2 = (np.asarray(r_mm) / model.material.moliere_radius) ** 2
    return p * r2 / (r2 + rc ** 2) + (1 - p) * r2 / (r2 + rt ** 2)


def sample_radius(tau: np.ndarray, energy_gev: np.ndarray, model: ShowerModel, rng: np.random.Generator) -> np.ndarray:
    """Radii [mm] of spots at tau (inverse CDF of the chosen component: r = R sqrt(u / (1 - u)))."""
    rc, rt, p = _radial_parameters(tau, energy_gev, model)
    radius = np.where(rng.random(len(tau)) < p, rc, rt)
    u = rng.uniform(0.0, 0.999, len(tau))
    return radius * np.sqrt(u / (1.0 - u)) * model.material.moliere_radius


def sample_spots(params: ShowerParams, model: ShowerModel, rng: np.random.Generator,
                 max_depth: float) -> dict[str, np.ndarray]:
    """Energy spots of all showers at once (no loop over showers).

    Returns ``shower`` (M,) index, ``depth`` [X0 from the front face], ``r`` [mm], ``phi``
    [rad] and ``energy`` (deposited) [MeV] of every spot deposited before ``max_depth`` [X0].
    """
    eps = model.spot_energy
    counts = rng.poisson(params.energy / eps)
    shower = np.repeat(np.arange(len(counts)), counts)
    a, b = params.alpha[shower], params.beta[shower]
    behind = rng.gamma(a, 1.0 / b)
    depth = params.start[shower] + behind
    keep = depth < max_depth
    shower, behind, depth = shower[keep], behind[keep], depth[keep]
    tau = behind / params.tmax[shower]
    r = sample_radius(tau, params.energy[shower] / 1000.0, model, rng)
    phi = rng.uniform(-np.pi, np.pi, len(shower))
    energy = eps * rng.gamma(model.spot_shape, 1.0 / model.spot_shape, len(shower))
    return {"shower": shower, "depth": depth, "r": r, "phi": phi, "energy": energy}
