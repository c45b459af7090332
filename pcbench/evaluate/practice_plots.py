"""Figures of the newer evaluation practice, drawn from a finished record (jets and showers
alike): each metric across the bins of a condition, the correlation difference matrix, the
response and resolution per incident-energy bin with the resolution fits, and each metric's
null distribution with the model's value."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .._plotting import legend_above, pyplot, save_png
from .display import column_scale, label, scale_text
from .result import EvaluationResult

__all__ = ["practice_plots", "per_bin_figure", "correlation_figure", "response_figure", "null_figure"]


def _note(result: EvaluationResult) -> str:
    prov = result.provenance
    return "PARAMETERISED showers, not Geant4" if prov.get("samples_parameterised") or \
        prov.get("reference_parameterised") else ""


def per_bin_figure(result: EvaluationResult, name: str, path: Path) -> Path | None:
    """One metric across the bins: the model (points) and the truth row (grey), with errors."""
    pb = result.per_bin or {}
    bins = [b for b in pb.get("bins", []) if name in b.get("metrics", {})]
    if not bins:
        return None
    m = result.metrics.get(name)
    vals = [b["metrics"][name] for b in bins]
    scale = column_scale([v["value"] for v in vals] + [v["truth"] for v in vals], m.scale if m else 1.0)
    x = np.array([math.sqrt(b["low"] * b["high"]) if b["low"] > 0 else 0.5 * (b["low"] + b["high"]) for b in bins])
    xerr = np.array([[xi - b["low"] for xi, b in zip(x, bins)], [b["high"] - xi for xi, b in zip(x, bins)]])

    def col(key: str) -> np.ndarray:
        return np.array([np.nan if v[key] is None else v[key] * scale for v in vals], float)

    fig, ax = pyplot().subplots(figsize=(5.5, 3.6))
    ax.errorbar(x, col("truth"), yerr=col("truth_error"), xerr=xerr, fmt="s", color="grey", alpha=0.7,
                label="truth vs truth")
    ax.errorbar(x, col("value"), yerr=col("error"), fmt="o", color="C0", label="model")
    if pb.get("variable") == "incident_energy":
        ax.set_xscale("log")
    ax.set_xlabel(f"{pb.get('binning', '')}")
    s = scale_text(scale)
    ax.set_ylabel(label(name) + (f" ({s})" if s else ""), fontsize=8)
    legend_above(ax, _note(result))
    fig.tight_layout()
    return save_png(fig, path)


def correlation_figure(details: dict[str, Any], path: Path, note: str = "") -> Path:
    """The difference of the Pearson matrices, C_gen - C_ref, as a diverging colour map."""
    d = np.asarray(details["difference"], float)
    names = details["names"]
    lim = max(float(np.nanmax(np.abs(d))), 1e-3)
    fig, ax = pyplot().subplots(figsize=(5.5, 4.8))
    im = ax.imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax, label="C_gen - C_ref (Pearson)")
    step = max(1, len(names) // 15)
    ax.set_xticks(range(0, len(names), step), [names[i] for i in range(0, len(names), step)], rotation=90, fontsize=6)
    ax.set_yticks(range(0, len(names), step), [names[i] for i in range(0, len(names), step)], fontsize=6)
    ax.set_title("correlation difference" + (f"\n{note}" if note else ""), fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def response_figure(details: dict[str, Any], path: Path, note: str = "") -> Path:
    """<E_vis/E_inc> and sd/mean per incident-energy bin, reference and model, with the fits
    sigma/E = a/sqrt(E) (+) b."""
    fig, (ax1, ax2) = pyplot().subplots(2, 1, figsize=(5.5, 5.5), sharex=True)
    for key, style, name in (("reference", dict(color="grey", fmt="s"), "reference"),
                             ("model", dict(color="C0", fmt="o"), "model")):
        rows = [r for r in details[key] if r is not None]
        e = np.array([r["e_mean"] for r in rows]) / 1e3
        ax1.errorbar(e, [r["mean"] for r in rows], yerr=[r["mean_error"] for r in rows], label=name, **style)
        ax2.errorbar(e, [r["resolution"] for r in rows], yerr=[r["resolution_error"] for r in rows], **style)
        fit = details.get(f"{key}_fit")
        if fit is not None and len(e):
            xs = np.geomspace(e.min(), e.max(), 50)
            ax2.plot(xs, np.sqrt(fit["a"] ** 2 / xs + fit["b"] ** 2), color=style["color"], lw=1,
                     label=f"{name}: a = {fit['a']:.3f} sqrt(GeV), b = {fit['b']:.4f}")
    ax1.set_ylabel("response <E_vis/E_inc>")
    ax2.set_ylabel("resolution sd/mean")
    ax2.set_xlabel("incident energy [GeV]")
    ax2.set_xscale("log")
    legend_above(ax1, note)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def null_figure(name: str, m: Any, null: dict[str, Any], path: Path, note: str = "") -> Path:
    """The null distribution (reference vs reference) of one metric and the model's value."""
    v = np.asarray([x for x in null["values"] if x is not None], float)
    scale = column_scale(list(v) + [m.value], m.scale)
    fig, ax = pyplot().subplots(figsize=(5, 3.2))
    ax.hist(v * scale, bins=max(5, min(30, len(v) // 2)), color="grey", alpha=0.6,
            label=f"reference vs reference ({len(v)} draws)")
    ax.axvline(m.value * scale, color="C0", lw=2, label=f"model: p = {m.p_value:.3g}, z = {m.z:.2g}")
    s = scale_text(scale)
    ax.set_xlabel(label(name) + (f" ({s})" if s else ""), fontsize=8)
    ax.set_ylabel("draws")
    legend_above(ax, note)
    fig.tight_layout()
    return save_png(fig, path)


def practice_plots(result: EvaluationResult, folder: Path) -> list[Path]:
    """Every figure the record has data for, into ``folder``."""
    folder = Path(folder)
    note = _note(result)
    out: list[Path] = []
    details = result.provenance.get("details") or {}
    if details.get("correlation"):
        out.append(correlation_figure(details["correlation"], folder / "correlation_difference.png", note))
    if details.get("response"):
        out.append(response_figure(details["response"], folder / "response_resolution.png", note))
    for name in result.metrics:
        p = per_bin_figure(result, name, folder / f"per_bin_{name}.png")
        if p is not None:
            out.append(p)
    sig = (result.provenance.get("significance") or {}).get("metrics", {})
    for name, d in sig.items():
        if "null" in d and name in result.metrics and result.metrics[name].p_value is not None:
            out.append(null_figure(name, result.metrics[name], d["null"], folder / f"null_{name}.png", note))
    return out
