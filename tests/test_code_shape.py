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
    "errors": 0, "_json": 0, "_version": 0, "_registry": 0, "_trace": 0, "_rules": 0, "_masks": 0, "_io": 0,
    "data": 1, "models": 1, "ticket": 1, "interop": 1,
    "training": 2,
    "pruning": 3,
    "graphs": 4,
    "analysis": 5,
    "study": 6,
    "cli": 7, "__main__": 7,
}
#: The modules the package root may hold (the core); everything else lives in a subpackage.
CORE = {"__init__", "__main__", "errors", "_version", "_json", "_rules", "_registry", "_trace", "_masks", "ticket",
        "interop", "_io"}
#: The subpackages of the root.
SUBPACKAGES = {"data", "models", "training", "pruning", "graphs", "analysis", "study", "cli"}
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
    cycles = list(nx.simple_cycles(graph))  # none allowed, lazy (function-level) imports included
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


def test_the_package_root_holds_only_the_core() -> None:
    modules = {p.stem for p in PKG.glob("*.py")}
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert modules <= CORE, f"modules at the package root outside the core (move them into a subpackage): {sorted(modules - CORE)}"
    assert packages == SUBPACKAGES, f"subpackages: {sorted(packages)}; update SUBPACKAGES (and the README's layout) with a reason"


def _readme_layers() -> list[list[str]]:
    """The layers of the README's "How the code is laid out" diagram, lowest first."""
    text = (PKG.parent / "README.md").read_text()
    section = text.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    layers = []
    for line in block.splitlines():
        if not line.strip() or line.strip() == "^":
            continue
        names = line.split("  ", 1)[0]
        layers.append([n.strip().rstrip("/") for n in names.split(",") if n.strip()])
    return layers


def test_readme_layout_matches_the_imports() -> None:
    layers = _readme_layers()
    assert layers, "the README's layout section has no diagram"
    rank = {name: i for i, names in enumerate(layers) for name in names}
    on_disk = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"} | SUBPACKAGES
    assert set(rank) == on_disk, (
        f"README layout names {sorted(set(rank) - on_disk)} that do not exist and misses {sorted(on_disk - set(rank))}")
    up = []
    for name, path in _modules():
        parts = name.split(".")
        if len(parts) == 1:
            continue
        mine = rank[parts[1]]
        for line, target in _imports(ast.parse(path.read_text())):
            tparts = target.split(".")
            if tparts[0] == "graphtickets" and len(tparts) > 1 and tparts[1] in rank and rank[tparts[1]] > mine:
                up.append(f"{path.relative_to(PKG.parent)}:{line} imports {target} (README: {tparts[1]} is above {parts[1]})")
    assert not up, "imports against the README's layout:\n" + "\n".join(up)


def test_readme_layout_agrees_with_layers() -> None:
    # the README and LAYERS describe one order: a name's README layer never inverts LAYERS
    rank = {name: i for i, names in enumerate(_readme_layers()) for name in names}
    inverted = [(a, b) for a in rank for b in rank if LAYERS[a] < LAYERS[b] and rank[a] > rank[b]]
    assert not inverted, f"README and LAYERS disagree on the order of {inverted}"


@pytest.mark.xfail(strict=True, reason="cli/tickets.py's prune still takes check_hparam_values from study.config "
                                        "until the hyper-parameter constraints move onto MethodSpec (issue 29, house-study)")
def test_no_cli_module_imports_the_study_config() -> None:
    bad = [f"{path.relative_to(PKG.parent)}:{line}" for name, path in _modules() if name.startswith("graphtickets.cli")
           for line, target in _imports(ast.parse(path.read_text())) if target.startswith("graphtickets.study.config")]
    assert not bad, "CLI modules import graphtickets.study.config: " + ", ".join(bad)
