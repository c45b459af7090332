"""The reference implementations the agreement tests run beside pcbench.

- jetnet 0.2.5's own ``gen_metrics`` functions (``w1m``, ``w1p``, ``fpd``, ``kpd`` and their
  helpers), executed from the installed, pinned wheel (the README's test command installs it with
  ``--no-deps``).  Its module cannot be imported here (it imports coffea and awkward at module
  level for its jet-feature helper), so the functions' source is taken from the installed file and
  run in a namespace holding what they use: numpy, scipy, numba's ``njit``, the module's ``rng``
  (a seeded generator, as the benchmark does) and, for ``w1m``, a jet mass written here from the
  definition (massless constituents in relative coordinates).
- The CaloChallenge recipe's separation power (``evaluate_plotting_helper._separation_power``):
  written here from its definition, on ``plt.hist(density=True)``-style densities times the bin
  widths.  (Its FPD and KPD are jetnet's ``fpd`` and ``kpd`` above with ``min_samples=10000`` and
  ``batch_size=10000``; its PRDC is the ``prdc`` package, a test dependency.)
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

JETNET_VERSION = "0.2.5"
_JETNET_NAMES = ("_check_get_ndarray", "_calculate_frechet_distance", "_normalise_features", "_linear", "fpd",
                 "_poly_kernel_pairwise", "_mmd_quadratic_unbiased", "_mmd_poly_quadratic_unbiased", "_kpd_batches",
                 "kpd", "w1m", "w1p")


def _jetnet_source() -> Path:
    version = importlib.metadata.version("jetnet")
    assert version == JETNET_VERSION, f"the agreement tests pin jetnet {JETNET_VERSION}, found {version}"
    spec = importlib.util.find_spec("jetnet")  # locates the package without importing it
    return Path(spec.submodule_search_locations[0]) / "evaluation" / "gen_metrics.py"


def _relative_jet_mass(jets: np.ndarray) -> np.ndarray:
    """m / pT_jet of jets of massless particles (eta_rel, phi_rel, pT_rel): |sum of four-momenta|."""
    eta, phi, pt = (jets[..., i].astype(np.float64) for i in range(3))
    e, px, py, pz = pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    m2 = e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2
    return np.sqrt(np.maximum(m2, 0.0))


def jetnet_functions(seed: int = 42) -> SimpleNamespace:
    """jetnet 0.2.5's gen_metrics functions; their module-level ``rng`` is ``default_rng(seed)``."""
    import torch
    from numba import njit, prange, set_num_threads
    from scipy import linalg
    from scipy.optimize import curve_fit
    from scipy.stats import iqr, wasserstein_distance

    tree = ast.parse(_jetnet_source().read_text(encoding="utf-8"))
    chosen = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in _JETNET_NAMES]
    missing = set(_JETNET_NAMES) - {n.name for n in chosen}
    assert not missing, f"jetnet's gen_metrics no longer defines {sorted(missing)}"
    namespace = {"np": np, "linalg": linalg, "curve_fit": curve_fit, "iqr": iqr,
                 "wasserstein_distance": wasserstein_distance, "warnings": warnings, "Tensor": torch.Tensor,
                 "logger": logging.getLogger("jetnet"), "njit": njit, "prange": prange,
                 "set_num_threads": set_num_threads, "ArrayLike": object,
                 "rng": np.random.default_rng(seed),
                 "utils": SimpleNamespace(jet_features=lambda jets: {"mass": _relative_jet_mass(jets)}),
                 "__name__": "jetnet_gen_metrics_pinned"}
    code = compile(ast.Module(body=chosen, type_ignores=[]), str(_jetnet_source()), "exec")
    exec(code, namespace)  # noqa: S102 - the pinned reference's own code
    return SimpleNamespace(**{name: namespace[name] for name in _JETNET_NAMES}, namespace=namespace)


def challenge_separation_power(real: np.ndarray, gen: np.ndarray, bins: np.ndarray) -> float:
    """The CaloChallenge's separation power of two samples on ``bins`` (its definition)."""
    widths = np.diff(bins)
    p = np.histogram(real, bins, density=True)[0] * widths
    q = np.histogram(gen, bins, density=True)[0] * widths
    return float(0.5 * np.sum((p - q) ** 2 / (p + q + 1e-16)))
