"""``pcbench evaluate``: the metric suite of a sample file, as a table with errors and truth-vs-truth."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..data import Cache
from ..evaluate import EvaluationResult, evaluate
from ..leaderboard.published import PUBLISHED, published_table
from . import cli, console
from .data import cache_option


def render(result: EvaluationResult) -> Table:
    """A rich table of a result: quantity (with its scale), value ± error, truth-vs-truth."""
    from ..evaluate.display import column_scale, fmt_value, label, scale_text

    prov = result.provenance
    objects = objects_of(result)
    size = f"{prov.get('n_jets', prov.get('n_showers'))} generated {objects}"
    if objects == "showers":
        size += f" on {prov.get('geometry')}"
    label_param = " [PARAMETERISED showers, not Geant4]" if prov.get("samples_parameterised") else ""
    table = Table(title=f"{result.model} vs {prov.get('reference')} ({prov.get('reference_split')} split), "
                        f"{size}, suite {prov.get('suite_version')} ({prov['config']['profile']}){label_param}")
    from ..evaluate.practice_report import has_significance, significance_cells, significance_header

    sig = has_significance(result)
    table.add_column(escape("quantity [metric]"), overflow="fold")
    for col in ("scale", "model", "truth vs truth", *(significance_header if sig else ())):
        table.add_column(col, no_wrap=True)
    for m in result.metrics.values():
        scale = column_scale([m.value, m.truth], m.scale)
        table.add_row(escape(f"{label(m.name)} [{m.name}]"), scale_text(scale), fmt_value(m.value, m.error, scale, m.better),
                      fmt_value(m.truth, m.truth_error, scale, m.better), *(significance_cells(m) if sig else ()))
    return table


def render_practice(result: EvaluationResult) -> list[Table | str]:
    """The per-bin table, the KS tests and the resolution fits, where the record has them."""
    from ..evaluate.practice_report import fit_lines, ks_table, per_bin_table

    out: list[Table | str] = list(fit_lines(result))
    pb = per_bin_table(result)
    if pb:
        t = Table(title=f"per bin of {result.per_bin['binning']}: model value ± error [truth vs truth]")
        for h in pb[0]:
            t.add_column(escape(h), overflow="fold")
        for r in pb[1]:
            t.add_row(*(escape(c) for c in r))
        out.append(t)
    ks = ks_table(result)
    if ks:
        t = Table(title="Kolmogorov-Smirnov tests per observable (model vs reference; truth vs reference)")
        for h in ("observable", "KS statistic", "p-value", "KS statistic, truth"):
            t.add_column(h, no_wrap=True)
        for r in ks:
            t.add_row(*(escape(c) for c in r))
        out.append(t)
    return out


def objects_of(result: EvaluationResult) -> str:
    """What the record's rows count: jets or showers."""
    return "jets" if result.kind == "jets" else "showers"


def legend(result: EvaluationResult) -> str:
    """One line per metric: name, definition and which way is better (every number has its meaning)."""
    return "\n".join(f"  {m.name}: {m.definition}; better: {m.better}" for m in result.metrics.values())


