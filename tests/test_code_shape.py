"""The shape of the code (issue 16): short functions, one direction of imports, no cycles.

These read the package's source with :mod:`ast` (nothing is imported or run), so they hold
for every module, including those a test never imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

PKG = Path(__file__).resolve().parents[1] / "graphtickets"

#: Layers, lowest first: a module may import its own layer and the ones below, never above.
LAYERS: dict[str, int] = {
    "errors": 0, "_json": 0, "_version": 0, "_registry": 0, "_trace": 0, "_rules": 0, "_masks": 0,
    "data": 1, "models": 1, "ticket": 1, "interop": 1,
    "training": 2,
    "pruning": 3,
    "graphs": 4,
    "analysis": 5,
    "study": 6,
    "cli": 7, "__main__": 7,
}
#: Import cycles allowed, with their reason: none (the Ticket's conversion shortcuts and
#: :mod:`graphtickets.interop` share the core in :mod:`graphtickets._masks` instead of importing each other).
ALLOWED_CYCLES: list[set[str]] = []
#: The longest a function may be (lines of code: no blank lines, comments or docstring).
MAX_LINES = 80


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
        yield ".".join(parts), path


def _imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module != "graphtickets":  # ``from graphtickets import x`` names its submodules
                yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "graphtickets" or len(parts) == 1:
        return None
    return LAYERS.get(parts[1])


def _code_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef, source: list[str]) -> int:
    body = fn.body
    first = body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    start = (first.end_lineno or first.lineno) + 1 if has_doc else first.lineno
    lines = source[start - 1 : fn.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def test_every_module_has_a_layer() -> None:
    unknown = [name for name, _ in _modules() if name != "graphtickets" and _layer(name) is None]
    assert not unknown, f"add these modules to LAYERS: {unknown}"


def test_imports_only_go_down_the_layers() -> None:
    up = []
    for name, path in _modules():
        mine = _layer(name)
        for line, target in _imports(ast.parse(path.read_text())):
            theirs = _layer(target) if target != "graphtickets" else max(LAYERS.values()) + 1
            if target.startswith("graphtickets") and mine is not None and theirs is not None and theirs > mine:
                up.append(f"{path.relative_to(PKG.parent)}:{line} imports {target}")
    assert not up, "imports against the layer order:\n" + "\n".join(up)


def test_no_import_cycle_between_modules() -> None:
    names = dict(_modules())
    graph = nx.DiGraph()
    for name, path in names.items():
        for _, target in _imports(ast.parse(path.read_text())):
            # a module's own package __init__ (importing a sibling through it) is not a cycle
            if target in names and target != name and not name.startswith(target + "."):
                graph.add_edge(name, target)
    cycles = [c for c in nx.simple_cycles(graph) if set(c) not in ALLOWED_CYCLES]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_function_longer_than_the_limit_without_a_reason() -> None:
    long = []
    for _, path in _modules():
        source = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(source))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node, source)
                reason = any("long-function:" in line for line in source[node.lineno - 1 : node.lineno + 2])
                if n > MAX_LINES and not reason:
                    long.append(f"{path.relative_to(PKG.parent)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {MAX_LINES} lines of code (split them, or state why with a 'long-function:' comment):\n" + "\n".join(long)


@pytest.mark.parametrize("name", ["data", "models", "training", "pruning", "graphs", "analysis", "study"])
def test_subpackage_docstring_says_where_imports_go(name: str) -> None:
    path = PKG / name / "__init__.py" if (PKG / name).is_dir() else PKG / f"{name}.py"
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "import" in doc.lower(), f"{path.relative_to(PKG.parent)}: say in the module docstring which way imports go"
