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


def test_no_cli_module_imports_the_study_config() -> None:
    bad = [f"{path.relative_to(PKG.parent)}:{line}" for name, path in _modules() if name.startswith("graphtickets.cli")
           for line, target in _imports(ast.parse(path.read_text())) if target.startswith("graphtickets.study.config")]
    assert not bad, "CLI modules import graphtickets.study.config: " + ", ".join(bad)


#: The dicts ``study/cell.py`` may read by string key: results and metadata it builds or gets
#: back (ticket ``meta``, ``extras``, ``results``, the driver's ``given`` tickets, evaluation
#: ``final`` numbers, ``history`` rows, a ticket's ``cost``, keyword dicts ``kw``, a method's
#: ``known`` hyperparameters, graph ``nodes``/``columns``) -- never a cell's config.
CELL_RESULT_DICTS = {"meta", "extras", "results", "given", "final", "history", "cost", "scost", "kw", "known",
                     "nodes", "columns"}


def _receiver(node: ast.expr) -> str:
    """The name a string-key read reads from: the first name or attribute under its chain of
    calls and subscripts (``ticket.meta.get("cost", {}).get("s")`` -> ``meta``,
    ``config["method"]["hparams"]`` -> ``config``)."""
    while True:
        if isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func.value
        else:
            break
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return type(node).__name__


def _string_key_reads(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    """``(line, receiver, key)`` of every ``x["k"]``, ``x.get/pop/setdefault("k", ...)`` and ``"k" in x``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            yield node.lineno, _receiver(node.value), node.slice.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("get", "pop", "setdefault") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.lineno, _receiver(node.func.value), node.args[0].value
        elif (isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
              and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops)):
            for right in node.comparators:
                yield node.lineno, _receiver(right), node.left.value


def test_cell_reads_the_typed_cell_never_string_keys_of_a_cell_config() -> None:
    """``study/cell.py`` reads a cell through its :class:`~graphtickets.study.spec.CellSpec` fields.

    Precisely: every string-key read in the module (a subscript with a ``str`` constant,
    ``.get``/``.pop``/``.setdefault`` with a ``str`` constant first argument, ``"k" in x``)
    reads from one of :data:`CELL_RESULT_DICTS` (see :func:`_receiver` for the name a read
    reads from). A cell's config (``config["method"]["hparams"]``, ``method.get("regime")``,
    ``"import" in method``) is read by ``CellSpec.from_config`` in ``study/spec.py`` only.
    """
    path = PKG / "study" / "cell.py"
    bad = [f"{path.relative_to(PKG.parent)}:{line} reads {key!r} from {recv}"
           for line, recv, key in _string_key_reads(ast.parse(path.read_text())) if recv not in CELL_RESULT_DICTS]
    assert not bad, "string-key reads of a cell config (read CellSpec fields instead):\n" + "\n".join(bad)