@cli.command("evaluate")
@click.argument("samples", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reference", required=True, help="Registry name (its test split is used) or an HDF5 file.")
@click.option("--model-name", default=None, help="Name of the model in the record (default: from the file).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Directory for the JSON result record.")
@click.option("--profile", type=click.Choice(["full", "fast"]), default="full", show_default=True,
              help="full: the papers' settings; fast: small batches (tests, demo).")
@click.option("--plots", is_flag=True, help="Also write PNG histograms (ratio panels) and an HTML report.")
@click.option("--metrics", default="", help="Comma-separated subset of metrics (default: all).")
@click.option("--energy-check", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="Showers: refuse samples whose incident energies do not follow the reference's.")
@click.option("--jet-type", type=click.Choice(["g", "q", "t", "w", "z"]), default=None,
              help="Jets: their class, where neither file says it (FPND needs g, q or t).")
@click.option("--device", default="cpu", show_default=True,
              help="torch device of the networks (FPND, classifiers) and EFPs: cpu, cuda or cuda:N.")
@click.option("--truth", default="auto", show_default=True, metavar="auto|halves|FILE",
              help="The truth row's sample: auto = a registered reference's training split (the papers' protocol: "
                   "every generated object against the whole test split) or, for a reference file, its halves; "
                   "halves; or a FILE disjoint from the reference (e.g. the CaloChallenge's other file).")
@click.option("--energy-bins", default="auto", show_default=True, metavar="auto|N|E0,E1,...",
              help="Showers: incident-energy bins [MeV] of the response metrics and of --per-bin: auto (the "
                   "reference's discrete energies, else 5 log-spaced bins), N log-spaced bins, or edges.")
@click.option("--jet-bins", default="pt:4", show_default=True, metavar="pt|mass:N|EDGES",
              help="Jets: the --per-bin variable, the jet's pT or mass [GeV], N quantile bins or edges.")
@click.option("--per-bin", is_flag=True, help="Also run the whole suite in each bin (--energy-bins / --jet-bins).")
@click.option("--null", "null", type=click.IntRange(min=0), default=0, show_default=True, metavar="K",
              help="p-value and z of every metric against K reference-vs-reference re-draws at the same sizes.")
@click.option("--equivalent-stats", is_flag=True,
              help="The reference sample size that scores as badly as the model, per metric.")
@cache_option
def evaluate_cmd(samples: Path, reference: str, model_name: str | None, out_dir: Path, profile: str,
                 plots: bool, metrics: str, energy_check: str, jet_type: str | None, device: str,
                 truth: str, energy_bins: str, jet_bins: str, per_bin: bool, null: int, equivalent_stats: bool,
                 cache_dir: Path | None) -> None:
    """Validate SAMPLES, run its metric suite against the reference, print and record the results."""
    from .._outputs import output_dir
    from ..evaluate.log import StageLog
    from ..evaluate.protocol import protocol_text

    out_dir = output_dir(out_dir)
    with StageLog(out_dir / f"{samples.stem}.evaluate.log", console, f"evaluate {samples} --reference {reference}") as log:
        result = evaluate(samples, reference, model_name, profile, Cache(cache_dir), out_dir, progress=log,
                          plots=plots, metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()),
                          energy_check=energy_check == "on", jet_type=jet_type, device=device,
                          truth=truth, per_bin=per_bin, energy_bins=energy_bins, jet_bins=jet_bins, null=null,
                          equivalent_stats=equivalent_stats)
    console.print(render(result))
    for part in render_practice(result):
        console.print(part, highlight=False, markup=False) if isinstance(part, str) else console.print(part)
    console.print(protocol_text(result.provenance.get("protocol"), objects_of(result))
                  + (" The truth row was read from the cache (same reference, truth sample and settings)."
                     if result.provenance.get("truth_row_cached") else ""), highlight=False, markup=False)
    console.print("values are mean ± error over batches, folds or bootstraps, printed times the scale; "
                  "'< b': a distance consistent with zero (estimate + error below b); definitions:\n" + legend(result),
                  highlight=False, markup=False)
    if "fpnd" in result.metrics:
        console.print("FPND is a distance to the real JetNet30 statistics (shipped with jetnet), whatever the "
                      "reference: its truth-vs-truth value is the reference's own distance to JetNet.",
                      highlight=False)
    if "classifier" in result.provenance:
        console.print(f"classifier setting: {result.provenance['classifier']} (full = the challenge's DNN 2 x 2048, "
                      "50 epochs; fast = 2 x 256, 15 epochs)", highlight=False)
    if result.provenance.get("fpnd", "").startswith("skipped"):
        console.print(f"FPND {result.provenance['fpnd']}", highlight=False)
    console.print(f"record: {out_dir / (result.model + '.json')}", highlight=False)
    if plots:
        console.print(f"report: {out_dir / (result.model + '.html')}", highlight=False)


@cli.command("published")
@click.argument("name", type=click.Choice(sorted(PUBLISHED)))
@click.option("--csv", "as_csv", is_flag=True, help="Print the shipped CSV as it is (every column).")
def published_cmd(name: str, as_csv: bool) -> None:
    """Print a benchmark's PUBLISHED numbers (never computed by pcbench), to see where a model would rank."""
    table = published_table(name)
    if as_csv:
        from importlib import resources

        click.echo((resources.files("pcbench.leaderboard") / "published" / PUBLISHED[name][0]).read_text(encoding="utf-8"))
        return
    t = Table(title=f"{name}: published numbers ({table.source}); not computed by pcbench")
    for h in table.header:
        t.add_column(h, no_wrap=True)
    for row in table.rows:
        t.add_row(*row)
    from rich.console import Console

    Console(width=max(console.width, 40 + 16 * len(table.header))).print(t)  # wide: one line per submission
