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


def _imports(path: Path) -> set[str]:
    """The top-level pcbench packages or modules that ``path`` imports (relative or absolute)."""
    parts = path.relative_to(PKG).parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = list(parts[:len(parts) - node.level + 1])
            target = base + (node.module.split(".") if node.module else [])
            out |= {target[0]} if target else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pcbench."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pcbench.")}
    return out


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
