"""The library must run without Airflow (Lambda, CLI); only filegate.orchestration may import it."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "include" / "filegate"


def _imports_of(path: Path, top: str) -> list[str]:
    """Modules under the top-level package `top` that a file imports, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == top]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == top:
            found.append(node.module or "")
    return found


def _airflow_imports(path: Path) -> list[str]:
    return _imports_of(path, "airflow")


def test_library_outside_orchestration_never_imports_airflow() -> None:
    offenders = {
        str(path.relative_to(LIBRARY)): imports
        for path in LIBRARY.rglob("*.py")
        if "orchestration" not in path.relative_to(LIBRARY).parts and (imports := _airflow_imports(path))
    }
    assert offenders == {}


def test_the_guard_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from airflow.sdk import task\n    import airflow.models\n")
    assert _airflow_imports(sample) == ["airflow.sdk", "airflow.models"]


def test_nothing_imports_the_library_through_include() -> None:
    """MWAA has no include/ folder: the library is imported as `filegate`."""
    root = LIBRARY.parents[1]
    offenders = {
        str(p.relative_to(root)): imports
        for folder in ("dags", "plugins", "include", "tests", "infra", "bench")
        for p in (root / folder).rglob("*.py")
        if (imports := _imports_of(p, "include"))
    }
    assert offenders == {}
