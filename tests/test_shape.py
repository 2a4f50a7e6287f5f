"""The package's shape (design.md section 5): small modules, no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "django_objectstore"
#: The Django layer: the package's own modules, not the client or the server.
DJANGO_LAYER = sorted([*PACKAGE.glob("*.py"), *PACKAGE.glob("management/**/*.py")])


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found.update(n for n in names if n in known)
    return found


def test_no_module_over_450_lines() -> None:
    long = {
        path.name: n
        for path in DJANGO_LAYER
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 450
    }
    assert long == {}


def test_no_client_module_over_450_lines() -> None:
    long = {
        path.name: n
        for path in sorted((PACKAGE / "client").glob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 450
    }
    assert long == {}


def test_no_import_cycles() -> None:
    modules = {_module(path): path for path in DJANGO_LAYER}
    known = set(modules) - {"django_objectstore"}
    graph = {name: _imports(path, known) - {name} for name, path in modules.items()}
    assert graph["django_objectstore.storage"], "the import scan found nothing"
    cycles = []
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append([*trail[trail.index(name) :], name])
            return
        if name in done:
            return
        for dep in sorted(graph.get(name, ())):
            visit(dep, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []
