"""nnlint/ has no import cycle: every import counts, at module level, inside a function, or under
`if TYPE_CHECKING:` (a circle hidden in a function or a type-only import is still a circle between two
modules that each need the other). Shared code goes to a module below both instead."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nnlint"


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package (a package is its __init__.py)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    """The package's modules an import statement names: `from a.b import c` is a.b.c when c is a module,
    else a.b; relative imports are resolved from `module`."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    targets = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            targets.add(name)
    return targets


def import_graph(package: Path) -> dict[str, dict[str, list[int]]]:
    """module -> {imported module of the package: [lines]}, from every import statement in the file."""
    known = module_files(package)
    graph: dict[str, dict[str, list[int]]] = {}
    for module, path in known.items():
        edges: dict[str, list[int]] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in imported(module, path, node, known):
                    edges.setdefault(target, []).append(node.lineno)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, list[int]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def describe(graph: dict[str, dict[str, list[int]]], component: list[str]) -> str:
    edges = [
        f"  {source} -> {target} (line {', '.join(map(str, graph[source][target]))})"
        for source in component
        for target in sorted(graph[source])
        if target in component
    ]
    return "\n".join([" <-> ".join(component), *edges])


def test_nnlint_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert "nnlint.confirm.session" in graph and "nnlint.config" in graph  # the walk found the package
    found = cycles(graph)
    assert not found, "import cycles in nnlint/:\n" + "\n".join(describe(graph, c) for c in found)


def test_cycles_are_found_at_every_level(tmp_path):
    """The check sees a circle through a function-level import, a TYPE_CHECKING import and a relative
    import, and leaves a one-way import alone."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub.d import D\n")
    (package / "sub" / "d.py").write_text("from .. import c\n")
    (package / "e.py").write_text("import pkg.a\n")
    graph = import_graph(package)
    assert sorted(cycles(graph)) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.sub.d"]]
    assert graph["pkg.e"] == {"pkg.a": [1]}
