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
