"""Figures of generated vs reference distributions, with ratio panels, and a one-page HTML report."""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from .._plotting import finish_ratio, ratio_axes, save_png
from ..data import JetSet
from .result import EvaluationResult

__all__ = ["ratio_histogram", "jet_plots", "html_report"]


def ratio_histogram(real: np.ndarray, gen: np.ndarray, xlabel: str, path: Path, bins: int | np.ndarray = 40,
                    log_x: bool = False, note: str = "") -> Path:
    """Density histograms of real (filled) and generated (line), and below them the ratio
    generated / real with Poisson errors; saved as PNG.  ``bins``: edges, or a number of bins
    over the real sample's 0.1-99.9 % range."""
    real, gen = np.asarray(real, float), np.asarray(gen, float)
    lo, hi = np.quantile(real, [0.001, 0.999])
    if not np.isscalar(bins):
        edges = np.asarray(bins, float)
    elif log_x:
        lo = max(lo, np.min(real[real > 0]) if np.any(real > 0) else 1e-6)
        edges = np.geomspace(lo, max(hi, lo * 1.01), bins + 1)
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    hr, _ = np.histogram(real, edges)
    hg, _ = np.histogram(gen, edges)
    width = np.diff(edges)
    dr, dg = hr / max(hr.sum(), 1) / width, hg / max(hg.sum(), 1) / width
    fig, ax, rax = ratio_axes()
    ax.stairs(dr, edges, fill=True, alpha=0.35, color="grey", label=f"reference ({len(real)})")
    ax.stairs(dg, edges, color="C0", lw=1.5, label=f"generated ({len(gen)})")
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize=8, title=note or None, title_fontsize=8)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = dg / dr
        err = ratio * np.sqrt(1 / np.maximum(hg, 1) + 1 / np.maximum(hr, 1))
    centres = 0.5 * (edges[1:] + edges[:-1]) if not log_x else np.sqrt(edges[1:] * edges[:-1])
    ok = hr > 0  # the ratio is defined where the reference has entries
    rax.errorbar(centres[ok], ratio[ok], yerr=err[ok], fmt="o", ms=2, color="C0", lw=0.8)
    if log_x:
        rax.set_xscale("log")
    finish_ratio(fig, rax, xlabel)
    return save_png(fig, path)


def jet_plots(gen: tuple[JetSet, dict], real: tuple[JetSet, dict], out_dir: str | os.PathLike[str],
              result: EvaluationResult | None = None) -> list[Path]:
    """One PNG per observable of the jet suite: jet mass, pT, multiplicity, tau21, tau32, the
    particles' etarel, phirel, ptrel, and the 5 W1EFP energy flow polynomials."""
    from ..metrics.jet_observables import EFP_W1_INDICES

    out = Path(out_dir)
    (gj, gf), (rj, rf) = gen, real
    m = (result.metrics if result else {})

    def note(name: str) -> str:
        v = m.get(name)
        return "" if v is None else f"{name} = {v.value * v.scale:.3g} ± {v.error * v.scale:.2g} (x{v.scale:g})"

    specs = [("jet_mass", rf["mass"], gf["mass"], "relative jet mass m / pT_jet", False, "w1m"),
             ("jet_pt", rf["pt"], gf["pt"], "relative jet pT", False, ""),
             ("multiplicity", rf["multiplicity"], gf["multiplicity"], "number of particles", False, ""),
             ("tau21", rf["tau21"], gf["tau21"], "tau21 (exclusive-kT axes)", False, "w1_tau21"),
             ("tau32", rf["tau32"], gf["tau32"], "tau32 (exclusive-kT axes)", False, "w1_tau32"),
             ("particle_etarel", rj.particles[..., 0][rj.mask], gj.particles[..., 0][gj.mask], "particle etarel", False, "w1p"),
             ("particle_phirel", rj.particles[..., 1][rj.mask], gj.particles[..., 1][gj.mask], "particle phirel", False, "w1p"),
             ("particle_ptrel", rj.particles[..., 2][rj.mask], gj.particles[..., 2][gj.mask], "particle ptrel", True, "kl_ptconst")]
    for k, i in enumerate(EFP_W1_INDICES()):
        specs.append((f"efp_{k + 1}", rf["efps"][:, i], gf["efps"][:, i], f"EFP n=4 d=4 #{k + 1}", True, "w1efp"))
    return [ratio_histogram(r, g, label, out / f"{name}.png", log_x=logx, note=note(metric))
            for name, r, g, label, logx, metric in specs]


def html_report(result: EvaluationResult, plots: list[Path], path: str | os.PathLike[str]) -> Path:
    """A one-page HTML report: the metric table (value, error, truth-vs-truth) and the figures."""
    path = Path(path)
    prov = result.provenance
    rows = "".join(
        f"<tr><td>{html.escape(m.name)}</td><td>x{m.scale:g}</td><td>{m.value * m.scale:.4g} ± {m.error * m.scale:.2g}</td>"
        f"<td>{(m.truth or 0) * m.scale:.4g} ± {(m.truth_error or 0) * m.scale:.2g}</td><td>{html.escape(m.definition)}</td></tr>"
        for m in result.metrics.values())
    imgs = "".join(f'<figure><img src="{html.escape(os.path.relpath(p, path.parent))}" width="420">'
                   f"<figcaption>{html.escape(p.stem)}</figcaption></figure>" for p in plots)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>pcbench: {html.escape(result.model)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}
figure{{display:inline-block;margin:4px}}</style></head><body>
<h1>{html.escape(result.model)} vs {html.escape(str(prov.get('reference')))}</h1>
<p>{html.escape(str(prov.get('reference_split')))} split, {prov.get('n_jets')} jets per sample, suite {html.escape(str(prov.get('suite_version')))}
({html.escape(str(prov.get('config', {}).get('profile')))}), pcbench {html.escape(str(prov.get('pcbench_version')))}.</p>
<table><tr><th>metric</th><th>scale</th><th>model</th><th>truth vs truth</th><th>definition</th></tr>{rows}</table>
<h2>Distributions (reference filled, generated line; ratio below)</h2>{imgs}</body></html>
"""
    atomic_write_text(path, page)
    return path
