"""``pcbench datasets``, ``fetch`` and ``validate``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.table import Table

from ..data import Cache, FetchOptions, default_registry, fetch, validate_file
from ..data.fetch import fetch_jobs
from ..data.integrity import is_verified, trust
from .._outputs import folder_problem
from . import cli, console


def _cache_option(write: bool):
    """The ``--cache-dir`` option, checked before any work starts (a usage error, exit 2).

    Commands that write into the cache (``write``: fetch, simulate) need a writable folder, or a
    new one inside an existing writable folder; commands that only read it need an existing folder
    (a read-only cache is fine for them).
    """

    def check(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
        if value is not None:
            problem = folder_problem(value, create=True) if write else folder_problem(value, create=False, probe=False)
            if problem:
                raise click.BadParameter(problem)
        return value

    made = " (made if missing, inside an existing folder)" if write else ""
    return click.option(
        "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, callback=check,
        help=f"Cache directory{made} (default: $PCBENCH_CACHE, else the per-user cache dir).")


#: ``--cache-dir`` of commands that only read the cache; ``writable_cache_option`` of those that write it.
cache_option = _cache_option(write=False)
writable_cache_option = _cache_option(write=True)


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
    rows = []
    for entry in default_registry():
        n_cached = sum(cache.is_cached(entry, f) for f in entry.files)
        src = entry.source
        source = f"zenodo {src['record']}" if src.get("type") == "zenodo" else f"{src.get('type')} (see registry)"
        rows.append({"name": entry.name, "kind": entry.kind, "files": " ".join(f.key for f in entry.files) or "-",
                     "size": _size(entry.total_size), "source": source,
                     "cached": f"{n_cached}/{len(entry.files)}" if entry.files else "-",
                     "checksum": _checksum_column(cache, entry),
                     "offline": "pcbench simulate" if entry.offline else "-"})
    if console.is_terminal and console.width >= 140:
        table = Table(title=f"pcbench data sets (cache: {cache.root})")
        for col in rows[0]:
            table.add_column(col, no_wrap=True)
        for row in rows:
            table.add_row(*row.values())
        console.print(table)
    else:  # narrow terminals and pipes: two or three plain lines per data set, nothing cut
        console.print(f"pcbench data sets (cache: {cache.root})", highlight=False)
        for r in rows:
            console.print(f"{r['name']}  [{r['kind']}]  files: {r['files']}  size: {r['size']}  cached: {r['cached']}",
                          highlight=False, markup=False)
            console.print(f"    source: {r['source']}   offline: {r['offline']}", highlight=False,
                          markup=False)
            if r["checksum"] != "-":
                console.print(f"    checksum: {r['checksum']}", highlight=False, markup=False)
    console.print("checksum: 'unverified' = no published md5; pcbench pins the md5 of the first download and "
                  "checks the registered size and the layout (`pcbench fetch --refresh NAME` downloads it again).",
                  highlight=False)


def _checksum_column(cache: Cache, entry) -> str:
    """'published md5', or 'unverified (no published md5; k/n pinned)' for downloadable data sets."""
    if not entry.downloadable:
        return "-"
    pins = [cache.pinned(entry, f) for f in entry.files]
    if all(is_verified(f, pin) for f, pin in zip(entry.files, pins)):
        return "published md5"
    pinned = sum(pin is not None and not is_verified(f, pin) for f, pin in zip(entry.files, pins))
    return f"unverified (no published md5; {pinned}/{len(entry.files)} pinned)"


@cli.command("fetch")
@click.argument("names", nargs=-1, required=True)
@writable_cache_option
@click.option("--mirror", default=None, help="Base URL of a host serving the same file names.")
@click.option("--retries", default=4, show_default=True, help="Attempts after the first on time-outs and cut transfers.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for a connection or for data.")
@click.option("--refresh", is_flag=True,
              help="Download again even if cached; for files without a published md5, replace the pinned md5.")
def fetch_cmd(names: tuple[str, ...], cache_dir: Path | None, mirror: str | None, retries: int, timeout: float,
              refresh: bool) -> None:
    """Download data sets (NAME or NAME:KEY, e.g. jetnet30:g) into the cache, verified.

    Each line says what the file was verified against; 'unverified' means no md5 was published:
    the size (where registered) and the layout were checked and the md5 is pinned for later uses."""
    cache, start = Cache(cache_dir), time.time()
    jobs = fetch_jobs(names)
    paths = fetch(list(names), cache, FetchOptions(mirror=mirror, retries=retries, timeout=timeout, refresh=refresh))
    for (entry, f), p in zip(jobs, paths):
        note = trust(f, cache.pinned(entry, f), since=start)
        colour = "green" if not note.startswith("unverified") else "yellow"
        console.print(f"[green]ok[/] {p} ({_size(p.stat().st_size)}): [{colour}]{note}[/]",
                      highlight=False, soft_wrap=True)


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
