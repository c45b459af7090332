"""Assertions shared by the tests that drive bad input through the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import Result

ROOT = Path(__file__).resolve().parents[1]


def assert_one_line_error(res: Result, code: int, *fragments: str) -> str:
    """The command exited with ``code``, raised nothing past the CLI's handler (so printed no
    traceback), and printed exactly one error line, which holds every fragment; returns that line."""
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.lower().startswith("error:")]
    assert len(lines) == 1, res.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder that exists but where files cannot be created, also for root (who ignores modes)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def pcbench_process(*code_args: str, **popen) -> subprocess.Popen:
    """A second Python process running ``code_args`` with this checkout first on its path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, *code_args], env=env, text=True, **popen)


def hold_run_lock(target: Path) -> subprocess.Popen:
    """Another process that holds the run lock of ``target`` until its stdin is closed."""
    code = ("import sys\nfrom pcbench.data.workfiles import run_lock\n"
            "with run_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")
    proc = pcbench_process("-c", code, str(target), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held"
    return proc
