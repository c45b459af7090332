"""The package's layers, as the README draws them: no module imports upward or sideways.

    cli
    leaderboard
    evaluate   models        (side by side: neither imports the other)
    data       metrics       (side by side, on geometry)
    geometry
    _private helpers, errors (pcbench/_*.py: shared by all, import nothing above them)
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pcbench"

#: what each layer may import (besides itself, the private helpers and errors)
ALLOWED = {
    "geometry": set(),
    "data": {"geometry"},
    "metrics": {"geometry"},
    "evaluate": {"data", "metrics", "geometry"},
    "models": {"data", "metrics", "geometry"},
    "leaderboard": {"evaluate", "models", "data", "metrics", "geometry"},
    "cli": {"leaderboard", "evaluate", "models", "data", "metrics", "geometry"},
}


def _targets(path: Path) -> list[list[str]]:
    """Every module path (under pcbench, as parts) that ``path`` imports, relative or absolute; a
    bare ``from . import x`` gives ``[x]`` for each name."""
    parts = path.relative_to(PKG).parts[:-1]
    out: list[list[str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = list(parts[:len(parts) - node.level + 1])
            target = base + (node.module.split(".") if node.module else [])
            out += [target] if target else [[a.name] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pcbench."):
            out.append(node.module.split(".")[1:])
        elif isinstance(node, ast.Import):
            out += [a.name.split(".")[1:] for a in node.names if a.name.startswith("pcbench.")]
    return out


def _imports(path: Path) -> set[str]:
    """The top-level pcbench packages or modules that ``path`` imports."""
    return {t[0] for t in _targets(path)}


def test_no_module_imports_upward_or_sideways():
    problems = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        layer = rel.parts[0] if len(rel.parts) > 1 else None
        for target in _imports(path):
            if target.startswith("_") or target in ("errors", layer):
                if layer is None and not target.startswith("_") and target != "errors":
                    problems.append(f"{rel} imports {target}")
                continue
            if layer is None:  # a private helper or pcbench/__init__, __main__
                if rel.name not in ("__init__.py", "__main__.py"):
                    problems.append(f"{rel} (a helper) imports the layer {target}")
                continue
            if target not in ALLOWED[layer]:
                problems.append(f"{rel} ({layer}) imports {target}")
    assert problems == [], "\n".join(problems)


def test_the_layers_exist_and_the_checker_sees_imports():
    assert set(ALLOWED) <= {p.name for p in PKG.iterdir() if p.is_dir()}
    assert "data" in _imports(PKG / "evaluate" / "__init__.py") and "geometry" in _imports(PKG / "data" / "validate.py")


def test_jet_and_shower_generators_are_siblings_on_the_shared_training_code():
    """models/jets and models/showers never import each other nor anything above them (the
    registry, the library functions, sampling); the shared pieces (the Generator interface,
    checkpoints, the one training loop, configs, the network blocks in nets/) import neither; the registry and api sit above."""
    models = PKG / "models"

    def targets(path: Path) -> set[str]:
        return {t[1] for t in _targets(path) if t[:1] == ["models"] and len(t) > 1}

    for kind, other in (("jets", "showers"), ("showers", "jets")):
        for path in (models / kind).rglob("*.py"):
            assert other not in targets(path), f"{path.relative_to(PKG)} imports models.{other}"
            upward = targets(path) & {"registry", "api", "sampling"}
            assert not upward, f"{path.relative_to(PKG)} imports models.{upward.pop()} (upward)"
    for shared in ("generator", "checkpoints", "trainer", "config"):
        assert not targets(models / f"{shared}.py") & {"jets", "showers", "registry", "api"}, shared
    blocks = list((models / "nets").rglob("*.py"))  # the network blocks both kinds share import neither
    assert len(blocks) >= 5 and all(not targets(p) & {"jets", "showers", "registry", "api", "sampling"} for p in blocks)
    assert {"jets", "showers"} <= targets(models / "registry.py")
    assert "registry" in targets(models / "api.py")
