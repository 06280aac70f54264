"""The domain package's modules import one another without a circle, counting the imports made
inside functions (a deferred import hides a circle from Python, not from the reader)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "app.domain"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / "app" / "domain").rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of `known` that this statement imports."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if node.level:  # relative: from the module's package, one level up per extra dot
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    found = set()
    for alias in node.names:
        if f"{source}.{alias.name}" in known:  # `from app.domain import leads`
            found.add(f"{source}.{alias.name}")
        elif source in known:  # `from app.domain.leads import accept`
            found.add(source)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):  # every import, at module level or inside a function
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges |= _imported(node, name, path.name == "__init__.py", known)
        edges.discard(name)
        edges.discard(PACKAGE)  # the package's own __init__, which imports nothing of its own
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each module that is in one (depth-first search)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for after in sorted(graph.get(node, ())):
            if state.get(after) == 1:
                found.append([*path[path.index(after) :], after])
            elif after not in state:
                visit(after)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_domain_package_has_no_import_cycles() -> None:
    graph = import_graph()
    assert "app.domain.leads" in graph and "app.domain.registrations" in graph["app.domain.leads"]
    found = cycles(graph)
    assert not found, "import circles in app/domain:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_check_finds_a_circle_hidden_in_a_function() -> None:
    source = "def later():\n    from app.domain import a\n"
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom))
    known = {"app.domain.a", "app.domain.b"}
    graph = {"app.domain.a": {"app.domain.b"}, "app.domain.b": _imported(node, "app.domain.b", False, known)}
    assert cycles(graph) == [["app.domain.a", "app.domain.b", "app.domain.a"]]
