"""The standard shower figures, generated vs reference with ratio panels and the separation power
(CaloChallenge) or W1 (ILD) in the legend; and the average shower image per layer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._plotting import finish_ratio, legend_above, pyplot, ratio_axes, ratio_points, save_png
from ..geometry.base import Geometry
from ..geometry.cylindrical import CylindricalGeometry
from .calochallenge import histogram_bins
from .plots import figure_note, ratio_histogram
from .result import EvaluationResult

__all__ = ["shower_plots", "profile_plot", "mean_image_plot"]


def profile_plot(real: np.ndarray, gen: np.ndarray, x: np.ndarray, xlabel: str, ylabel: str, path: Path,
                 note: str = "", log_y: bool = True) -> Path:
    """Mean profile (e.g. energy per layer) of real (filled) and generated (line), ratio below;
    errors are the standard errors of the means."""
    mr, mg = real.mean(0), gen.mean(0)
    er, eg = real.std(0) / np.sqrt(len(real)), gen.std(0) / np.sqrt(len(gen))
    fig, ax, rax = ratio_axes()
    ax.fill_between(x, mr - er, mr + er, step="mid", color="grey", alpha=0.35, label=f"reference ({len(real)})")
    ax.step(x, mr, where="mid", color="grey", lw=0.8)
    ax.errorbar(x, mg, yerr=eg, fmt="o", ms=2.5, color="C0", lw=0.8, label=f"generated ({len(gen)})")
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    legend_above(ax, note)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mg / mr
        rerr = ratio * np.sqrt((eg / mg) ** 2 + (er / mr) ** 2)
    ratio_points(rax, x, ratio, rerr)
    finish_ratio(fig, rax, xlabel)
    return save_png(fig, path)


def mean_image_plot(real: np.ndarray, gen: np.ndarray, geometry: CylindricalGeometry, path: Path,
                    layers: tuple[int, ...], note: str = "") -> Path:
    """Average shower image [MeV] of some layers, reference (top row) and generated (bottom row)."""
    from matplotlib.colors import LogNorm

    fig = pyplot().figure(figsize=(2.6 * len(layers), 5.4))
    vmax = max(real.max(), gen.max(), 1e-6)
    for row, (img, label) in enumerate(((real, "reference"), (gen, "generated"))):
        for col, k in enumerate(layers):
            lay = geometry.layers[k]
            sl = slice(geometry.layer_offsets[k], geometry.layer_offsets[k + 1])
            ax = fig.add_subplot(2, len(layers), row * len(layers) + col + 1, projection="polar")
            a_edges = np.linspace(-np.pi, np.pi, lay.n_alpha + 1)
            mesh = ax.pcolormesh(a_edges, np.asarray(lay.r_edges), img[sl].reshape(lay.n_alpha, lay.n_r).T + 1e-12,
                                 norm=LogNorm(vmin=max(vmax * 1e-5, 1e-6), vmax=vmax))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label}, layer {lay.id}", fontsize=8)
    fig.colorbar(mesh, ax=fig.axes, shrink=0.6, label="mean energy [MeV]")
    if note:
        fig.suptitle(note, fontsize=9)
    return save_png(fig, path)


def shower_plots(used: dict[str, Any], geometry: Geometry, out_dir: str | os.PathLike[str],
                 result: EvaluationResult | None = None) -> list[Path]:
    """The figures of the suite that ran (CaloChallenge voxels or ILD points)."""
    out = Path(out_dir)
    if isinstance(geometry, CylindricalGeometry):
        return _calo_plots(used, geometry, out, result)
    return _ild_plots(used, out, result)


def _calo_plots(used: dict[str, Any], geo: CylindricalGeometry, out: Path, result: EvaluationResult | None) -> list[Path]:
    g, r, thr = used["gen"], used["real"], used["threshold"]
    rel = geo.relevant_layers
    figs = [ratio_histogram(r.feats["E_ratio"], g.feats["E_ratio"], "E_tot / E_inc", out / "e_ratio.png",
                            bins=histogram_bins("e_ratio", 0, geo, thr, 0), note=figure_note(result, "sep_e_ratio")),
            profile_plot(r.feats["E_layer"], g.feats["E_layer"], np.asarray(rel, float), "layer",
                         "mean energy per layer [MeV]", out / "energy_per_layer.png", figure_note(result, "sep_e_layer")),
            profile_plot(r.feats["EC_r"], g.feats["EC_r"], np.asarray(rel, float), "layer",
                         "mean radial centre [mm]", out / "centre_r_per_layer.png", figure_note(result, "sep_ec_r"), log_y=False),
            profile_plot(r.feats["width_r"], g.feats["width_r"], np.asarray(rel, float), "layer",
                         "mean radial width [mm]", out / "width_r_per_layer.png", figure_note(result, "sep_width_r"), log_y=False),
            profile_plot(r.feats["sparsity"], g.feats["sparsity"], np.asarray(rel, float), "layer",
                         "mean sparsity (fraction of empty voxels)", out / "sparsity_per_layer.png",
                         figure_note(result, "sep_sparsity"), log_y=False)]
    centres = 0.5 * (used["cell_bins"][1:] + used["cell_bins"][:-1])
    figs.append(ratio_histogram(np.repeat(centres, r.cell_hist.astype(np.int64)), np.repeat(centres, g.cell_hist.astype(np.int64)),
                                "voxel energy [MeV]", out / "cell_energy.png", bins=used["cell_bins"], log_x=True,
                                note=figure_note(result, "sep_cell")))
    # radial profile: mean energy per radial bin summed over layers and angles (data sets 2, 3 binning)
    k0 = geo.layers.index(next(lay for lay in geo.layers if lay.n_voxels))
    for name, key, lim in (("ec_eta", "EC_eta", "centre in eta (x) [mm]"), ("width_eta", "width_eta", "width in eta (x) [mm]")):
        if g.feats[key].shape[1]:
            col = g.feats[key].shape[1] // 2
            lid = [lay.id for lay in geo.layers if lay.n_voxels and lay.n_alpha > 1][col]
            figs.append(ratio_histogram(r.feats[key][:, col], g.feats[key][:, col], f"{lim}, layer {lid}",
                                        out / f"{name}_layer{lid}.png",
                                        bins=histogram_bins(name, lid, geo, thr, 0), note=figure_note(result, f"sep_{name}")))
    if len(g.voxels) and geo.layers[k0].n_alpha > 1:
        show = tuple(k for k, lay in enumerate(geo.layers) if lay.n_voxels)
        show = show[:: max(1, len(show) // 5)][:5]
        figs.append(mean_image_plot(r.voxels.mean(0), g.voxels.mean(0), geo, out / "mean_image.png", show,
                                    figure_note(result, "")))
    return figs


def _ild_plots(used: dict[str, Any], out: Path, result: EvaluationResult | None) -> list[Path]:
    from ..metrics.ild_observables import RADIAL_EDGES

    g, r = used["gen"], used["real"]
    figs = [ratio_histogram(r["n_hits"], g["n_hits"], "number of cell hits", out / "n_hits.png", note=figure_note(result, "w1_n_hits")),
            ratio_histogram(r["e_ratio"], g["e_ratio"], "E_vis / E_inc", out / "e_ratio.png", note=figure_note(result, "w1_e_ratio")),
            ratio_histogram(r["e_cell_all"], g["e_cell_all"], "cell energy [MeV]", out / "cell_energy.png",
                            bins=np.logspace(np.log10(0.1), np.log10(max(r["e_cell_all"].max(), 1.0)), 60), log_x=True,
                            note=figure_note(result, "w1_e_cell")),
            profile_plot(r["e_layer"], g["e_layer"], np.arange(r["e_layer"].shape[1], dtype=float), "layer",
                         "mean energy per layer [MeV]", out / "longitudinal_profile.png", figure_note(result, "w1_e_long")),
            profile_plot(r["e_radial"], g["e_radial"], 0.5 * (np.asarray(RADIAL_EDGES[1:]) + RADIAL_EDGES[:-1]),
                         "distance to the shower axis [mm] (ring centres)", "mean energy per ring [MeV]",
                         out / "radial_profile.png", figure_note(result, "w1_e_radial"))]
    for a in "xyz":
        figs.append(ratio_histogram(r[f"cog_{a}"], g[f"cog_{a}"], f"centre of gravity {a} [mm]", out / f"cog_{a}.png",
                                    note=figure_note(result, f"w1_cog_{a}")))
    return figs
