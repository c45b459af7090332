"""The ``pcbench`` command line: thin click commands over the library, one module per group.

Commands are imported when they are run, not at start-up: ``pcbench --help`` and ``--version``
never load torch, numba or h5py (``benchmarks/cli_startup.py`` times them).  ``COMMANDS`` names
each command's module and its one-line help (a test checks them against the commands).
"""

from __future__ import annotations

import importlib
import sys

import click
from rich.console import Console
from rich.text import Text

from .. import __version__
from ..errors import PcbenchError

__all__ = ["main", "cli"]

console = Console()
err_console = Console(stderr=True)


#: command -> (module in pcbench.cli that defines it, its one-line help for ``pcbench --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "compare": ("compare", "Rank several sample files at once: one multiclass classifier on all samples, the mean "
                           "log-posterior of each model on the reference's objects."),
    "datasets": ("data", "List the registered data sets: name, kind, files, size, source and cache status."),
    "demo": ("leaderboard", "Offline demo: simulate gluon jets, train the small generators a few minutes each, ..."),
    "evaluate": ("evaluate", "Validate SAMPLES, run its metric suite against the reference, print and record the "
                             "results."),
    "fetch": ("data", "Download data sets (NAME or NAME:KEY, e.g. jetnet30:g) into the cache, verified."),
    "geometry": ("geometry", "Cell geometries (CaloChallenge voxels, the ILD ECal grid)."),
    "leaderboard": ("leaderboard", "Comparable tables from result records; configs that make them; their reproduction."),
    "published": ("evaluate", "Print a benchmark's PUBLISHED numbers (never computed by pcbench), to see where a model "
                              "would rank."),
    "sample": ("models", "Sample N jets or showers from a checkpoint into a sample file, with the time per object."),
    "simulate": ("simulate", "Make offline data: jets with Pythia 8 + FastJet (docs/simulation-jets.md), or "
                             "PARAMETERISED calorimeter showers ..."),
    "time": ("cost", "Measure a checkpoint's cost: ms per object (repeats, warm-up excluded), parameters, FLOPs, "
                     "peak memory."),
    "train": ("models", "Train a generator: jets (checkpoints last.pt, best.pt by validation W1M) or showers ..."),
    "validate": ("data", "Check sample or data files; print every problem; exit 1 if any file has one."),
}


class _Group(click.Group):
    """A click group that imports a command's module only when the command runs, and prints
    pcbench's own errors as one clear line, without a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")  # its decorators add it to `cli`
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from ``COMMANDS``, without importing any command."""
        rows = [(name, COMMANDS[name][1] if name in COMMANDS else (self.commands[name].get_short_help_str()))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


def main() -> None:
    """Console-script entry point."""
    cli()
