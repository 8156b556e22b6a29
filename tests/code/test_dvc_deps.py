"""Every DVC stage's code deps are what the stage imports, at package granularity (editing a module re-runs
the stages whose packages import it), and the package layers import one way (models never import evaluation).

Imports are read statically (``ast``), transitively, including imports inside functions (a stage may call
them); a package import counts its ``__init__.py``. A dep that is a package folder must hold a module the
stage imports; every imported module must sit under a dep.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def _module_file(name: str) -> Path | None:
    """The file of module ``churnflow.x.y`` (package → its __init__.py), or None when not ours."""
    if not name.startswith("churnflow"):
        return None
    base = SRC.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imports(path: Path) -> set[str]:
    """Module names ``path`` imports (``from a import b`` yields ``a`` and ``a.b``: b may be a module)."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _closure(start: Path) -> set[Path]:
    """Every churnflow source file ``start`` reaches through imports (with the parent packages)."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                file = _module_file(".".join(parts[:i]))
                if file is not None and file not in seen:
                    todo.append(file)
    return seen


def _stages() -> dict[str, dict]:  # type: ignore[type-arg]
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_deps_are_its_imports(stage: str) -> None:
    spec = _stages()[stage]
    script = REPO / "stages" / f"{stage}.py"
    assert script.is_file(), f"stage {stage!r} has no stages/{stage}.py"
    imported = {p for p in _closure(script) if p != script and SRC in p.parents}
    code_deps = [
        REPO / d
        for d in spec.get("deps", [])
        if str(d).startswith(("src/", "stages/")) and "${" not in str(d)
    ]
    assert script in code_deps, f"{stage}: stages/{stage}.py is not a dep"

    def covered(path: Path) -> bool:
        return any(path == d or d in path.parents for d in code_deps)

    missing = sorted(str(p.relative_to(REPO)) for p in imported if not covered(p))
    assert not missing, f"{stage}: imports code its deps do not list: {missing}"
    unused = sorted(
        str(d.relative_to(REPO))
        for d in code_deps
        if d != script and not any(p == d or d in p.parents for p in imported)
    )
    assert not unused, f"{stage}: deps list code the stage never imports: {unused}"


def test_models_never_import_evaluation() -> None:
    """One-way layers: evaluation uses models; models (training, decisions) do not use evaluation."""
    offenders = {
        str(path.relative_to(REPO))
        for path in (SRC / "churnflow" / "models").glob("*.py")
        if any(name.startswith("churnflow.evaluation") for name in _imports(path))
    }
    assert not offenders, offenders
