"""The README's set-up commands and .ci/run agree."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = ROOT.joinpath("README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    assert len(blocks) == 2 and all("\n" not in b for b in blocks)
    ci_last = [ln for ln in ROOT.joinpath(".ci/run").read_text().splitlines() if ln.strip()][-1]
    assert ci_last == blocks[1]
    assert "pytest" in blocks[1]
