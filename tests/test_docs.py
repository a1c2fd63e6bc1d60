"""The documentation's own machinery: the HTML link checker, the CLI/registry directive, the
gallery scripts' headers, and CI building the docs after the tests. (The site itself is built
by ``bash bootstrap.sh docs``, which CI runs after the test suite.)"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_link_checker_finds_broken_links_and_missing_images(tmp_path):
    check = _load(ROOT / "docs" / "check_html.py", "_gt_check_html")
    site = tmp_path / "html"
    (site / "sub").mkdir(parents=True)
    (site / "img.png").write_bytes(b"\x89PNG")
    (site / "index.html").write_text(
        '<html><body><h1 id="top">t</h1><a href="sub/page.html#here">ok</a><a href="#top">self</a>'
        '<a href="https://example.org/x">external</a><img src="img.png"></body></html>'
    )
    (site / "sub" / "page.html").write_text('<p id="here">x</p><a href="../index.html">up</a>')
    assert check.check(site) == []
    (site / "sub" / "page.html").write_text(
        '<p id="here">x</p><a href="../gone.html">a</a><a href="../index.html#nowhere">b</a>'
        '<img src="../missing.png">'
    )
    problems = check.check(site)
    assert len(problems) == 3
    assert any("missing file ../gone.html" in p for p in problems)
    assert any("no anchor #nowhere" in p for p in problems)
    assert any("missing image ../missing.png" in p for p in problems)
    assert check.main(["x", str(site)]) == 1


def test_cli_reference_covers_every_subcommand():
    pytest.importorskip("docutils")
    ext = _load(ROOT / "docs" / "_ext" / "cli_help.py", "_gt_cli_help")
    from graphtickets.cli import build_parser

    names = [n for n, _, _ in ext._subcommands(build_parser())]
    for cmd in ("prune", "train", "run", "compare", "import", "export"):
        assert cmd in names
    assert len(names) == len(set(names))


@pytest.mark.parametrize("registry", ["methods", "distances", "metrics", "models", "datasets"])
def test_registry_tables_list_every_entry(registry):
    pytest.importorskip("docutils")
    ext = _load(ROOT / "docs" / "_ext" / "cli_help.py", "_gt_cli_help")
    import graphtickets as gt

    header, rows = ext._rows(registry)
    reg = {"methods": gt.pruning.METHODS, "distances": gt.analysis.DISTANCES, "metrics": gt.analysis.METRICS,
           "models": gt.models.MODELS, "datasets": gt.data.DATASETS}[registry]
    assert [r[0] for r in rows] == [f"``{k}``" for k in reg]
    assert all(len(r) == len(header) for r in rows)
    # markup characters are escaped (|w| would be a substitution reference)
    assert not any(re.search(r"(?<!\\)\|", c) for r in rows for c in r[1:])


def test_gallery_scripts_have_a_title_and_stay_within_the_api():
    assert 6 <= len(EXAMPLES) <= 10
    for path in EXAMPLES:
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree, clean=False) or ""
        lines = doc.strip("\n").splitlines()
        assert len(lines) >= 3, path.name
        title, underline = lines[0], lines[1]
        assert underline == "=" * len(title), f"{path.name}: the title needs an '=' underline of its length"
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert imported <= {"graphtickets", "matplotlib", "numpy", "torch", "networkx", "tempfile", "pathlib"}, path.name


def test_ci_builds_the_docs_after_the_tests():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [ln.strip() for ln in ci if ln.strip().startswith("bash bootstrap.sh")]
    assert commands[0] == "bash bootstrap.sh test"  # the README's test command comes first
    assert "bash bootstrap.sh docs" in commands[1:]
    boot = (ROOT / "bootstrap.sh").read_text()
    assert "sphinx -W" in boot and "docs/check_html.py" in boot
    assert "bash bootstrap.sh docs" in (ROOT / "README.md").read_text()
