"""The command line starts without loading the heavy libraries, and its lazy list of commands
says what the commands themselves say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from pcbench.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[1]


def test_help_and_version_import_no_heavy_library():
    """Timing is a benchmark's job (benchmarks/cli_startup.py); here: what --help imports."""
    code = ("import sys\nfrom pcbench.cli import cli\n"
            "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'numba', 'h5py', 'scipy', 'matplotlib', 'numpy', 'sklearn') "
            "if m in sys.modules))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert "LOADED []" in out and "train " in out and "evaluate " in out


def test_the_lazy_help_lines_are_the_commands_own():
    ctx = click.Context(cli)
    for name, (module, short) in COMMANDS.items():
        cmd = cli.get_command(ctx, name)
        assert cmd is not None and cmd.callback.__module__ == f"pcbench.cli.{module}", name
        full = " ".join((cmd.help or "").split())
        assert full.startswith(short.removesuffix("...").strip()), (name, short, full)
    assert set(cli.commands) <= set(COMMANDS)  # every command is listed
