"""The README's five-minute tour runs as written (its python block, executed verbatim)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tour() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## A five-minute tour", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "the README's tour has no python block"
    return match.group(1)


@pytest.mark.slow
def test_readme_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the tour writes snip.safetensors into the working folder
    out = io.StringIO()
    namespace: dict[str, object] = {"__name__": "__readme__"}
    with contextlib.redirect_stdout(out):
        exec(compile(_tour(), "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    assert (tmp_path / "snip.safetensors").exists()
    assert out.getvalue().strip(), "the tour prints its results"
    snip, same = namespace["snip"], namespace["same"]
    assert same.masks.keys() == snip.masks.keys()  # type: ignore[attr-defined]
    assert all((same.masks[k] == snip.masks[k]).all() for k in snip.masks)  # type: ignore[attr-defined]
    assert abs(snip.density - 0.05) < 1e-3  # type: ignore[attr-defined]
    table = namespace["table"]
    assert {"a", "b", "kind", "value", "z"} <= set(table.columns)  # type: ignore[attr-defined]
    assert len(table) and table["value"].notna().all()  # type: ignore[attr-defined]


def _method_table() -> dict[str, str]:
    """``{method name: kind}`` of the README's method table (its rows start with a backquoted name)."""
    rows = re.findall(r"^\| `([a-z_<>:]+)` \| ([a-z ]+) \|", (ROOT / "README.md").read_text(), flags=re.M)
    return {name: kind.strip() for name, kind in rows}


def test_readme_method_table_lists_every_registered_method() -> None:
    # every method a user can name (the registry, with the graph-built `relational`) has its row,
    # and every row names a registered method (or the `:held_out` form of the derived ones)
    import graphtickets.graphs.derived  # noqa: F401  (registers `relational`)
    from graphtickets.pruning.core import METHODS

    table = _method_table()
    missing = sorted(set(METHODS) - set(table))
    assert not missing, f"the README's method table has no row for {missing}: add one per method"
    unknown = sorted(n for n in table if n not in METHODS and n != "<derived>:held_out")
    assert not unknown, f"the README's method table lists {unknown}, which no registry entry has"
    derived = {n for n, spec in METHODS.items() if spec.kind == "derived"}
    assert derived and all(table[n] == "derived" for n in derived)
