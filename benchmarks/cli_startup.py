"""Time the start-up of the command line: ``pcbench --version``, ``pcbench --help`` and, for
comparison, a command that needs torch (``pcbench train --help``).

Run:
    .venv/bin/python benchmarks/cli_startup.py [--repeats 7]

Each command runs in a fresh interpreter ``--repeats`` times (after one warm-up run that fills the
OS file cache); prints the median and min wall-clock seconds and the 1-minute load average. Goal:
--help and --version under 0.5 s on an idle core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def _time(args: list[str], repeats: int) -> list[float]:
    cmd = [sys.executable, "-m", "pcbench", *args]
    subprocess.run(cmd, capture_output=True, check=True)  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    print(f"load average (1 min) before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for args in (["--version"], ["--help"], ["train", "--help"]):
        times = _time(args, a.repeats)
        print(f"pcbench {' '.join(args):<14} median {statistics.median(times):6.3f} s   min {min(times):6.3f} s   "
              f"({a.repeats} runs)")
    print(f"load average (1 min) after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
