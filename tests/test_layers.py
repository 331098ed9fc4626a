"""The house's rule: each layer imports only the layers before it, and no module imports itself round a circle.

schemas (contracts) <- media <- adapters <- {ingest, processors, sink} <- compose; the three stages never
import each other. Every import counts, those inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"schemas": 0, "media": 1, "adapters": 2, "ingest": 3, "processors": 3, "sink": 3, "compose": 4}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def imports_of(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in named if module in MODULES and module != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def layer(module: str) -> tuple[str, int]:
    top = module.split(".")[0]
    return top, LAYERS[top]


def test_every_import_runs_down_the_layers():
    wrong = []
    for module, imported in GRAPH.items():
        top, level = layer(module)
        for target in imported:
            target_top, target_level = layer(target)
            if target_top != top and target_level >= level:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
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


def test_no_module_imports_itself_round_a_circle():
    assert circles(GRAPH) == []


def test_no_folder_imports_itself_round_a_circle():
    def folder(module: str) -> str:
        path = MODULES[module]
        return str(path.parent.relative_to(ROOT))

    folders: dict[str, set[str]] = {}
    for module, imported in GRAPH.items():
        folders.setdefault(folder(module), set()).update(folder(t) for t in imported if folder(t) != folder(module))
    assert circles(folders) == []


def test_the_rule_catches_a_wrong_arrow():
    graph = {"media.x": {"adapters.y"}, "adapters.y": set()}
    assert [m for m, ts in graph.items() for t in ts if layer(t)[1] >= layer(m)[1] and layer(t)[0] != layer(m)[0]]
    assert circles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]


SOURCES = sorted({*MODULES.values(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")})


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines"
