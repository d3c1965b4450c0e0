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


# -- layers ------------------------------------------------------------------------------------------------------
# Each package of the library imports only packages of lower layers (imports inside functions count), so the
# import graph has no cycle and a reader can start at the bottom. docs/architecture.md explains each layer.
LAYERS: list[set[str]] = [
    {"settings", "storage", "expressions", "cron", "profiling", "delivery", "alerts", "functions", "sample_files",
     "schema_drift"},
    {"contracts", "status"},  # the file model
    {"parsers", "validation", "schedule"},  # reading and checking (files, and whether they came on time)
    {"transforms", "loading", "ingestion", "reporting", "callbacks", "lineage"},  # file work (lineage: of files)
    {"pipeline", "ask"},  # work over files and their results (ask: questions over the aggregates and statuses)
    {"lambdas", "cli", "orchestration"},  # entry points
]


def package_graph(root: Path) -> dict[str, set[str]]:
    """Top-level package (or module) of `root` → the other ones it imports, anywhere in its files."""
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if parts == ("__init__.py",):
            continue
        package = parts[0].removesuffix(".py")
        imported = {m.split(".")[1] for m in _imports_of(path, root.name) if m.count(".") >= 1}
        graph.setdefault(package, set()).update(imported - {package})
    return graph


def module_graph(root: Path) -> dict[str, set[str]]:
    """Module → the library modules it imports (`from a.b import c` counts a.b, and a.b.c when it is a module)."""
    def name_of(path: Path) -> str:
        dotted = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        return dotted.removesuffix(".__init__")

    modules = {name_of(p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_packages_import_only_lower_layers() -> None:
    layer_of = {package: n for n, layer in enumerate(LAYERS) for package in layer}
    graph = package_graph(LIBRARY)
    assert set(graph) <= set(layer_of), f"packages without a layer: {sorted(set(graph) - set(layer_of))}"
    upward = {f"{package} → {other}" for package, imported in graph.items() for other in imported
              if layer_of[other] >= layer_of[package]}
    assert upward == set()


def test_no_import_cycle_between_packages_or_modules() -> None:
    assert cycles(package_graph(LIBRARY)) == []
    assert cycles(module_graph(LIBRARY)) == []


def test_the_cycle_guard_sees_a_lazy_import_cycle(tmp_path: Path) -> None:
    library = tmp_path / "filegate"
    for package, body in {"status": "from filegate.storage.keys import x\n",
                          "storage": "def f():\n    from filegate.status.store import y\n"}.items():
        (library / package).mkdir(parents=True)
        (library / package / "__init__.py").write_text("")
        (library / package / ("store.py" if package == "status" else "keys.py")).write_text(body)
    assert cycles(package_graph(library)) == [["status", "storage"]]
    assert cycles(module_graph(library)) == [["filegate.status.store", "filegate.storage.keys"]]


def test_no_two_library_modules_share_a_name() -> None:
    """`store.py` in two packages made every reader ask which store; a name says one thing in the library."""
    seen: dict[str, list[str]] = {}
    for path in LIBRARY.rglob("*.py"):
        if path.name != "__init__.py":
            seen.setdefault(path.name, []).append(str(path.relative_to(LIBRARY)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
