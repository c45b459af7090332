"""The newer evaluation practice in words and tables, shared by the terminal and the HTML report:
p-values, z and equivalent reference statistics per metric; the per-bin table; the KS tests per
observable; the resolution fits."""

from __future__ import annotations

import html
import math

from .display import column_scale, fmt_value, label, scale_text
from .result import EvaluationResult, MetricValue

__all__ = ["significance_header", "significance_cells", "per_bin_table", "ks_table", "fit_lines", "practice_html"]

significance_header = ("p (null)", "z", "equiv. ref. size")


def has_significance(result: EvaluationResult) -> bool:
    return any(m.p_value is not None or m.equivalent_size is not None for m in result.metrics.values())


def significance_cells(m: MetricValue) -> list[str]:
    """p-value against the null draws, z, and the equivalent reference size ('-' where not computed)."""
    p = "-" if m.p_value is None or not math.isfinite(m.p_value) else f"{m.p_value:.3g}"
    z = "-" if m.z is None or not math.isfinite(m.z) else f"{m.z:+.2f}"
    return [p, z, m.equivalent_size or "-"]


def per_bin_table(result: EvaluationResult) -> tuple[list[str], list[list[str]]] | None:
    """Header and rows: one row per bin (edges, sizes), one column per metric: model value ±
    error [truth value], each column at one scale (named in its header)."""
    pb = result.per_bin
    if not pb:
        return None
    names = [n for n in result.metrics if any(n in b.get("metrics", {}) for b in pb["bins"])]
    scales = {n: column_scale([b["metrics"][n]["value"] for b in pb["bins"] if n in b.get("metrics", {})],
                              result.metrics[n].scale) for n in names}
    header = [f"bin [{pb['unit']}]", "n gen / ref / truth"] + [
        f"{label(n)} [{n}]" + (f" ({scale_text(scales[n])})" if scale_text(scales[n]) else "") for n in names]
    rows = []
    for b in pb["bins"]:
        row = [f"{b['low']:.4g} - {b['high']:.4g}", f"{b['n_gen']} / {b['n_ref']} / {b['n_truth']}"]
        if "skipped" in b:
            row += [f"skipped: {b['skipped']}"] + [""] * (len(names) - 1) if names else []
        else:
            better = {n: result.metrics[n].better for n in names}
            for n in names:
                v = b["metrics"][n]
                row.append(f"{fmt_value(v['value'], v['error'], scales[n], better[n])} "
                           f"[{fmt_value(v['truth'], v['truth_error'], scales[n], better[n])}]")
        rows.append(row)
    return header, rows


def ks_table(result: EvaluationResult) -> list[tuple[str, str, str, str]]:
    """(observable, KS statistic model, p-value model, KS statistic truth) of the record's KS tests."""
    ks = (result.provenance.get("details") or {}).get("ks") or {}
    truth = (result.provenance.get("truth_details") or {}).get("ks") or {}
    return [(k, f"{v[0]:.4f}", f"{v[1]:.3g}", f"{truth[k][0]:.4f}" if k in truth else "-") for k, v in ks.items()]


def fit_lines(result: EvaluationResult) -> list[str]:
    """The resolution fits sigma/E = a/sqrt(E) (+) b of the reference and the model, in words."""
    resp = (result.provenance.get("details") or {}).get("response") or {}
    out = []
    for key in ("reference", "model"):
        f = resp.get(f"{key}_fit")
        if f:
            out.append(f"resolution fit, {key}: sigma/E = a/sqrt(E[GeV]) (+) b with a = {fmt_value(f['a'], f['a_error'])} "
                       f"sqrt(GeV), b = {fmt_value(f['b'], f['b_error'])} (chi2/ndf = {f['chi2']:.1f}/{f['ndf']})")
    return out


def practice_html(result: EvaluationResult) -> str:
    """HTML sections: resolution fits, per-bin table, KS tests, the null/equivalent definitions."""
    e = html.escape
    parts = []
    fits = fit_lines(result)
    if fits:
        parts.append("<h2>Response and resolution</h2>" + "".join(f"<p>{e(x)}</p>" for x in fits))
    table = per_bin_table(result)
    if table:
        header, rows = table
        parts.append(f"<h2>Per bin: {e(result.per_bin['binning'])}</h2><p>model value ± error [truth vs truth]; "
                     "each sample's objects binned by their own value.</p><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
    ks = ks_table(result)
    if ks:
        parts.append("<h2>Kolmogorov-Smirnov tests per observable</h2><table><tr><th>observable</th>"
                     "<th>KS statistic, model</th><th>p-value, model</th><th>KS statistic, truth vs truth</th></tr>"
                     + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in ks) + "</table>")
    sig = result.provenance.get("significance")
    if sig:
        parts.append(f"<p>p (null): fraction of {sig['null_draws']} reference-vs-reference re-draws at the same sizes "
                     "that score at least as badly (plus one, over K + 1); z: (model - null mean) / null sd in the "
                     "direction of worse; equiv. ref. size: the reference sample size that scores as badly as the "
                     "model (log-log interpolation of the truth row at 1/16 ... 1 of its size).</p>")
    return "".join(parts)
