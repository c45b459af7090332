"""Figures of generated vs reference distributions, with ratio panels, and a one-page HTML report."""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from .._plotting import finish_ratio, legend_above, pyplot, ratio_axes, ratio_points, save_png
from ..data import JetSet
from .result import EvaluationResult

__all__ = ["figure_note", "ratio_histogram", "jet_plots", "html_report"]


def figure_note(result: EvaluationResult | None, name: str) -> str:
    """The line a figure carries: the metric it illustrates with its value, and PARAMETERISED
    where the showers compared are not Geant4's."""
    from .display import column_scale, fmt_value, scale_text

    parts = []
    prov = result.provenance if result else {}
    if prov.get("samples_parameterised") or prov.get("reference_parameterised"):
        parts.append("PARAMETERISED showers, not Geant4")
    m = (result.metrics if result else {}).get(name)
    if m is not None:
        scale = column_scale([m.value], m.scale)
        s = scale_text(scale)
        parts.append(f"{name} = {fmt_value(m.value, m.error, scale, m.better)}" + (f" ({s})" if s else ""))
    return "; ".join(parts)


def _single_value_figure(real: np.ndarray, gen: np.ndarray, xlabel: str, path: Path, note: str) -> Path:
    """A distribution the reference holds at one value (e.g. 30 particles in every JetNet30 jet
    after zero-padding) is stated in words, not drawn as a one-bin histogram."""
    value = real[0]
    share = float(np.mean(gen == value)) if len(gen) else float("nan")
    lines = [f"{xlabel}:", f"reference: every one of {len(real)} has {value:g}",
             f"generated: {share:.1%} of {len(gen)} have {value:g}"]
    if share < 1 and len(gen):
        lines.append(f"(generated range {gen.min():g} .. {gen.max():g})")
    fig = pyplot().figure(figsize=(5, 2.2))
    fig.text(0.05, 0.9, "\n".join(lines + ([note] if note else [])), va="top", fontsize=10, family="monospace")
    return save_png(fig, path)


def ratio_histogram(real: np.ndarray, gen: np.ndarray, xlabel: str, path: Path, bins: int | np.ndarray = 40,
                    log_x: bool = False, note: str = "") -> Path:
    """Density histograms of real (filled) and generated (line), and below them the ratio
    generated / real with Poisson errors (points beyond the panel as arrows at its edge); saved as
    PNG.  ``bins``: edges, or a number of bins over the real sample's 0.1-99.9 % range.  With
    ``log_x`` the bins are log-spaced and the density is per unit of log10(x), so that equal
    areas mean equal probabilities on the log axis.  A reference with a single value is stated."""
    real, gen = np.asarray(real, float), np.asarray(gen, float)
    if len(real) and np.ptp(real) == 0:
        return _single_value_figure(real, gen, xlabel, path, note)
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
    width = np.diff(np.log10(edges)) if log_x else np.diff(edges)
    dr, dg = hr / max(hr.sum(), 1) / width, hg / max(hg.sum(), 1) / width
    fig, ax, rax = ratio_axes()
    ax.stairs(dr, edges, fill=True, alpha=0.35, color="grey", label=f"reference ({len(real)})")
    ax.stairs(dg, edges, color="C0", lw=1.5, label=f"generated ({len(gen)})")
    ax.set_ylabel("density per unit log10(x)" if log_x else "density")
    legend_above(ax, note)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = dg / dr
        err = ratio * np.sqrt(1 / np.maximum(hg, 1) + 1 / np.maximum(hr, 1))
    centres = 0.5 * (edges[1:] + edges[:-1]) if not log_x else np.sqrt(edges[1:] * edges[:-1])
    ok = hr > 0  # the ratio is defined where the reference has entries
    ratio_points(rax, centres[ok], ratio[ok], err[ok])
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
    return [ratio_histogram(r, g, label, out / f"{name}.png", log_x=logx, note=figure_note(result, metric))
            for name, r, g, label, logx, metric in specs]


def html_report(result: EvaluationResult, plots: list[Path], path: str | os.PathLike[str]) -> Path:
    """A one-page HTML report: the metric table (quantity, value ± error, truth-vs-truth) and the
    figures, in the words of the sample's kind (jets or showers); parameterised showers say so."""
    from .display import column_scale, fmt_value, label, scale_text
    from .practice_report import has_significance, practice_html, significance_cells, significance_header

    path = Path(path)
    prov = result.provenance
    e = html.escape
    rows = []
    sig = has_significance(result)
    for m in result.metrics.values():
        scale = column_scale([m.value, m.truth], m.scale)
        extra = "".join(f"<td>{e(c)}</td>" for c in significance_cells(m)) if sig else ""
        rows.append(f"<tr><td>{e(m.name)}</td><td>{e(label(m.name))}</td><td>{e(scale_text(scale))}</td>"
                    f"<td>{e(fmt_value(m.value, m.error, scale, m.better))}</td>"
                    f"<td>{e(fmt_value(m.truth, m.truth_error, scale, m.better))}</td>{extra}<td>{e(m.definition)}</td></tr>")
    sig_head = "".join(f"<th>{e(h)}</th>" for h in significance_header) if sig else ""
    imgs = "".join(f'<figure><img src="{e(os.path.relpath(p, path.parent))}" width="420">'
                   f"<figcaption>{e(p.stem)}</figcaption></figure>" for p in plots)
    jets = result.kind == "jets"
    n = prov.get("n_jets") if jets else prov.get("n_showers")
    what = f"{n} jets per sample" if jets else f"{n} showers per sample on {e(str(prov.get('geometry')))}"
    docs = "docs/metrics-jets.md" if jets else "docs/metrics-showers.md"
    banner = ""
    if prov.get("samples_parameterised") or prov.get("reference_parameterised"):
        banner = ('<p style="background:#fde;padding:6px;font-weight:bold">PARAMETERISED showers (pcbench\'s '
                  "GFlash-type model), not Geant4: these numbers say how well a model learns these showers, "
                  "not how it would do on the real data.</p>")
    fpnd = ("<p>FPND is a distance to the real JetNet30 statistics, whatever the reference: its truth-vs-truth "
            "value is the reference's own distance to JetNet.</p>" if "fpnd" in result.metrics else "")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>pcbench: {e(result.model)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}
figure{{display:inline-block;margin:4px}}</style></head><body>
<h1>{e(result.model)} vs {e(str(prov.get('reference')))}</h1>{banner}
<p>{e(str(prov.get('reference_split')))} split, {what}, suite {e(str(prov.get('suite_version')))}
({e(str(prov.get('config', {}).get('profile')))}), pcbench {e(str(prov.get('pcbench_version')))}.
Values are mean ± error over batches, folds or bootstraps, printed times the scale; "&lt; b": a distance consistent
with zero. Definitions: {docs}.</p>{fpnd}
<table><tr><th>metric</th><th>quantity</th><th>scale</th><th>model</th><th>truth vs truth</th>{sig_head}<th>definition</th></tr>
{"".join(rows)}</table>{practice_html(result)}
<h2>Distributions (reference filled, generated line; ratio below)</h2>{imgs}</body></html>
"""
    atomic_write_text(path, page)
    return path
