"""The report's sections: tables from the analysis stage, one BH over every test, the Answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphtickets.errors import GraphticketsError
from graphtickets.study import run, sections
from graphtickets.study.sections import Claim, Context, Section

TINY = {
    "name": "tiny",
    "datasets": ["digits"],
    "models": [{"name": "mlp", "widths": [16, 16]}],
    "methods": {"random": {"scope": "global"}, "magnitude": {}},
    "densities": [0.2],
    "seeds": [0],
    "train": {"epochs": 1},
    "analysis": {"null_samples": 3},
}


def _bh_by_hand(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg written from its definition: q_(i) = min over j >= i of p_(j) m / j."""
    m = len(p)
    rank = {v: int(np.sum(p <= v)) for v in p}  # j: how many p are at most p_(j)
    return np.array([min(1.0, min(v * m / rank[v] for v in p if v >= p[i])) for i in range(m)])


def _tests(ps: list[float], prefix: str = "t") -> pd.DataFrame:
    return pd.DataFrame({"test": [f"{prefix}{i}" for i in range(len(ps))], "question": "q", "family": "f",
                         "statistic": np.arange(len(ps), dtype=float), "p": ps, "unit": "init seed", "n": 3})


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Section]:
    """An empty section registry (the package's own sections are put back afterwards)."""
    reg: dict[str, Section] = {}
    monkeypatch.setattr(sections, "SECTIONS", reg)
    monkeypatch.setattr(sections, "MODULES", [])
    return reg


def _section(name: str, ps: list[float], order: int = 0, claims: list[Claim] | None = None,
             extra: dict[str, pd.DataFrame] | None = None) -> Section:
    def compute(ctx: Context) -> dict[str, pd.DataFrame]:
        return {"tests": _tests(ps), **(extra or {})}

    def render(tables: object, ctx: Context) -> list[tuple[str, object]]:
        return [("h2", f"section {name}"), ("p", f"{len(ps)} tests")]

    return Section(name=name, title=name, order=order, compute=compute, render=render,
                   claims=lambda tables: list(claims or []))


def _ctx(tmp_path: Path) -> Context:
    return Context(out=tmp_path, tickets=pd.DataFrame(), distances=pd.DataFrame())


def test_one_bh_over_the_tests_of_every_section(registry: dict[str, Section], tmp_path: Path) -> None:
    a, b = [0.001, 0.02, 0.04, 0.3], [0.01, 0.5, np.nan]
    sections.register(_section("a", a, order=2))
    sections.register(_section("b", b, order=1))
    tabs = sections.compute_all(_ctx(tmp_path))
    assert list(tabs) == ["b", "a"]  # report order
    tests = sections.collect_tests(tabs)
    assert tests.attrs["tests"] == 6  # the NaN p is a test not made
    made = tests[tests["p"].notna()]
    expect = _bh_by_hand(made["p"].to_numpy())
    np.testing.assert_allclose(made["q"], expect)
    assert tests["q"].isna().sum() == 1 and set(tests["section"]) == {"a", "b"}


def test_answer_states_a_claim_only_when_its_test_holds(registry: dict[str, Section], tmp_path: Path) -> None:
    claims = [Claim(test="t0", text="A holds", absent="The data do not show A."),
              Claim(test="t1", text="B holds", absent="The data do not show B.", figure="b.png"),
              Claim(test="t2", text="C holds")]
    sections.register(_section("s", [1e-6, 0.9, 0.8], claims=claims))
    tabs = sections.compute_all(_ctx(tmp_path))
    said = [t for t, _ in sections.answer(tabs, sections.collect_tests(tabs))]
    assert said == ["A holds (q < 0.001)", "The data do not show B."]  # C: failed and no absent text
    # the same claim with its effect gone: the sentence disappears, the "not shown" one comes instead
    registry.clear()
    sections.register(_section("s", [0.6, 0.9, 0.8], claims=claims))
    tabs = sections.compute_all(_ctx(tmp_path))
    said = [t for t, _ in sections.answer(tabs, sections.collect_tests(tabs))]
    assert said == ["The data do not show A.", "The data do not show B."]


def test_answer_has_at_most_ten_sentences_by_priority(registry: dict[str, Section], tmp_path: Path) -> None:
    claims = [Claim(test=f"t{i}", text=f"claim {i}", priority=20 - i) for i in range(14)]
    sections.register(_section("s", [1e-4] * 14, claims=claims))
    tabs = sections.compute_all(_ctx(tmp_path))
    said = [t.split(" (")[0] for t, _ in sections.answer(tabs, sections.collect_tests(tabs))]
    assert len(said) == sections.MAX_ANSWER and said[0] == "claim 13" and "claim 0" not in said


