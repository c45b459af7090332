"""``pcbench datasets``, ``fetch`` and ``validate``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from ..data import Cache, FetchOptions, default_registry, fetch, validate_file
from . import cli, console

cache_option = click.option(
    "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Cache directory (default: $PCBENCH_CACHE, else the per-user cache dir).")


def _size(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return str(n)


@cli.command()
@cache_option
def datasets(cache_dir: Path | None) -> None:
    """List the registered data sets: name, kind, files, size, source and cache status."""
    cache = Cache(cache_dir)
    table = Table(title=f"pcbench data sets (cache: {cache.root})")
    for col in ("name", "kind", "files", "size", "source", "cached", "offline"):
        table.add_column(col, no_wrap=col in ("name", "kind"))
    for entry in default_registry():
        n_cached = sum(cache.is_cached(entry, f) for f in entry.files)
        src = entry.source
        source = f"zenodo {src['record']}" if src.get("type") == "zenodo" else f"{src.get('type')} (see registry)"
        cached = f"{n_cached}/{len(entry.files)}" if entry.files else "-"
        table.add_row(entry.name, entry.kind, ", ".join(f.key for f in entry.files) or "-",
                      _size(entry.total_size), source, cached,
                      "pcbench simulate" if entry.offline else "-")
    console.print(table)


@cli.command("fetch")
@click.argument("names", nargs=-1, required=True)
@cache_option
@click.option("--mirror", default=None, help="Base URL of a host serving the same file names.")
@click.option("--retries", default=4, show_default=True, help="Attempts after the first on time-outs and cut transfers.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for a connection or for data.")
def fetch_cmd(names: tuple[str, ...], cache_dir: Path | None, mirror: str | None, retries: int, timeout: float) -> None:
    """Download data sets (NAME or NAME:KEY, e.g. jetnet30:g) into the cache, verified."""
    paths = fetch(list(names), Cache(cache_dir), FetchOptions(mirror=mirror, retries=retries, timeout=timeout))
    for p in paths:
        console.print(f"[green]ok[/] {p} ({_size(p.stat().st_size)})", highlight=False)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--num-voxels", type=int, default=None, help="Expected voxels per shower (voxel files).")
@click.option("--geometry", default=None,
              help="Shower geometry (default: the file's `geometry` attribute; ild-ecal for the ILD layout).")
@click.option("--outside-tolerance", type=float, default=0.05, show_default=True,
              help="Largest fraction of a point shower's energy allowed outside the geometry.")
def validate(files: tuple[Path, ...], num_voxels: int | None, geometry: str | None, outside_tolerance: float) -> None:
    """Check sample or data files; print every problem; exit 1 if any file has one."""
    bad = 0
    for path in files:
        report = validate_file(path, num_voxels=num_voxels, geometry=geometry, outside_tolerance=outside_tolerance)
        if report.ok:
            console.print(f"[green]valid[/] {path}: {report.kind} ({report.layout} layout), {report.rows} rows",
                          highlight=False)
        else:
            bad += 1
            console.print(f"[red]invalid[/] {path}: {len(report.problems)} problem(s)", highlight=False)
            for line in report.lines():
                console.print(f"  {line}", highlight=False, soft_wrap=True)
    if bad:
        sys.exit(1)
