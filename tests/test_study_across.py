"""Findings across architectures: per-architecture report sections and the 'holds on both' table.

Oracles: scipy's paired t-test and its Benjamini-Hochberg (``false_discovery_control``) on
accuracies read from the study store; the most-alike rows are a ranking (the null tests are the ladder's).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from graphtickets.study import across

# ---------------------------------------------------------------------------- pure functions


def _st(rows: list[tuple[str, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame([{"topic": t, "statement": s, "holds": h, "detail": "d", "test": s} for t, s, h in rows])


def test_holds_table_both_only_one_neither_and_not_tested() -> None:
    a = _st([("accuracy order", "x", True), ("accuracy order", "y", True), ("sanity check", "z", False),
             ("most alike", "w", True)])
    b = _st([("accuracy order", "x", True), ("accuracy order", "y", False), ("sanity check", "z", False)])
    t = across.holds_table({"A": a, "B": b}).set_index("statement")
    assert t.loc["x", "holds_on"] == "both" and t.loc["y", "holds_on"] == "only A"
    assert t.loc["w", "holds_on"] == "only A" and t.loc["w", "B"] == "not tested" and t.loc["y", "B"] == "no"
    assert "z" not in t.index  # holds nowhere: only with keep_all
    full = across.holds_table({"A": a, "B": b}, keep_all=True).set_index("statement")
    assert full.loc["z", "holds_on"] == "neither"
    assert list(t.index) == ["x", "y", "w"]  # topic order, then statements holding on both first


def test_accuracy_statements_match_scipy_paired_t_and_bh() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for d in (0.5, 0.1):
        for m, shift in (("a", 0.2), ("b", 0.0), ("c", 0.01)):
            for s in range(4):
                rows.append({"method": m, "density": d, "seed": s, "accuracy": 0.5 + shift + 0.01 * rng.standard_normal(),
                             "variant": "", "replicate": 0})
    rows.append({"method": "dense", "density": 1.0, "seed": 0, "accuracy": 0.9, "variant": "", "replicate": 0})
    tk = pd.DataFrame(rows)
    out = across.accuracy_statements(tk)
    tests, keys = [], []
    for d in (0.1, 0.5):
        for x, y in (("a", "b"), ("a", "c"), ("b", "c")):
            ax = tk[(tk.method == x) & (tk.density == d)].sort_values("seed")["accuracy"].to_numpy()
            ay = tk[(tk.method == y) & (tk.density == d)].sort_values("seed")["accuracy"].to_numpy()
            r = stats.ttest_rel(ax, ay)
            tests.append(r.pvalue)
            keys.append((x, y, d, float(np.mean(ax - ay))))
    q = stats.false_discovery_control(tests, method="bh")
    assert len(out) == 2 * len(tests)  # both directions of every pair
    for (x, y, d, diff), qi in zip(keys, q, strict=True):
        fwd = out[out["statement"] == f"{x} more accurate than {y} at d={d:g}"].iloc[0]
        back = out[out["statement"] == f"{y} more accurate than {x} at d={d:g}"].iloc[0]
        assert fwd["holds"] == bool(qi <= 0.05 and diff > 0) and back["holds"] == bool(qi <= 0.05 and diff < 0)
        assert f"q = {qi:.2g}" in fwd["detail"]
    assert out[out["statement"] == "a more accurate than b at d=0.5"]["holds"].item()


def test_statements_need_two_seeds() -> None:
    tk = pd.DataFrame({"method": ["a", "b"], "density": [0.5, 0.5], "seed": [0, 0], "accuracy": [0.9, 0.1]})
    assert across.accuracy_statements(tk).empty


# ---------------------------------------------------------------------------- a tiny two-model study
CONFIG = {
    "name": "two",
    "datasets": ["mnist1d"],
    "models": [
        {"name": "mlp", "widths": [16]},
        {"name": "resnet1d", "depth": 8, "widths": [2, 2, 2], "train": {"lr": 0.01}},
    ],
    "methods": {"random": {}, "magnitude": {}, "snip": {}},
    "densities": [0.5],
    "seeds": [0, 1, 2],
    "train": {"epochs": 1, "batch_size": 256},
    "prune_data": {"batches": 2},
    "ablations": ["shuffle"],
    "replicates": 2,
    # mds_kind jaccard: the default (netlsd) needs relational layers, which mlp(16) does not have
    "analysis": {"kinds": ["jaccard", "layer_density", "agreement"], "null_samples": 10, "mds_kind": "jaccard"},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graphtickets.study import run

    out = tmp_path_factory.mktemp("two")
    r = run(CONFIG, out, workers=1, progress=False)
    assert r.failed == 0 and r.done == r.cells
    return out


def _labels() -> list[str]:
    return ["mlp(16)", "resnet1d(depth=8;2,2,2)"]


def test_report_has_a_section_per_architecture_and_the_holds_table(study: Path) -> None:
    md = (study / "report.md").read_text()
    for lb in _labels():
        assert f"## Architecture: {lb}" in md
    assert "## Across architectures: what holds on both" in md
    assert md.count("### Findings") == 2
    assert md.index("## Across architectures") < md.index("## Architecture: mlp(16)")
    # one set of figures per architecture, none mixed at the top level
    for lb in _labels():
        assert (study / "figures" / across.slug(lb) / "accuracy_vs_density.png").is_file()
    assert not (study / "figures" / "accuracy_vs_density.png").exists()
    table = pd.read_csv(study / "tables" / "architectures.csv")
    assert set(table["topic"]) <= set(across.TOPICS)
    # every statement holding on one or more architectures appears in report.md, and only those
    held = table[~table["holds_on"].isin(["neither"])]
    for s in held["statement"]:
        assert s in md
    for s in table[table["holds_on"] == "neither"]["statement"]:
        assert f"| {s} |" not in md
    assert "resnet1d(depth=8;2,2,2): training lr 0.01" in md  # the model's own settings in the setup


def _store_accuracy(out: Path) -> pd.DataFrame:
    from graphtickets.study.store import Store

    with Store(out) as store:
        cells = store.cells()
    cells = cells[cells["status"] == "done"]
    return pd.DataFrame({
        "model": cells["model"], "method": cells["method"], "density": cells["density"], "seed": cells["seed"],
        "replicate": [int(c.get("replicate", 0)) for c in cells["config"]],
        "accuracy": [r["accuracy"] for r in cells["results"]],
    })


def test_accuracy_and_sanity_rows_match_a_hand_computation_from_the_store(study: Path) -> None:
    acc = _store_accuracy(study)
    acc = acc[acc["replicate"] == 0]
    table = pd.read_csv(study / "tables" / "architectures.csv").set_index("statement")
    methods = ["magnitude", "random", "snip"]
    for lb in _labels():
        a = acc[acc["model"] == lb]

        def seeds(m: str, a: pd.DataFrame = a) -> np.ndarray:
            return a[a["method"] == m].sort_values("seed")["accuracy"].to_numpy(dtype=float)

        # accuracy order: paired t over seeds, BH over the architecture's pairs (scipy)
        pairs = [(x, y) for i, x in enumerate(methods) for y in methods[i + 1:]]
        p = [stats.ttest_rel(seeds(x), seeds(y)).pvalue for x, y in pairs]
        ok = [i for i, v in enumerate(p) if np.isfinite(v)]
        q = dict(zip(ok, stats.false_discovery_control([p[i] for i in ok], method="bh"), strict=True))
        for i, (x, y) in enumerate(pairs):
            diff = float(np.mean(seeds(x) - seeds(y)))
            for s, want in ((f"{x} more accurate than {y} at d=0.5", diff > 0), (f"{y} more accurate than {x} at d=0.5", diff < 0)):
                holds = i in q and q[i] <= 0.05 and want
                assert table.loc[s, lb] == ("yes" if holds else "no"), (lb, s)
                if i in q:
                    assert f"q = {q[i]:.2g}" in table.loc[s, f"{lb} detail"]
        # sanity checks: ticket vs its shuffled variant, paired by seed, BH over the methods
        ps = [stats.ttest_rel(seeds(m), seeds(f"{m}+shuffle")).pvalue for m in methods]
        okm = [m for m, v in zip(methods, ps, strict=True) if np.isfinite(v)]
        qs = dict(zip(okm, stats.false_discovery_control([v for v in ps if np.isfinite(v)], method="bh"), strict=True))
        for m in methods:
            diff = float(np.mean(seeds(m) - seeds(f"{m}+shuffle")))
            s = f"{m} beats its layer-shuffled variant at d=0.5"
            assert table.loc[s, lb] == ("yes" if m in qs and qs[m] <= 0.05 and diff > 0 else "no"), (lb, s)
            assert f"{diff:+.3f}" in table.loc[s, f"{lb} detail"]


def test_most_alike_rows_are_a_ranking_not_a_test(study: Path) -> None:
    table = pd.read_csv(study / "tables" / "architectures.csv")
    alike = table[table["topic"] == "most alike"]
    assert len(alike) >= 1
    for lb in _labels():
        for r in alike[alike[lb] != "not tested"].itertuples():
            text = table.loc[r.Index, f"{lb} detail"]
            assert "a ranking, not a test" in text and "closer than the null" not in r.statement
            rank = int(text.split("rank ")[1].split(" ")[0])
            assert table.loc[r.Index, lb] == ("yes" if rank <= across.TOP_ALIKE else "no")


def test_structure_function_rows_are_the_per_architecture_tests(study: Path) -> None:
    from graphtickets.study.alike import structure_function

    dist = pd.read_csv(study / "tables" / "distances.csv")
    table = pd.read_csv(study / "tables" / "architectures.csv").set_index("statement")
    for lb in _labels():
        sf = structure_function(dist[dist["model"] == lb])
        for r in sf[sf["p"].notna()].itertuples():
            s = f"{r.structure} distance predicts {r.function} distance (Spearman rho > 0)"
            assert table.loc[s, lb] == ("yes" if r.significant and r.rho > 0 else "no")
            assert f"rho = {r.rho:.2f}" in table.loc[s, f"{lb} detail"]


def test_single_model_report_is_unchanged_in_form(tmp_path: Path) -> None:
    from graphtickets.study import run

    cfg = {**CONFIG, "models": [CONFIG["models"][0]], "seeds": [0], "ablations": [], "replicates": 1,
           "analysis": {"kinds": ["jaccard"], "null_samples": 0, "functional": False, "mds_kind": "jaccard"}}
    run(cfg, tmp_path, workers=1, progress=False)
    md = (tmp_path / "report.md").read_text()
    assert "## Findings" in md and "## Architecture:" not in md and "Across architectures" not in md
    assert not (tmp_path / "tables" / "architectures.csv").exists()
    assert (tmp_path / "figures" / "mds_jaccard.png").is_file()  # the single-model MDS map, at the top level
    # the distances table: every row's dataset/model/density/seed are its group's (read off the stored
    # label here); the per-model rows carry their model and dataset, no density or seed
    dist = pd.read_csv(tmp_path / "tables" / "distances.csv")
    alls = dist["group"].str.endswith("/all")
    assert alls.sum() == 3  # 3 tickets of the one seed and density: 3 pairs
    assert (dist.loc[alls, "model"] == "mlp(16)").all() and (dist.loc[alls, "dataset"] == "mnist1d").all()
    assert dist.loc[alls, ["density", "seed"]].isna().all().all()
    for r in dist[~alls].itertuples():
        ds, model, d, s = r.group.split("/")
        assert (r.dataset, r.model, r.density, r.seed) == (ds, model, float(d[1:]), int(s[1:]))


def test_per_model_rows_carry_their_model_and_each_architecture_has_its_mds_map(study: Path) -> None:
    from graphtickets.study.grid import model_rows
    from graphtickets.study.store import Store

    dist = pd.read_csv(study / "tables" / "distances.csv")
    md = (study / "report.md").read_text()
    with Store(study) as store:
        cells = store.cells()
    own = cells[(cells["status"] == "done") & (cells["method"] != "dense")
                & np.array([not (c.get("ablation") or {}) and not c.get("replicate", 0) for c in cells["config"]])]
    assert (model_rows(dist) == dist["group"].str.endswith("/all")).all()
    for lb in _labels():
        rows = dist[dist["group"] == f"mnist1d/{lb}/all"]
        ids = set(own[own["model"] == lb]["id"])  # the model's compared tickets, from the store
        assert len(ids) == 9  # 3 methods x 3 seeds at one density
        assert len(rows) == len(ids) * (len(ids) - 1) // 2 and set(rows["a"]) | set(rows["b"]) == ids
        assert (rows["model"] == lb).all() and (rows["dataset"] == "mnist1d").all()
        assert rows[["density", "seed"]].isna().all().all()
        _, part, _ = across.split(pd.DataFrame(), dist, None, ("mnist1d", lb))
        assert len(part[model_rows(part)]) == len(rows)  # the architecture keeps its MDS distances
        assert (study / "figures" / across.slug(lb) / "mds_jaccard.png").is_file()
        assert f"figures/{across.slug(lb)}/mds_jaccard.png" in md
    assert not list((study / "figures").glob("mds_*"))


def test_model_rows_by_key_or_by_suffix_without_a_model() -> None:
    from graphtickets.study.grid import model_rows

    filled = pd.DataFrame({"group": ["d/m/all", "d/m/d0.5/s0", "d/m/all"], "dataset": ["d", "d", "e"],
                           "model": ["m", "m", "m"]})
    assert model_rows(filled).tolist() == [True, False, False]  # row 3: not its own model's group
    legacy = pd.DataFrame({"group": ["d/m/all", "d/m/d0.5/s0"], "dataset": ["d", "d"], "model": [np.nan, "m"]})
    assert model_rows(legacy).tolist() == [True, False]
    bare = pd.DataFrame({"group": ["d/m/all", "d/m/d0.5/s0"], "a": ["x", "x"]}, index=[5, 7])
    assert model_rows(bare).tolist() == [True, False] and list(model_rows(bare).index) == [5, 7]
