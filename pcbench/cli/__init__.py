"""The ``pcbench`` command line: thin click commands over the library, one module per group."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.text import Text

from .. import __version__
from ..errors import PcbenchError

__all__ = ["main", "cli"]

console = Console()
err_console = Console(stderr=True)


class _Group(click.Group):
    """A click group that prints pcbench's own errors as one clear line, without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PcbenchError as exc:
            err_console.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="pcbench")
def cli() -> None:
    """pcbench: benchmarks for point-cloud generative models in particle physics."""


def _register() -> None:
    from . import data, evaluate, geometry, leaderboard, models, simulate  # noqa: F401  (each module adds its commands to `cli`)


_register()


def main() -> None:
    """Console-script entry point."""
    cli()