def test_two_sections_writing_one_table_is_an_error(registry: dict[str, Section], tmp_path: Path) -> None:
    same = {"shared": pd.DataFrame({"x": [1]})}
    sections.register(_section("a", [0.1], extra=same))
    sections.register(_section("b", [0.1], extra=same))
    with pytest.raises(GraphticketsError, match="both write tables/shared.csv"):
        sections.compute_all(_ctx(tmp_path))


def test_a_tests_table_without_its_columns_is_an_error(registry: dict[str, Section], tmp_path: Path) -> None:
    bad = Section(name="bad", title="bad", order=0, compute=lambda ctx: {"tests": pd.DataFrame({"p": [0.1]})},
                  render=lambda tables, ctx: [])
    sections.register(bad)
    with pytest.raises(GraphticketsError, match="lacks columns"):
        sections.compute_all(_ctx(tmp_path))


def test_a_study_writes_section_tables_and_opens_with_the_answer(registry: dict[str, Section],
                                                                  tmp_path: Path) -> None:
    def compute(ctx: Context) -> dict[str, pd.DataFrame]:
        tk = ctx.tickets[ctx.tickets["method"] != "dense"]  # the section sees the study's own tables
        t = _tests([1e-5])
        t["n"] = len(tk)
        return {"tests": t, "toy": tk[["method", "accuracy"]].reset_index(drop=True)}

    sections.register(Section(name="toy", title="Toy", order=0, compute=compute,
                              render=lambda tables, ctx: [("h2", "Toy section"), ("table", tables["toy"])],
                              claims=lambda tables: [Claim(test="t0", text="The toy effect holds")]))
    out = tmp_path / "out"
    run(TINY, out, progress=False)
    toy = pd.read_csv(out / "tables" / "toy.csv")
    assert sorted(toy["method"]) == ["magnitude", "random"]
    tests = pd.read_csv(out / "tables" / "tests.csv")
    assert list(tests[["section", "test"]].itertuples(index=False, name=None)) == [("toy", "t0")]
    assert tests.loc[0, "n"] == 2 and tests.loc[0, "q"] == pytest.approx(1e-5)
    md = (out / "report.md").read_text().splitlines()
    assert md[0].startswith("# graphtickets study") and "## Answer" in md[:6]
    assert any(line.startswith("- The toy effect holds (q < 0.001)") for line in md[:10])
    assert "## Toy section" in md and md.index("## Toy section") > md.index("## Answer")
    html = (out / "report.html").read_text()
    assert html.index("Answer") < html.index("Setup") < html.index("Toy section")


def test_answer_states_what_holds_before_what_does_not(registry: dict[str, Section], tmp_path: Path) -> None:
    claims = [Claim(test="t0", text="early fails", absent="The data do not show the first.", priority=1),
              Claim(test="t1", text="late holds", priority=90)]
    sections.register(_section("s", [0.9, 1e-5], claims=claims))
    tabs = sections.compute_all(_ctx(tmp_path))
    said = [t for t, _ in sections.answer(tabs, sections.collect_tests(tabs))]
    assert said == ["late holds (q < 0.001)", "The data do not show the first."]


def test_skip_sections_leaves_a_section_out_and_says_so(registry: dict[str, Section], tmp_path: Path) -> None:
    ran: list[str] = []

    def section(name: str) -> Section:
        def compute(ctx: Context) -> dict[str, pd.DataFrame]:
            ran.append(name)
            return {f"{name}_table": pd.DataFrame({"x": [1]})}
        return Section(name=name, title=f"Title of {name}", order=0, compute=compute,
                       render=lambda tables, ctx: [("h2", f"section {name}")])

    sections.register(section("kept"))
    sections.register(section("costly"))
    out = tmp_path / "out"
    run({**TINY, "analysis": {**TINY["analysis"], "skip_sections": ["costly"]}}, out, progress=False)
    assert ran == ["kept"]
    assert (out / "tables" / "kept_table.csv").exists() and not (out / "tables" / "costly_table.csv").exists()
    md = (out / "report.md").read_text()
    assert "## section kept" in md and "## section costly" not in md
    assert "analysis.skip_sections): Title of costly." in md


def test_an_unknown_skipped_section_is_refused_before_anything_is_written(registry: dict[str, Section],
                                                                          tmp_path: Path) -> None:
    sections.register(_section("kept", [0.5]))
    out = tmp_path / "out"
    with pytest.raises(GraphticketsError, match=r"skip_sections: no report section is called 'nosuch'.*kept"):
        run({**TINY, "analysis": {**TINY["analysis"], "skip_sections": ["nosuch"]}}, out, progress=False)
    assert not out.exists() or not any(out.iterdir())
