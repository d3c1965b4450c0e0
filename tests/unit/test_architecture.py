"""The library must run without Airflow (Lambda, CLI); only filegate.orchestration may import it."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "include" / "filegate"


def _airflow_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "airflow"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "airflow":
            found.append(node.module or "")
    return found


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


def test_nothing_imports_include_dot_filegate() -> None:
    root = LIBRARY.parents[1]
    offenders = [
        str(p.relative_to(root))
        for folder in ("dags", "plugins", "include", "tests", "infra", "bench")
        for p in (root / folder).rglob("*.py")
        if p.name != "test_architecture.py"
        and any(bad in p.read_text() for bad in ("from include.filegate", "import include.filegate"))
    ]
    assert offenders == []
