"""``pcbench geometry show``: a cell geometry's summary and a picture of a layer."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from .._outputs import output_file
from ..errors import UsageError
from ..geometry import GEOMETRIES, get_geometry
from ..geometry.draw import draw_layer
from . import cli, console


@cli.group()
def geometry() -> None:
    """Cell geometries (CaloChallenge voxels, the ILD ECal grid)."""


@geometry.command("show", help="Print the geometry's layers, cells and extents. NAME: "
                  f"{', '.join(GEOMETRIES)}, or a grid .yaml / binning .xml.")
@click.argument("name", metavar="NAME")
@click.option("--layer", type=int, default=None,
              help="A layer (position in the layer order): print its cells and extent, and draw it with --png.")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw the layer (default: the first) to this PNG.")
def show(name: str, layer: int | None, png: Path | None) -> None:
    geo = get_geometry(name)
    if layer is not None and not 0 <= layer < geo.n_layers:
        raise UsageError(f"--layer {layer}: {geo.name} has layers 0..{geo.n_layers - 1}")
    if png is not None:
        output_file(png, "--png")
    for k, v in geo.summary().items():
        console.print(f"[bold]{k:>18}[/]  {escape(str(v))}", highlight=False)
    if layer is not None:
        cells = geo.cell_layer == layer
        centres = geo.cell_centres[cells]
        extent = ", ".join(f"{a} {lo:.4g}..{hi:.4g}" for a, lo, hi in zip("xyz", centres.min(0), centres.max(0))) \
            if len(centres) else "no cells"
        console.print(f"[bold]{'layer ' + str(layer):>18}[/]  " + escape(f"{int(cells.sum())} cells; cell centres "
                      f"in the geometry's coordinates (see above): {extent}"), highlight=False)
    if png is not None:
        path = draw_layer(geo, 0 if layer is None else layer, png)
        console.print(f"[green]wrote[/] {path}", highlight=False)
