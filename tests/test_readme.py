"""The README's set-up commands and .ci/run agree."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = ROOT.joinpath("README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    assert len(blocks) == 2 and all("\n" not in b for b in blocks)
    ci_last = [ln for ln in ROOT.joinpath(".ci/run").read_text().splitlines() if ln.strip()][-1]
    assert ci_last == blocks[1]
    assert "pytest" in blocks[1]


def test_ci_runs_the_suite_in_a_clone_with_nothing_beside_it():
    """.ci/run's steps before the README command make a clone of the checkout with nothing beside it
    (no shared data folder); the tests that once read that folder pass there, with pcbench imported from the
    clone."""
    steps = [ln for ln in ROOT.joinpath(".ci/run").read_text().splitlines() if ln.strip()][:-1]
    where = "import pcbench, pathlib; print('PKG=' + str(pathlib.Path(pcbench.__file__).parents[1]))"
    probe = (f'echo "COPY=$PWD"; echo "BESIDE=$(ls -A ..)"; "{sys.executable}" -c "{where}" && '
             f'"{sys.executable}" -m pytest -q -p no:cacheprovider tests/test_geometry.py -k "shipped or voxel_counts"')
    env = {**os.environ, "PYTHONPATH": "."}  # the clone's pcbench, not this checkout's
    res = subprocess.run(["bash", "-c", "\n".join(steps + [probe]), str(ROOT / ".ci" / "run")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    out = dict(ln.split("=", 1) for ln in res.stdout.splitlines() if ln[:4] in ("COPY", "BESI", "PKG="))
    copy = Path(out["COPY"])
    assert copy.name == "pcbench" and copy.resolve() != ROOT and out["BESIDE"] == "pcbench"
    assert Path(out["PKG"]).resolve() == copy.resolve()
    assert "5 passed" in res.stdout
    assert not copy.exists()  # the clone is removed afterwards
