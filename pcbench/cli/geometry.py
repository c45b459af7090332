"""``pcbench geometry show``: a cell geometry's summary and a picture of a layer."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from ..geometry import GEOMETRIES, get_geometry
from ..geometry.draw import draw_layer
from . import cli, console


@cli.group()
def geometry() -> None:
    """Cell geometries (CaloChallenge voxels, the ILD ECal grid)."""


@geometry.command("show", help="Print the geometry's layers, cells and extents. NAME: "
                  f"{', '.join(GEOMETRIES)}, or a grid .yaml / binning .xml.")
@click.argument("name", metavar="NAME")
@click.option("--layer", type=int, default=None, help="Draw this layer (position in the layer order) ...")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None, help="... to this PNG.")
def show(name: str, layer: int | None, png: Path | None) -> None:
    geo = get_geometry(name)
    for k, v in geo.summary().items():
        console.print(f"[bold]{k:>18}[/]  {escape(str(v))}", highlight=False)
    if png is not None:
        path = draw_layer(geo, 0 if layer is None else layer, png)
        console.print(f"[green]wrote[/] {path}", highlight=False)
