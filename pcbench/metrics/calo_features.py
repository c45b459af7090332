"""The CaloChallenge's high-level shower features, as its ``HighLevelFeatures`` defines them.

CaloChallenge 2022, arXiv:2410.21611; code ``CaloChallenge/homepage/code`` (``HighLevelFeatures.py``,
``evaluate.py``).  Per shower: E_tot; per layer with voxels the energy, the sparsity (fraction of
voxels at zero after the threshold), the energy-weighted centre and width in r; per layer with
alpha binning also in eta (x = r cos alpha) and phi (y = r sin alpha), all at voxel centres, in
mm.  Widths are sqrt(max(<x^2> - <x>^2, 0)); an empty layer has centre 0 and width 0 (the
challenge's 1e-16 in the denominators).
"""

from __future__ import annotations

import numpy as np

from ..geometry.cylindrical import READOUT_THRESHOLDS_MEV, CylindricalGeometry

__all__ = ["THRESHOLDS_MEV", "threshold_voxels", "high_level_features", "alpha_layers", "classifier_inputs_high",
           "classifier_inputs_low"]

#: the challenge's readout threshold per voxel [MeV] (``evaluate.py``: ds1 1 MeV; ds2/3 0.5 keV / 0.033)
THRESHOLDS_MEV = READOUT_THRESHOLDS_MEV


def threshold_voxels(voxels: np.ndarray, threshold: float) -> np.ndarray:
    """Voxels below ``threshold`` [MeV] set to 0 (a new float32 array; compared in the input's
    dtype, without a float64 temporary of the whole array)."""
    below = voxels < threshold
    out = np.array(voxels, dtype=np.float32)
    out[below] = 0.0
    return out


def high_level_features(voxels: np.ndarray, incident_energy: np.ndarray,
                        geometry: CylindricalGeometry) -> dict[str, np.ndarray]:
    """All high-level features of showers (N, V) [MeV] with incident energies (N,) [MeV].

    Returns (float64): ``E_tot`` (N,), ``E_ratio`` = E_tot / E_inc (N,), and per layer with voxels
    (columns in ``geometry.relevant_layers`` order) ``E_layer``, ``sparsity``, ``EC_r``,
    ``width_r`` (N, L); per layer with alpha binning (``alpha_layers`` order) ``EC_eta``,
    ``EC_phi``, ``width_eta``, ``width_phi`` (N, La).  Apply the threshold first.
    """
    v = np.asarray(voxels, dtype=np.float64)
    t = geometry.voxel_table
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("E_layer", "sparsity", "EC_r", "width_r", "EC_eta",
                                                         "EC_phi", "width_eta", "width_phi")}
    for k, lay in enumerate(geometry.layers):
        if not lay.n_voxels:
            continue
        sl = slice(geometry.layer_offsets[k], geometry.layer_offsets[k + 1])
        e = v[:, sl]
        total = e.sum(axis=1)
        out["E_layer"].append(total)
        out["sparsity"].append(1.0 - (e > 0).mean(axis=1))
        denom = total + 1e-16
        coords = {"r": t["r"][sl]}
        if lay.n_alpha > 1:
            coords.update(eta=t["x"][sl], phi=t["y"][sl])
        for name, c in coords.items():
            centre = e @ c / denom
            width = np.sqrt(np.clip(e @ (c * c) / denom - centre ** 2, 0.0, None))
            out[f"EC_{name}"].append(centre)
            out[f"width_{name}"].append(width)
    feats = {k: (np.column_stack(vals) if vals else np.zeros((len(v), 0))) for k, vals in out.items()}
    feats["E_tot"] = v.sum(axis=1)
    feats["E_ratio"] = feats["E_tot"] / np.asarray(incident_energy, dtype=np.float64)
    return feats


def alpha_layers(geometry: CylindricalGeometry) -> tuple[int, ...]:
    """Ids of the layers with alpha binning (the columns of the eta and phi features)."""
    return tuple(lay.id for lay in geometry.layers if lay.n_voxels and lay.n_alpha > 1)


def classifier_inputs_high(feats: dict[str, np.ndarray], incident_energy: np.ndarray) -> np.ndarray:
    """(N, F) the challenge's high-level classifier (and FPD/KPD) inputs, in its order:
    log10 E_inc, log10(E_layer + 1e-8), EC_eta/100, EC_phi/100, width_eta/100, width_phi/100,
    log10(E_tot + 1e-8), sparsity, EC_r/100, width_r/100."""
    return np.column_stack([np.log10(incident_energy), np.log10(feats["E_layer"] + 1e-8),
                            feats["EC_eta"] / 1e2, feats["EC_phi"] / 1e2, feats["width_eta"] / 1e2,
                            feats["width_phi"] / 1e2, np.log10(feats["E_tot"] + 1e-8), feats["sparsity"],
                            feats["EC_r"] / 1e2, feats["width_r"] / 1e2])


def classifier_inputs_low(voxels: np.ndarray, incident_energy: np.ndarray) -> np.ndarray:
    """(N, 1 + V) the challenge's low-level classifier inputs: log10 E_inc, voxels / E_inc."""
    e = np.asarray(incident_energy, dtype=np.float64)[:, None]
    return np.column_stack([np.log10(e), voxels / e]).astype(np.float32)
